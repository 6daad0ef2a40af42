"""Durable tables change by numbered migrations; projections say when their tables need a
rebuild instead of being patched in place."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import asyncpg
import httpx
import pytest

from contracts.topics import Topic
from local.embedded import EmbeddedPostgres
from local.launcher import ServiceProcess
from services.runtime.storage.database import ensure_database
from services.runtime.storage.migrator import DURABLE, KEYRING, migrate_all
from tests.conftest import Infrastructure
from tests.integration.test_rebuild import crm_rebuild
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


async def new_database(postgres: EmbeddedPostgres) -> str:
    url = postgres.dsn(f"crm_{uuid.uuid4().hex[:10]}")
    await ensure_database(url)
    return url


async def test_replicas_starting_together_apply_each_migration_once(
    postgres: EmbeddedPostgres,
) -> None:
    url = await new_database(postgres)
    applied = await asyncio.gather(
        *(migrate_all(url, "sales", (DURABLE, KEYRING)) for _ in range(4))
    )
    names = sorted(f"{m.number}:{m.name}" for run in applied for m in run)
    expected = sorted(
        [f"{m.number}:{m.name}" for m in DURABLE.migrations()]
        + [f"{m.number}:{m.name}" for m in KEYRING.migrations()]
    )
    assert names == expected, "each migration ran exactly once across the four"
    assert await migrate_all(url, "sales", (DURABLE, KEYRING)) == []
    connection = await asyncpg.connect(url)
    try:
        ledger = await connection.fetch(
            "SELECT migration_set, number FROM sales.schema_migrations ORDER BY 1, 2"
        )
        keys = await connection.fetchval("SELECT count(*) FROM crm_keys.customer_keys")
    finally:
        await connection.close()
    assert [(r["migration_set"], r["number"]) for r in ledger] == [
        ("runtime", m.number) for m in DURABLE.migrations()
    ]
    assert keys == 0


async def test_tables_made_before_migrations_were_numbered_are_adopted(
    postgres: EmbeddedPostgres,
) -> None:
    """A database whose services created the durable tables themselves (before this
    change) keeps its rows: the first migration finds the tables there."""
    url = await new_database(postgres)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            """CREATE SCHEMA customer;
               CREATE TABLE customer.outbox_position (
                   topic text PRIMARY KEY, position bigint NOT NULL,
                   updated_at timestamptz NOT NULL DEFAULT now());
               INSERT INTO customer.outbox_position (topic, position)
                   VALUES ('crm.customer.events.v1', 42);"""
        )
        await migrate_all(url, "customer", (DURABLE,))
        kept = await connection.fetchval("SELECT position FROM customer.outbox_position")
    finally:
        await connection.close()
    assert kept == 42


async def test_a_projection_of_another_shape_waits_for_a_rebuild_and_then_catches_up(
    infra: Infrastructure,
) -> None:
    first = infra.service("customer")
    await asyncio.to_thread(first.start)
    async with first.client(timeout=10) as client:
        before = await client.post("/customers", json={"name": "旧形客户", "kind": "consumer"})
        assert before.status_code == 201
    await asyncio.to_thread(first.stop)
    connection = await asyncpg.connect(infra.database_url)
    try:  # as if the tables had been built by code of another shape
        await connection.execute(
            "UPDATE customer.projection_versions SET version = 7 "
            "WHERE projection = 'customer_directory'"
        )
    finally:
        await connection.close()

    service: ServiceProcess = infra.service("customer")
    await asyncio.to_thread(service.start, wait_ready=False)
    try:
        async with service.client(timeout=10) as client:
            ready = await _readiness(client, lambda r: r.status_code == 503)
            assert ready.json()["checks"]["projections_current"] is False
            (problem,) = ready.json()["problems"]
            assert "customer_directory" in problem and "crm rebuild" in problem
            metrics = (await client.get("/metrics")).text
            assert 'crm_projection_rebuild_needed{projection="customer_directory"} 1.0' in metrics

            # commands still work; the directory does not apply them until rebuilt
            during = await client.post("/customers", json={"name": "等待客户", "kind": "consumer"})
            assert during.status_code == 201
            waiting_id = during.json()["customer_id"]
            published = await read_topic(infra.bootstrap_servers, Topic.CUSTOMER, expect=2)
            assert waiting_id in {r.key.decode() for r in published}
            assert (await client.get(f"/customers/{waiting_id}")).status_code == 404

            rebuilding = await crm_rebuild(infra, "customer")
            _, err = await rebuilding.communicate()
            assert rebuilding.returncode == 0, err.decode()

            await _readiness(client, lambda r: r.status_code == 200, timeout=30)
            assert (await client.get(f"/customers/{waiting_id}")).status_code == 200
            metrics = (await client.get("/metrics")).text
            assert 'crm_projection_rebuild_needed{projection="customer_directory"} 0.0' in metrics
    finally:
        await asyncio.to_thread(service.stop)


async def _readiness(
    client: httpx.AsyncClient, accept: Callable[[httpx.Response], bool], timeout: float = 30.0
) -> httpx.Response:
    """The first readiness answer `accept` takes (the service may still be starting)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = "no answer"
    while True:
        try:
            response = await client.get("/health/ready")
            if accept(response):
                return response
            last = f"{response.status_code} {response.text}"
        except httpx.TransportError as error:
            last = repr(error)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"readiness never matched: {last}")
        await asyncio.sleep(0.2)
