"""A projection consumer killed after applying a batch and before committing its offsets,
then restarted, leaves every row as one pass over the events would: nothing lost,
nothing counted twice, duplicates at other offsets recognised."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from contracts.topics import Topic
from services.customer.projections import fold
from tests.support.database import fetch
from tests.support.events import as_message, customer_history
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_raw
from tests.support.waiting import eventually


async def directory_rows(database_url: str) -> dict[uuid.UUID, tuple[object, ...]]:
    records = await fetch(
        database_url,
        "SELECT customer_id, name, tags, version, change_count FROM customer.customer_directory",
    )
    return {
        r["customer_id"]: (r["name"], list(r["tags"]), r["version"], r["change_count"])
        for r in records
    }


async def consumed_count(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM customer.consumed_events"))
    finally:
        await connection.close()


async def test_killed_between_apply_and_commit_then_restarted(infra: Infrastructure) -> None:
    histories = [customer_history(uuid.uuid4(), f"客户 {i}", tags=3) for i in range(150)]
    events = [e for history in histories for e in history]
    # Every tenth event is delivered a second time, later, at another offset.
    messages = [as_message(e) for e in events] + [as_message(e) for e in events[::10]]
    await publish_raw(infra.bootstrap_servers, Topic.CUSTOMER, messages)

    crashing = infra.service("customer", CRM_FAILPOINTS="consumer_after_handle_before_commit")
    crashing.start(wait_ready=False)
    exit_code = await asyncio.to_thread(crashing.wait_exit, 60)
    assert exit_code == 137, crashing.log()
    applied_before_crash = await consumed_count(infra.database_url)
    assert applied_before_crash > 0, "the first batch should have been committed to PostgreSQL"

    restarted = infra.service("customer")
    await asyncio.to_thread(restarted.start)
    try:

        async def all_consumed() -> bool:
            return await consumed_count(infra.database_url) >= len(events)

        await eventually(all_consumed, describe=f"{len(events)} events consumed")
        rows = await directory_rows(infra.database_url)
    finally:
        await asyncio.to_thread(restarted.stop)

    expected = {}
    for history in histories:
        row = None
        for event in history:
            row = fold(row, event)
        assert row is not None
        expected[row["customer_id"]] = (
            row["name"],
            row["tags"],
            row["version"],
            row["change_count"],
        )
    assert rows == expected
    assert all(row[3] == 4 for row in rows.values()), "each customer has exactly four changes"
    assert await consumed_count(infra.database_url) == len(events)
