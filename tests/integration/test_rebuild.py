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

from contracts.topics import Topic
from local.launcher import REPO, ServiceProcess, session_master_key
from local.synthetic_history import history
from tests.conftest import Infrastructure
from tests.support.kafka import publish_raw, read_topic

pytestmark = pytest.mark.integration


async def rows(database_url: str) -> dict[str, dict[str, Any]]:
    connection = await asyncpg.connect(database_url)
    try:
        records = await connection.fetch("SELECT * FROM customer.customer_directory")
    finally:
        await connection.close()
    return {str(r["customer_id"]): dict(r) for r in records}


async def crm_rebuild(infra: Infrastructure, service: str) -> asyncio.subprocess.Process:
    """`crm rebuild SERVICE` as an operator runs it, against the test's infrastructure."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "crm.cli", "rebuild", service),
        cwd=REPO,
        env={
            **os.environ,
            "CRM_DATABASE_URL": infra.database_url,
            "CRM_KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
            "CRM_KEYRING_MASTER_KEY": session_master_key(),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


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

        rebuilding = await crm_rebuild(infra, "customer")
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


async def analytics_state(database_url: str) -> tuple[dict[str, Any], int]:
    """Each profile's scores and segments, and how many conclusions the outbox holds."""
    connection = await asyncpg.connect(database_url)
    try:
        profiles = await connection.fetch(
            "SELECT customer_id, purchase_count, total_spend, recency_score, frequency_score,"
            " monetary_score, rfm_segment, value_tier FROM analytics.profiles"
        )
        conclusions = await connection.fetchval("SELECT count(*) FROM analytics.outbox")
    finally:
        await connection.close()
    return {str(r["customer_id"]): dict(r) for r in profiles}, conclusions


async def test_rebuilding_analytics_publishes_no_conclusion_twice(
    infra: Infrastructure,
) -> None:
    messages = [event.message() for event in history(40)]
    service = infra.service("analytics", CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS="0.2")
    await asyncio.to_thread(service.start)
    try:
        for topic in {topic for topic, _, _ in messages}:
            await publish_raw(
                infra.bootstrap_servers, topic, [(k, v) for t, k, v in messages if t == topic]
            )
        async with service.client(timeout=10) as client:
            for _ in range(300):
                ready = (await client.get("/health/ready")).json()["checks"]
                published = await read_topic(
                    infra.bootstrap_servers, Topic.ANALYTICS, expect=1, timeout=1
                )
                before, conclusions = await analytics_state(infra.database_url)
                if (
                    ready["projections_caught_up"]
                    and conclusions
                    and (len(published) == conclusions)
                ):
                    break
                await asyncio.sleep(0.2)
        assert conclusions > 0 and len(published) == conclusions

        rebuilt = await crm_rebuild(infra, "analytics")
        _, errors = await rebuilt.communicate()
        assert rebuilt.returncode == 0, errors.decode()

        await asyncio.sleep(2)  # time for the relay to publish anything it wrongly would
        after, conclusions_after = await analytics_state(infra.database_url)
        republished = await read_topic(
            infra.bootstrap_servers, Topic.ANALYTICS, expect=len(published), timeout=5
        )
    finally:
        await asyncio.to_thread(service.stop)
    assert after == before
    assert conclusions_after == conclusions
    assert len(republished) == len(published)
