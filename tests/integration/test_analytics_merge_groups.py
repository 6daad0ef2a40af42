"""The fold follows a customer merge in what it records (`projections.groups`): while the
merge holds, the survivor's memberships are those of the group's profiles combined and
the absorbed customer is in no segment; undoing it brings back every customer's own
memberships; the stored profiles are never written by either; and the same events in
one batch or in many record the same."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from contracts import analytics, customer_merges, sales
from contracts.envelope import EventEnvelope, payload_example
from services.analytics.domain.money import Converter
from services.analytics.projections.fold import AnalyticsFold
from tests.support.events import envelope

NOW = datetime.now(UTC).replace(microsecond=0)
REPEAT = {"field": "purchase_count", "op": "ge", "value": 2}


@pytest.fixture
def pool(analytics_pool: asyncpg.Pool) -> asyncpg.Pool:
    return analytics_pool


def at(days_ago: float) -> dict[str, Any]:
    moment = NOW - timedelta(days=days_ago)
    return {"occurred_at": moment, "recorded_at": moment, "event_id": uuid.uuid4()}


def purchase(customer: uuid.UUID, amount: str, days_ago: float) -> EventEnvelope[Any]:
    document = payload_example(sales.PurchaseRecorded)
    payload = sales.PurchaseRecorded.model_validate(
        {**document, "order_id": f"SO-{uuid.uuid4().hex[:8]}", "amount": amount, "currency": "CNY"}
    )
    return envelope(customer, 1, payload, aggregate_id=None, **at(days_ago))


def repeat_buyers(days_ago: float) -> EventEnvelope[Any]:
    payload = analytics.SegmentDefined(
        segment="repeat_buyers", name="回头客", version=1, rule=REPEAT
    )
    return envelope(uuid.uuid4(), 1, payload, aggregate_id=None, **at(days_ago))


def merge(
    kind: type[customer_merges.CustomerMerged | customer_merges.CustomerUnmerged],
    absorbed: uuid.UUID,
    survivor: uuid.UUID,
    merge_id: uuid.UUID,
    days_ago: float,
) -> EventEnvelope[Any]:
    payload = kind(merge_id=merge_id, survivor_id=survivor)
    return envelope(absorbed, 2, payload, **at(days_ago))


async def fold(pool: asyncpg.Pool, *batches: list[EventEnvelope[Any]]) -> None:
    fold = AnalyticsFold(Converter("CNY"), lambda: NOW)
    for batch in batches:
        async with pool.acquire() as connection, connection.transaction():
            await fold.apply(connection, batch)


async def memberships(pool: asyncpg.Pool) -> dict[uuid.UUID, set[str]]:
    rows = await pool.fetch(
        "SELECT customer_id, segment FROM segment_history WHERE left_at IS NULL"
    )
    found: dict[uuid.UUID, set[str]] = {}
    for row in rows:
        found.setdefault(row["customer_id"], set()).add(row["segment"])
    return found


async def recorded(pool: asyncpg.Pool) -> dict[str, Any]:
    """Everything the fold records, row ids and outbox envelopes' ids left out."""
    history = await pool.fetch(
        """SELECT customer_id, segment, rule_version, entered_at, entered_values::text AS ev,
                  left_at, left_values::text AS lv FROM segment_history"""
    )
    outbox = await pool.fetch("SELECT envelope FROM outbox ORDER BY position")
    envelopes = []
    for row in outbox:
        document = orjson.loads(row["envelope"])
        envelopes.append(
            {k: v for k, v in document.items() if k not in ("event_id", "recorded_at")}
        )
    groups = await pool.fetch("SELECT * FROM merged_profiles")
    return {
        "history": sorted(map(repr, map(dict, history))),
        "outbox": sorted(map(repr, envelopes)),
        "groups": sorted(repr(sorted((k, v) for k, v in dict(r).items() if k != "updated_at"))
                         for r in groups),
    }  # fmt: skip


async def profiles(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch("SELECT * FROM profiles ORDER BY customer_id")
    return [repr(dict(r)) for r in rows]


async def test_a_merge_moves_the_memberships_to_the_group_and_its_undoing_brings_them_back(
    pool: asyncpg.Pool,
) -> None:
    survivor, absorbed, merge_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await fold(
        pool,
        [repeat_buyers(30)],
        [purchase(survivor, "1299.00", 20), purchase(absorbed, "88.50", 10)],
    )
    own = await memberships(pool)
    assert "repeat_buyers" not in own[survivor] | own[absorbed]
    stored = await profiles(pool)

    await fold(pool, [merge(customer_merges.CustomerMerged, absorbed, survivor, merge_id, 5)])

    merged = await memberships(pool)
    assert absorbed not in merged
    assert "repeat_buyers" in merged[survivor]  # two purchases, combined
    exits = await pool.fetch(
        "SELECT left_at, left_values::text AS why FROM segment_history WHERE customer_id = $1",
        absorbed,
    )
    assert {r["left_at"] for r in exits} == {NOW - timedelta(days=5)}
    assert all(orjson.loads(r["why"])["merged_into"] == str(survivor) for r in exits)
    published = [
        orjson.loads(r["envelope"]) for r in await pool.fetch("SELECT envelope FROM outbox")
    ]
    left = [
        e for e in published
        if e["customer_id"] == str(absorbed) and e["payload"]["direction"] == "left"
    ]  # fmt: skip
    assert {e["payload"]["segment"] for e in left} == own[absorbed]
    assert all(e["payload"]["values"]["merge_id"] == str(merge_id) for e in left)
    group = await pool.fetchrow(
        "SELECT purchase_count, total_spend FROM merged_profiles WHERE customer_id = $1", survivor
    )
    assert (group["purchase_count"], str(group["total_spend"])) == (2, "1387.50")
    assert await profiles(pool) == stored  # the stored profiles are not written by a merge

    await fold(pool, [merge(customer_merges.CustomerUnmerged, absorbed, survivor, merge_id, 1)])

    assert await memberships(pool) == own
    assert await profiles(pool) == stored
    assert not await pool.fetch("SELECT 1 FROM merged_profiles")


async def test_the_same_events_in_one_batch_or_one_by_one_record_the_same(
    pool: asyncpg.Pool, other_analytics_pool: asyncpg.Pool
) -> None:
    survivor, absorbed, other, merge_id = (uuid.uuid4() for _ in range(4))
    events = [
        repeat_buyers(400),
        purchase(survivor, "1299.00", 300),
        purchase(absorbed, "88.50", 250),
        purchase(other, "10.00", 240),
        merge(customer_merges.CustomerMerged, absorbed, survivor, merge_id, 200),
        purchase(survivor, "500.00", 100),
        purchase(other, "20.00", 90),
        merge(customer_merges.CustomerUnmerged, absorbed, survivor, merge_id, 50),
        purchase(absorbed, "30.00", 10),
    ]
    await fold(pool, *([e] for e in events))
    one_by_one = await recorded(pool)
    assert one_by_one["history"] and not one_by_one["groups"]
    await fold(other_analytics_pool, events)
    assert await recorded(other_analytics_pool) == one_by_one
