"""Projections say when their tables need a rebuild instead of being patched in place: a
projection of another shape waits for `crm rebuild`, then catches up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import httpx

from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.crm import crm_rebuild
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import read_topic
from tests.support.waiting import eventually


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

    async def accepted() -> httpx.Response:
        response = await client.get("/health/ready")
        assert accept(response), f"{response.status_code} {response.text}"
        return response

    return await eventually(accepted, timeout=timeout, interval=0.2, describe="readiness")
