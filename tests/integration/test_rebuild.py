"""`crm rebuild` builds a projection afresh while the service keeps answering and keeps
applying new events; afterwards every row reflects every event exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any

import asyncpg
import pytest

from services.runtime.processes import REPO, ServiceProcess
from tests.conftest import Infrastructure

pytestmark = pytest.mark.integration


async def rows(database_url: str) -> dict[str, dict[str, Any]]:
    connection = await asyncpg.connect(database_url)
    try:
        records = await connection.fetch("SELECT * FROM customer.customer_directory")
    finally:
        await connection.close()
    return {str(r["customer_id"]): dict(r) for r in records}


async def test_rebuild_while_serving_and_writing(
    infra: Infrastructure, customer_service: ServiceProcess
) -> None:
    async with customer_service.client(timeout=10) as client:
        ids = []
        for i in range(150):
            body = {"name": f"重建客户 {i:02d}", "kind": "consumer", "tags": ["rebuild"]}
            ids.append((await client.post("/customers", json=body)).json()["customer_id"])
        for _ in range(100):
            if len(await rows(infra.database_url)) == 150:
                break
            await asyncio.sleep(0.1)
        before = await rows(infra.database_url)

        rebuilding = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "crm.cli",
            "rebuild",
            "customer",
            cwd=REPO,
            env={
                **os.environ,
                "CRM_DATABASE_URL": infra.database_url,
                "CRM_KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        reads: list[int] = []
        written: set[str] = set()
        tag = 0
        while rebuilding.returncode is None:
            customer_id = ids[tag % 10]
            response = await client.post(f"/customers/{customer_id}/tags", json={"tag": f"w{tag}"})
            assert response.status_code == 200
            written.add(customer_id)
            tag += 1
            reads.append((await client.get("/customers", params={"tag": "rebuild"})).status_code)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rebuilding.wait(), timeout=0.05)
        out, err = await rebuilding.communicate()
        assert rebuilding.returncode == 0, err.decode()
        assert "customer_directory: rebuilt from" in out.decode()
        assert set(reads) == {200}

        histories = {
            customer_id: len((await client.get(f"/customers/{customer_id}/history")).json())
            for customer_id in ids
        }
    for _ in range(100):
        after = await rows(infra.database_url)
        if all(after[i]["version"] == histories[i] for i in ids):
            break
        await asyncio.sleep(0.1)
    assert tag > 0, "some changes should have been made during the rebuild"
    for customer_id in ids:
        row = after[customer_id]
        assert row["version"] == histories[customer_id]
        assert row["change_count"] == histories[customer_id], "every event applied exactly once"
        if customer_id not in written:
            assert row == before[customer_id]
