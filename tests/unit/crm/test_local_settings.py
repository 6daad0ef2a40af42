"""The settings file `crm up` writes fills in what the environment does not set, and never
adds the other form of a setting the environment gives (a value and a file of it at once
are refused as ambiguous by every setting that has both)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crm.cli import load_local_settings
from services.runtime.settings import ServiceSettings

FILE_SETTINGS = sorted(
    f"CRM_{name.upper()}" for name in ServiceSettings.model_fields if name.endswith("_file")
)


def test_there_are_settings_given_as_files() -> None:
    assert "CRM_KEYRING_MASTER_KEY_FILE" in FILE_SETTINGS


@pytest.mark.parametrize("file_setting", FILE_SETTINGS)
@pytest.mark.parametrize("environment_gives", ["value", "file"])
def test_a_setting_the_environment_gives_in_either_form_is_not_taken_from_the_file(
    file_setting: str, environment_gives: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value_setting = file_setting.removesuffix("_FILE")
    settings = tmp_path / "crm.env"
    settings.write_text(
        f"{file_setting}=/from/the/file\n{value_setting}=from-the-file\nCRM_OTHER=kept\n"
    )
    monkeypatch.setenv("CRM_ENV_FILE", str(settings))
    for name in (file_setting, value_setting, "CRM_OTHER"):
        monkeypatch.delenv(name, raising=False)
    given = value_setting if environment_gives == "value" else file_setting
    monkeypatch.setenv(given, "from-the-environment")

    load_local_settings()

    assert os.environ[given] == "from-the-environment"
    other = file_setting if given == value_setting else value_setting
    assert other not in os.environ, f"{other} taken from the file beside {given}"
    assert os.environ["CRM_OTHER"] == "kept"
