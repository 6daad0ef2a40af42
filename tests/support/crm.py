"""The `crm` command line as an operator runs it, against a test's infrastructure."""

from __future__ import annotations

import asyncio
import os
import sys

from local.launcher import REPO, command_environment
from tests.support.infrastructure import Infrastructure


def crm_environment(infra: Infrastructure | None) -> dict[str, str]:
    """This process's environment, plus where `infra`'s database and broker are and the
    keyring master key of the services the tests start."""
    if infra is None:
        return dict(os.environ)
    return command_environment(infra.database_url, infra.bootstrap_servers)


async def start_crm(
    *arguments: str, infra: Infrastructure | None = None
) -> asyncio.subprocess.Process:
    """`crm ARGUMENTS...` started (not awaited), its output captured."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "crm.cli", *arguments),
        cwd=REPO,
        env=crm_environment(infra),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_crm(*arguments: str, infra: Infrastructure | None = None) -> tuple[int, str, str]:
    """`crm ARGUMENTS...` run to its end: exit code, standard output and error."""
    process = await start_crm(*arguments, infra=infra)
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def crm(*arguments: str, infra: Infrastructure | None = None) -> str:
    """The standard output of `crm ARGUMENTS...`, which must succeed."""
    code, out, err = await run_crm(*arguments, infra=infra)
    assert code == 0, out + err
    return out


async def crm_rebuild(infra: Infrastructure, service: str) -> asyncio.subprocess.Process:
    """`crm rebuild SERVICE` started against the test's infrastructure."""
    return await start_crm("rebuild", service, infra=infra)
