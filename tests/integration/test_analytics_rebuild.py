"""A rebuild of the analytics fold keeps the segment history and churn warnings it
replaces, and records and publishes what the rebuilt fold concludes differently."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

from contracts.topics import Topic
from local.synthetic_history import history
from services.analytics.domain.money import Converter
from services.analytics.migrations import MIGRATIONS
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.projections.rescoring import reconclude_all, rescore
from services.analytics.projections.store import load_rules
from services.runtime.messaging.consumer import Parsed
from services.runtime.messaging.projection import ProjectionHandler
from services.runtime.messaging.rebuild import ProjectionRebuild
from services.runtime.storage.database import create_pool
from services.runtime.storage.migrator import DURABLE, migrate_all
from tests.support.events import raw_envelope
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_raw, read_topic

NOW = datetime.now(UTC)


def fold_at(moment: datetime) -> AnalyticsFold:
    return AnalyticsFold(Converter("CNY"), lambda: moment)


async def fold_live(infra: Infrastructure, published: Counter[str]) -> None:
    """The live analytics tables, folded from everything on the topics at NOW and scored."""
    records = [
        record
        for topic, count in published.items()
        for record in await read_topic(infra.bootstrap_servers, topic, expect=count)
    ]
    assert len(records) == sum(published.values())
    await migrate_all(infra.database_url, "analytics", (DURABLE, MIGRATIONS))
    pool = await create_pool(infra.database_url, "analytics")
    try:
        handler = ProjectionHandler(fold_at(NOW), pool)
        await handler.prepare()
        await handler.handle([Parsed(r, handler.parse(r)) for r in records])
        async with pool.acquire() as connection, connection.transaction():
            # as the live service does in the background once caught up
            await rescore(connection, NOW, NOW)
            await reconclude_all(connection, await load_rules(connection), NOW, NOW)
    finally:
        await pool.close()


async def rebuild(infra: Infrastructure, fold: AnalyticsFold) -> None:
    await ProjectionRebuild(
        projection=fold,
        database_dsn=infra.database_url,
        schema="analytics",
        consumer_factory=lambda **kw: AIOKafkaConsumer(
            bootstrap_servers=infra.bootstrap_servers, **kw
        ),
    ).run()


async def tables(infra: Infrastructure) -> dict[str, Any]:
    connection = await asyncpg.connect(infra.database_url)
    try:
        history = await connection.fetch(
            "SELECT id, customer_id, segment, rule_version, entered_at, left_at"
            " FROM analytics.segment_history ORDER BY id"
        )
        warnings = await connection.fetch(
            "SELECT customer_id, raised_at FROM analytics.churn_warnings"
        )
        outbox = await connection.fetch(
            "SELECT position, envelope FROM analytics.outbox ORDER BY position"
        )
        states = await connection.fetch(
            "SELECT customer_id, state::text AS state FROM analytics.profiles"
        )
    finally:
        await connection.close()
    return {
        "history": {r["id"]: dict(r) for r in history},
        "warnings": {r["customer_id"]: r["raised_at"] for r in warnings},
        "outbox": [(r["position"], orjson.loads(r["envelope"])) for r in outbox],
        "segments": {r["customer_id"]: set(orjson.loads(r["state"])["segments"]) for r in states},
    }


async def publish_history(infra: Infrastructure, customers: int) -> Counter[str]:
    """A generated history on the topics (`history(customers, now=NOW)`); how many
    messages each got."""
    messages = [event.message() for event in history(customers, now=NOW)]
    for topic in {topic for topic, _, _ in messages}:
        await publish_raw(
            infra.bootstrap_servers, topic, [(k, v) for t, k, v in messages if t == topic]
        )
    return Counter(topic for topic, _, _ in messages)


async def test_a_rebuild_with_the_same_rules_keeps_every_time_and_publishes_nothing(
    infra: Infrastructure,
) -> None:
    await fold_live(infra, await publish_history(infra, 30))
    before = await tables(infra)
    assert before["history"] and before["warnings"]

    await rebuild(infra, fold_at(NOW))

    after = await tables(infra)
    assert after["history"] == before["history"]
    assert after["warnings"] == before["warnings"]
    assert after["outbox"] == before["outbox"]


async def test_what_a_rebuild_concludes_differently_is_recorded_then_and_published(
    infra: Infrastructure,
) -> None:
    await fold_live(infra, await publish_history(infra, 30))
    before = await tables(infra)
    # Rebuilt as of two years later: lifecycle stages, recency and churn thresholds
    # decide differently, as they would after a change to the rules' code.
    later = NOW + timedelta(days=730)

    await rebuild(infra, fold_at(later))

    after = await tables(infra)
    # the earlier history is all there, with its times; rows closed by the rebuild
    # changed only in being closed at the rebuild's time
    for row_id, row in before["history"].items():
        kept = after["history"][row_id]
        if row["left_at"] is None and kept["left_at"] is not None:
            assert kept["left_at"] == later
            kept = {**kept, "left_at": None}
        assert kept == row
    # the current memberships are the rebuilt fold's
    open_rows: dict[Any, set[str]] = {}
    for row in after["history"].values():
        if row["left_at"] is None:
            open_rows.setdefault(row["customer_id"], set()).add(row["segment"])
    assert open_rows == {c: s for c, s in after["segments"].items() if s}
    # each entry and exit the rebuild made is published once, nothing else
    new_rows = [r for i, r in after["history"].items() if i not in before["history"]]
    closed = [
        r
        for i, r in after["history"].items()
        if i in before["history"] and before["history"][i]["left_at"] is None and r["left_at"]
    ]
    assert new_rows and closed
    assert all(r["entered_at"] == later for r in new_rows)
    published = [e for _, e in after["outbox"][len(before["outbox"]) :]]
    assert after["outbox"][: len(before["outbox"])] == before["outbox"]
    changes = Counter(
        (e["customer_id"], e["payload"]["segment"], e["payload"]["direction"])
        for e in published
        if e["event_type"] == "analytics.segment_changed"
    )
    expected = Counter(
        [(str(r["customer_id"]), r["segment"], "entered") for r in new_rows]
        + [(str(r["customer_id"]), r["segment"], "left") for r in closed]
    )
    assert changes == expected
    # warnings raised before keep their time; those raised or cleared now are published
    for customer_id, raised_at in after["warnings"].items():
        assert raised_at == before["warnings"].get(customer_id, raised_at)
    churn = {
        (e["customer_id"], e["event_type"])
        for e in published
        if e["event_type"].startswith("analytics.churn_risk")
    }
    assert churn == {
        (str(c), "analytics.churn_risk_raised")
        for c in after["warnings"].keys() - before["warnings"].keys()
    } | {
        (str(c), "analytics.churn_risk_cleared")
        for c in before["warnings"].keys() - after["warnings"].keys()
    }
    assert all(e["occurred_at"] == later.isoformat() for e in published)


def merges(infra_events: list[Any], survivor: uuid.UUID, absorbed: list[uuid.UUID]) -> None:
    """Merge `absorbed` into `survivor` (the first undone again) on the customer topic."""
    first, second = uuid.uuid4(), uuid.uuid4()
    for customer, merge_id, days_ago, kind in (
        (absorbed[0], first, 60, "customer.merged"),
        (absorbed[1], second, 30, "customer.merged"),
        (absorbed[0], first, 10, "customer.unmerged"),
    ):
        payload = {"merge_id": str(merge_id), "survivor_id": str(survivor)}
        infra_events.append(raw_envelope(kind, customer, payload, NOW - timedelta(days=days_ago)))


async def test_merges_are_applied_once_and_rebuilt_as_live_concluded_them(
    infra: Infrastructure,
) -> None:
    published = await publish_history(infra, 30)
    events = history(30, now=NOW)
    buyers = list(dict.fromkeys(e.customer_id for e in events if e.topic == Topic.SALES))
    survivor, *absorbed = buyers[:3]
    merged: list[tuple[bytes, bytes]] = []
    merges(merged, survivor, absorbed)
    await publish_raw(infra.bootstrap_servers, Topic.CUSTOMER, merged)
    published[Topic.CUSTOMER] += len(merged)
    await fold_live(infra, published)
    before = await tables(infra)
    group = await group_rows(infra)
    assert set(group) == {survivor}
    current = {r["customer_id"] for r in before["history"].values() if r["left_at"] is None}
    assert absorbed[1] not in current and absorbed[0] in current

    await fold_live(infra, published)  # every event delivered again: applied once
    assert await tables(infra) == before
    assert await group_rows(infra) == group

    await rebuild(infra, fold_at(NOW))

    after = await tables(infra)
    assert after["history"] == before["history"]
    assert after["warnings"] == before["warnings"]
    assert after["outbox"] == before["outbox"]  # nothing concluded differently
    assert await group_rows(infra) == group


async def group_rows(infra: Infrastructure) -> dict[uuid.UUID, tuple[Any, ...]]:
    connection = await asyncpg.connect(infra.database_url)
    try:
        rows = await connection.fetch(
            """SELECT customer_id, purchase_count, total_spend, rfm_segment, lifecycle_stage,
                      state::jsonb->'segments' AS segments FROM analytics.merged_profiles"""
        )
    finally:
        await connection.close()
    return {r["customer_id"]: tuple(r)[1:] for r in rows}
