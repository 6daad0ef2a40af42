"""`crm rebuild` builds a projection afresh while the service keeps answering and keeps
applying new events; afterwards every row reflects every event exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import httpx

from contracts.topics import Topic
from local.launcher import ServiceProcess
from local.synthetic_history import history
from tests.support.crm import crm_rebuild
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_raw, read_topic
from tests.support.metrics import scrape, total
from tests.support.waiting import eventually


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

        async def directory_of_150() -> dict[str, dict[str, Any]]:
            found = await rows(infra.database_url)
            assert len(found) == 150, len(found)
            return found

        before = await eventually(directory_of_150, describe="150 customers in the directory")

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

    async def caught_up() -> dict[str, dict[str, Any]]:
        after = await rows(infra.database_url)
        behind = [i for i in ids if after[i]["version"] != histories[i]]
        assert not behind, f"{len(behind)} rows behind their history"
        return after

    after = await eventually(caught_up, describe="every row at its history's version")
    assert tag > 0, "some changes should have been made during the rebuild"
    for customer_id in ids:
        row = after[customer_id]
        assert row["version"] == histories[customer_id]
        assert row["change_count"] == histories[customer_id], "every event applied exactly once"
        if customer_id not in written:
            assert row == before[customer_id]


async def test_a_query_reading_two_tables_of_the_swap_is_not_failed_by_it(
    infra: Infrastructure, customer_service: ServiceProcess
) -> None:
    """A read holding one of the directory's tables while it asks for another, as a join
    does, when the rebuild replaces both: neither side is failed as a deadlock."""
    async with customer_service.client(timeout=10) as client:
        body = {"name": "交换客户", "kind": "consumer"}
        customer_id = (await client.post("/customers", json=body)).json()["customer_id"]
    await eventually(lambda: _directory_has(infra, customer_id), describe="the customer listed")
    reader = await asyncpg.connect(infra.database_url)
    try:
        async with reader.transaction():
            # the table the swap replaces second, held as a query holds it
            await reader.fetch("SELECT customer_id FROM customer.customer_directory")
            rebuilding = await crm_rebuild(infra, "customer")
            await eventually(
                lambda: _waits_for(infra, "customer_directory"),
                timeout=60,
                describe="the swap waiting for the directory table",
            )
            # then the table the swap replaces first
            aliases = await asyncio.wait_for(
                reader.fetch("SELECT count(*) FROM customer.customer_aliases"), timeout=10
            )
        assert aliases[0][0] == 0
    finally:
        await reader.close()
    out, err = await rebuilding.communicate()
    assert rebuilding.returncode == 0, err.decode()
    assert "customer_directory: rebuilt from" in out.decode()


async def _directory_has(infra: Infrastructure, customer_id: str) -> bool:
    return customer_id in await rows(infra.database_url)


async def _waits_for(infra: Infrastructure, table: str) -> bool:
    """Whether some session waits for a lock on the customer schema's `table`."""
    connection = await asyncpg.connect(infra.database_url)
    try:
        return bool(
            await connection.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE NOT l.granted AND n.nspname = 'customer' AND c.relname = $1",
                table,
            )
        )
    finally:
        await connection.close()


async def analytics_state(database_url: str) -> tuple[dict[str, Any], int, int]:
    """Each profile's scores and segments, how many conclusions the outbox holds, and how
    many events the fold has applied."""
    connection = await asyncpg.connect(database_url)
    try:
        folded = await connection.fetchval(
            "SELECT count(*) FROM analytics.consumed_events"
            " WHERE projection = 'analytics_fold' AND topic <> $1",
            Topic.ANALYTICS.value,
        )
        profiles = await connection.fetch(
            "SELECT customer_id, purchase_count, total_spend, recency_score, frequency_score,"
            " monetary_score, rfm_segment, value_tier FROM analytics.profiles"
        )
        conclusions = await connection.fetchval("SELECT count(*) FROM analytics.outbox")
    finally:
        await connection.close()
    return {str(r["customer_id"]): dict(r) for r in profiles}, conclusions, folded


async def relay_at_the_end(database_url: str) -> bool:
    """Whether the relay of the analytics conclusions has published the whole outbox."""
    connection = await asyncpg.connect(database_url)
    try:
        relayed = await connection.fetchval(
            "SELECT position FROM analytics.outbox_position WHERE topic = $1",
            f"{Topic.ANALYTICS}:conclusions",
        )
        newest = await connection.fetchval("SELECT max(position) FROM analytics.outbox")
    finally:
        await connection.close()
    return bool(relayed is not None and newest is not None and relayed >= newest)


async def rescoring_runs(client: httpx.AsyncClient) -> float:
    """How many RFM re-scorings the service has run."""
    return total(await scrape(client), "crm_analytics_rescore_duration_seconds_count")


async def rescored(client: httpx.AsyncClient, since: float) -> bool:
    """Whether a re-scoring has started and ended since `since` runs had ended (the first
    one ending may have begun before)."""
    return await rescoring_runs(client) >= since + 2


async def sweeps(client: httpx.AsyncClient) -> float:
    """How many time-based sweeps the service has run."""
    return total(await scrape(client), "crm_analytics_sweep_duration_seconds_count")


async def swept(client: httpx.AsyncClient, since: float) -> bool:
    """Whether a sweep ran since `since` had ended (none runs while the fold folds history,
    so one ending after the fold began after it)."""
    return await sweeps(client) >= since + 1


async def test_rebuilding_analytics_publishes_no_conclusion_twice(
    infra: Infrastructure,
) -> None:
    messages = [event.message() for event in history(40)]
    service = infra.service(
        "analytics",
        CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS="0.2",
        CRM_ANALYTICS_HISTORY_QUIET_SECONDS="2",  # the sweep after the history at once
    )
    await asyncio.to_thread(service.start)
    try:
        for topic in {topic for topic, _, _ in messages}:
            await publish_raw(
                infra.bootstrap_servers, topic, [(k, v) for t, k, v in messages if t == topic]
            )
        async with service.client(timeout=10) as client:
            # Readiness tolerates a documented lag: wait for the fold to have applied every
            # event of the history, then for the re-scorings that follow to settle.
            async def everything_folded() -> bool:
                _, _, folded = await analytics_state(infra.database_url)
                assert folded == len(messages), f"{folded} of {len(messages)} events folded"
                return True

            await eventually(everything_folded, timeout=60, describe="the history folded")
            folded_at = await rescoring_runs(client)
            swept_at = await sweeps(client)
            await eventually(
                lambda: rescored(client, since=folded_at),
                describe="a re-scoring started after the fold",
            )
            # once the fold is live again, the sweep brings everyone up to now
            await eventually(
                lambda: swept(client, since=swept_at),
                timeout=60,
                describe="the time-based sweep after the history was folded",
            )

            async def every_conclusion_published() -> tuple[dict[str, Any], int, list[Any]]:
                before, conclusions, _ = await analytics_state(infra.database_url)
                assert conclusions, "no conclusion yet"
                published = await read_topic(
                    infra.bootstrap_servers, Topic.ANALYTICS, expect=conclusions, timeout=1
                )
                assert len(published) == conclusions, f"{len(published)} of {conclusions}"
                return before, conclusions, published

            before, conclusions, published = await eventually(
                every_conclusion_published,
                timeout=60,
                interval=0.2,
                describe="the fold caught up and every conclusion published",
            )
            assert conclusions > 0 and len(published) == conclusions

            rebuilt = await crm_rebuild(infra, "analytics")
            _, errors = await rebuilt.communicate()
            assert rebuilt.returncode == 0, errors.decode()

            # What the service would wrongly conclude again after the rebuild, a re-scoring
            # that started after it would conclude; and once the relay has gone through
            # the whole outbox, whatever it would publish again is on the topic (it
            # records its position only after the broker's acknowledgement).
            runs = await rescoring_runs(client)
            await eventually(
                lambda: rescored(client, since=runs),
                describe="a re-scoring started after the rebuild",
            )
            await eventually(
                lambda: relay_at_the_end(infra.database_url),
                describe="the relay of the conclusions at the newest outbox position",
            )
        after, conclusions_after, _ = await analytics_state(infra.database_url)
        republished = await read_topic(
            infra.bootstrap_servers, Topic.ANALYTICS, expect=len(published), timeout=5
        )
    finally:
        await asyncio.to_thread(service.stop)
    assert after == before
    assert conclusions_after == conclusions
    assert len(republished) == len(published)
