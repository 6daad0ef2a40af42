"""`crm up` supervises: a service killed with SIGKILL is started again and becomes ready,
while PostgreSQL, the broker and the other services keep running; Ctrl-C then stops
everything with status 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from functools import partial
from pathlib import Path

import httpx

from local.embedded.processes import free_port
from local.launcher import REPO
from tests.support.waiting import eventually

SERVICES = ("customer", "sales", "interaction", "analytics")


def children_of(pid: int) -> dict[int, str]:
    """pid -> command line of every process whose parent is `pid`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == pid:
            found[int(entry.name)] = command
    return found


async def ready(url: str) -> bool:
    async with httpx.AsyncClient(timeout=2) as client:
        try:
            return (await client.get(f"{url}/health/ready")).status_code == 200
        except httpx.HTTPError:
            return False


async def test_a_killed_service_is_restarted_and_the_rest_keeps_running(tmp_path: Path) -> None:
    ports = {f"CRM_{name.upper()}_PORT": free_port() for name in SERVICES}
    environment = {
        **os.environ,
        **{name: str(port) for name, port in ports.items()},
        "CRM_POSTGRES_PORT": str(free_port()),
        "CRM_KAFKA_PORT": str(free_port()),
    }
    up = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "crm.cli", "up", "--data-dir", str(tmp_path), "--no-demo"),
        cwd=REPO,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []

    async def read_output() -> None:
        assert up.stdout is not None
        async for line in up.stdout:
            output.append(line.decode(errors="replace"))

    reader = asyncio.create_task(read_output())
    urls = {name: f"http://127.0.0.1:{ports[f'CRM_{name.upper()}_PORT']}" for name in SERVICES}
    try:
        await eventually(
            lambda: "CRM is up" in "".join(output), timeout=180, describe="crm up ready"
        )
        (sales_pid,) = [
            pid for pid, command in children_of(up.pid).items() if "services.sales" in command
        ]
        os.kill(sales_pid, signal.SIGKILL)
        await eventually(
            lambda: "The sales service exited with code -9" in "".join(output),
            describe="the death reported",
        )
        for name, url in urls.items():
            await eventually(partial(ready, url), timeout=90, describe=f"{name} ready")
        assert up.returncode is None, "crm up still runs"
        restarted = [
            pid for pid, command in children_of(up.pid).items() if "services.sales" in command
        ]
        assert restarted and restarted != [sales_pid]
        assert "restarting it in 1s" in "".join(output)
    finally:
        if up.returncode is None:
            up.send_signal(signal.SIGINT)
        status = await asyncio.wait_for(up.wait(), timeout=60)
        await reader
    assert status == 0, "".join(output[-40:])
    assert "Everything is stopped." in "".join(output)
