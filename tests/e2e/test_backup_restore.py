"""A backup of the event stores, restored into an empty database, gives back every
projection row as it was: the projections are rebuilt from the events alone."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from tests.support.crm import crm, run_crm
from tests.support.database import fetch
from tests.support.infrastructure import Infrastructure
from tests.support.waiting import eventually


async def directory(database_url: str) -> list[dict[str, Any]]:
    rows = await fetch(
        database_url, "SELECT * FROM customer.customer_directory ORDER BY customer_id"
    )
    return [dict(r) for r in rows]


async def wait_for_directory(
    database_url: str, count: int, version_sum: int
) -> list[dict[str, Any]]:
    async def complete() -> list[dict[str, Any]]:
        try:
            rows = await directory(database_url)
        except asyncpg.UndefinedTableError:
            rows = []
        assert len(rows) == count, f"{len(rows)} customers"
        assert sum(r["version"] for r in rows) == version_sum, "not every change applied"
        return rows

    return await eventually(complete, describe=f"the directory of {count} customers")


async def test_restore_into_an_empty_database_rebuilds_every_projection(
    infra: Infrastructure, tmp_path: Path
) -> None:
    original = infra.service("customer")
    await asyncio.to_thread(original.start)
    versions = 0
    try:
        async with original.client(timeout=10) as client:
            for i in range(25):
                body = {"name": f"备份客户 {i:02d}", "kind": "consumer", "tags": ["backup"]}
                customer_id = (await client.post("/customers", json=body)).json()["customer_id"]
                versions += 1
                for tag in range(i % 3):
                    await client.post(f"/customers/{customer_id}/tags", json={"tag": f"t{tag}"})
                    versions += 1
        before = await wait_for_directory(infra.database_url, 25, versions)
        backup_file = tmp_path / "crm.backup"
        await crm("backup", "--database-url", infra.database_url, "--to", str(backup_file))
    finally:
        await asyncio.to_thread(original.stop)

    # A new, empty database and a broker that lost every message: only the backup remains.
    restored_url = infra.postgres.dsn(f"crm_restored_{uuid.uuid4().hex[:8]}")
    await crm("restore", "--database-url", restored_url, "--from", str(backup_file))
    await asyncio.to_thread(infra.broker.restart)
    await infra.create_topics()

    restored = infra.service("customer", database_url=restored_url)
    await asyncio.to_thread(restored.start)
    try:
        after = await wait_for_directory(restored_url, 25, versions)
        async with restored.client(timeout=10) as client:
            history = (await client.get(f"/customers/{before[0]['customer_id']}/history")).json()
    finally:
        await asyncio.to_thread(restored.stop)
    assert after == before
    assert history[0]["event_type"] == "customer.registered"


async def test_restore_refuses_a_database_that_has_events(
    infra: Infrastructure, tmp_path: Path
) -> None:
    service = infra.service("customer")
    await asyncio.to_thread(service.start)
    try:
        async with service.client() as client:
            await client.post("/customers", json={"name": "x", "kind": "consumer"})
        backup_file = tmp_path / "crm.backup"
        await crm("backup", "--database-url", infra.database_url, "--to", str(backup_file))
    finally:
        await asyncio.to_thread(service.stop)
    code, _, errors = await run_crm(
        "restore", "--database-url", infra.database_url, "--from", str(backup_file)
    )
    assert code != 0
    assert "not empty" in errors
