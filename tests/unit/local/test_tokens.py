"""The signing secret and tokens of `crm up`, `crm token` and the command-line tools."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from crm.cli import main
from local import tokens
from services.runtime.http.authentication import TokenVerifier
from services.runtime.http.roles import ROLES
from services.runtime.settings import ServiceSettings


def test_a_token_per_role_verifies_against_the_kept_secret(tmp_path: Path) -> None:
    secret = tokens.local_secret(tmp_path, create=True)
    assert secret is not None
    path = tmp_path / tokens.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.local_secret(tmp_path, create=False) == secret  # kept, not replaced
    verifier = TokenVerifier.from_settings(ServiceSettings(auth_secret_file=path))
    minted = tokens.role_tokens(secret)
    assert set(minted) == set(ROLES) == set(tokens.DEMO_SUBJECTS)
    for role, token in minted.items():
        principal = verifier.verify(token)
        assert principal.roles == (role,)
        assert principal.subject == tokens.DEMO_SUBJECTS[role]
    written = tokens.write_tokens_file(tmp_path, minted).read_text()
    assert f"TOKEN={minted['administrator']}" in written


def test_tools_take_a_token_from_the_option_the_environment_or_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CRM_TOKEN", raising=False)
    with pytest.raises(tokens.TokenError, match="crm up"):
        tokens.cli_token(None, tmp_path)
    assert tokens.cli_token("given", tmp_path) == "given"
    monkeypatch.setenv("CRM_TOKEN", "from-env")
    assert tokens.cli_token(None, tmp_path) == "from-env"
    monkeypatch.delenv("CRM_TOKEN")
    secret = tokens.local_secret(tmp_path, create=True)
    verifier = TokenVerifier.from_settings(ServiceSettings(auth_secret=secret))
    assert verifier.verify(tokens.cli_token(None, tmp_path)).subject == "crm-cli"

    assert main(["token", "--data-dir", str(tmp_path), "--role", "manager"]) == 0
    printed = capsys.readouterr().out.strip()
    assert verifier.verify(printed).roles == ("manager",)
