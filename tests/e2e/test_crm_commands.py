"""The operations commands as an operator meets them: they find the CRM `crm up` runs
through its settings file, and a server they cannot reach costs one line, not a
traceback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from local.embedded.processes import free_port
from local.launcher import REPO, session_master_key, session_trusted_keys
from tests.support.crm import crm_environment
from tests.support.infrastructure import Infrastructure

OPERATIONS = [
    ("topics",),
    ("dead-letters", "list"),
    ("dead-letters", "show", "0:0"),
    ("dead-letters", "replay", "0:0"),
    ("rebuild", "customer"),
    ("rebuild", "analytics"),
    ("backup", "--to", "unused.dump"),
    (
        *("import", "customers", "docs/examples/customers.csv"),
        *("--mapping", "docs/examples/customer-import-mapping.yaml"),
    ),
]
"""Every operations command of `crm`, with arguments it accepts."""


def without_server_settings(environment: dict[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in environment.items()
        if name not in ("CRM_DATABASE_URL", "CRM_KAFKA_BOOTSTRAP_SERVERS", "CRM_ENV_FILE")
    }


async def run_in(environment: dict[str, str], *arguments: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "crm.cli", *arguments),
        cwd=REPO,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("arguments", OPERATIONS, ids=" ".join)
async def test_an_unreachable_server_costs_one_line(arguments: tuple[str, ...]) -> None:
    closed = free_port()
    environment = without_server_settings(crm_environment(None)) | {
        "CRM_KEYRING_MASTER_KEY": session_master_key(),
        "CRM_SIGNING_TRUSTED_KEYS": session_trusted_keys(),
        "CRM_DATABASE_URL": f"postgresql://crm@127.0.0.1:{closed}/crm",
        "CRM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed}",
    }
    code, out, err = await run_in(environment, *arguments)
    assert code != 0, out + err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"crm {arguments[0]}: cannot "), err
    assert f"127.0.0.1:{closed}" in lines[0] or "CRM_DATABASE_URL" in lines[0], err


async def test_the_settings_file_of_crm_up_points_the_commands_at_its_servers(
    infra: Infrastructure, tmp_path: Path
) -> None:
    settings = tmp_path / "crm.env"
    settings.write_text(
        "# written by crm up\n"
        f"CRM_DATABASE_URL={infra.database_url}\n"
        f"CRM_KAFKA_BOOTSTRAP_SERVERS={infra.bootstrap_servers}\n"
    )
    environment = without_server_settings(crm_environment(infra)) | {"CRM_ENV_FILE": str(settings)}
    assert "CRM_KAFKA_BOOTSTRAP_SERVERS" not in environment
    code, out, err = await run_in(environment, "dead-letters", "list")
    assert (code, err.strip()) == (0, "0 dead letters"), out + err
    code, out, err = await run_in(environment, "topics")
    assert code == 0, out + err
    # what the environment sets wins over the file
    closed = free_port()
    code, out, err = await run_in(
        environment | {"CRM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed}"}, "topics"
    )
    assert code == 1 and f"127.0.0.1:{closed}" in err, out + err
