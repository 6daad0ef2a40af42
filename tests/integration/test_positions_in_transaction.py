"""A projection recognised by position (`positions.recognise`): each message a relay
published is applied once, through redeliveries, republications at new offsets and two
replicas handling the same batch, with no row per event in `consumed_events`; a message
without a position is recognised by its id, as before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from contracts import customer as contract
from contracts.envelope import EventEnvelope
from services.analytics.migrations import MIGRATIONS
from services.runtime.messaging.consumer import Parsed
from services.runtime.messaging.positions import position_header
from services.runtime.messaging.projection import ProjectionHandler
from services.runtime.messaging.rebuild import ProjectionRebuild
from services.runtime.storage.database import create_pool
from services.runtime.storage.migrator import DURABLE, migrate_all
from tests.support.events import as_message, envelope
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import read_topic

TOPIC = "crm.customer.events.v1"


class Counted:
    """Counts every event it is given (a row each, duplicates kept)."""

    name = "counted"
    topics: Sequence[str] = (TOPIC,)
    version = 1
    recognised_by_position = True

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await connection.execute("CREATE TABLE IF NOT EXISTS counted (event_id uuid)")

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        await asyncio.sleep(0.3)  # long enough for a second replica to come in between
        await connection.executemany(
            "INSERT INTO counted VALUES ($1)", [(e.event_id,) for e in events]
        )


def record(value: bytes, offset: int, position: int | None) -> ConsumerRecord[Any, Any]:
    headers = [] if position is None else [position_header("crm.customer", position)]
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, None, value, None, 0, len(value), tuple(headers))


def values(count: int) -> list[bytes]:
    customer = uuid.uuid4()
    return [
        as_message(envelope(customer, v, contract.CustomerTagged(tags=[f"t{v}"])))[1]
        for v in range(1, count + 1)
    ]


@pytest.fixture
async def handler(analytics_pool: asyncpg.Pool) -> ProjectionHandler:
    handler = ProjectionHandler(Counted(), analytics_pool)
    await handler.prepare()
    return handler


async def handle(handler: ProjectionHandler, records: list[ConsumerRecord[Any, Any]]) -> None:
    assert await handler.handle([Parsed(r, handler.parse(r)) for r in records]) == []


async def counts(pool: asyncpg.Pool) -> tuple[int, int, int]:
    """Events applied, distinct events applied, rows in `consumed_events`."""
    row = await pool.fetchrow(
        "SELECT count(*), count(DISTINCT event_id),"
        " (SELECT count(*) FROM consumed_events) FROM counted"
    )
    return row[0], row[1], row[2]


async def test_redelivered_and_republished_messages_are_applied_once(
    handler: ProjectionHandler, analytics_pool: asyncpg.Pool
) -> None:
    published = values(6)
    first = [record(v, n, n + 1) for n, v in enumerate(published)]
    await handle(handler, first[:4])
    await handle(handler, first[2:])  # redelivered in part, after a crash before the commit
    # the broker lost its topics and the relay published everything again, at new offsets
    await handle(handler, [record(v, 100 + n, n + 1) for n, v in enumerate(published)])
    # the partition's first batch is recorded by id (`recognise`), none after it
    assert await counts(analytics_pool) == (6, 6, 4)
    stored = await analytics_pool.fetchval(
        "SELECT position FROM consumer_positions WHERE consumer = 'counted:applied'"
    )
    assert stored == 6


async def test_messages_without_a_position_are_recognised_by_id(
    handler: ProjectionHandler, analytics_pool: asyncpg.Pool
) -> None:
    published = values(3)
    await handle(handler, [record(v, n, None) for n, v in enumerate(published)])
    await handle(handler, [record(v, 10 + n, None) for n, v in enumerate(published)])
    assert await counts(analytics_pool) == (3, 3, 3)


async def test_what_was_recognised_by_id_is_not_applied_again_with_a_position(
    handler: ProjectionHandler, analytics_pool: asyncpg.Pool
) -> None:
    """Applied before positions were kept in the transaction (by id), then published
    again by the relay with positions: the first positions of a partition are checked
    against the ids."""
    published = values(4)
    await handle(handler, [record(v, n, None) for n, v in enumerate(published[:3])])
    await handle(handler, [record(v, 10 + n, n + 1) for n, v in enumerate(published)])
    await handle(handler, [record(v, 20 + n, n + 1) for n, v in enumerate(published)])
    assert await counts(analytics_pool) == (4, 4, 4)


async def test_two_replicas_handling_the_same_batch_apply_it_once(
    handler: ProjectionHandler, analytics_pool: asyncpg.Pool
) -> None:
    published = values(5)
    await handle(handler, [record(published[0], 0, 1)])  # the partition's position is kept
    other = ProjectionHandler(Counted(), analytics_pool)
    async with analytics_pool.acquire(), analytics_pool.acquire():
        pass  # two connections open, so that both replicas begin at once
    batch = [record(v, n, n + 1) for n, v in enumerate(published)]
    await asyncio.gather(handle(handler, batch), handle(other, batch))
    assert await counts(analytics_pool) == (5, 5, 1)


async def test_a_rebuild_hands_the_live_consumer_the_positions_it_applied(
    infra: Infrastructure,
) -> None:
    """The live consumer applied the first 3 of 5 messages when the rebuild swapped in
    all 5: the live consumer, reading on from its offsets, applies nothing twice."""
    await migrate_all(infra.database_url, "analytics", (DURABLE, MIGRATIONS))
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for position, value in enumerate(values(5), start=1):
            header = position_header("crm.customer", position)
            await producer.send_and_wait(TOPIC, value, partition=0, headers=[header])
    finally:
        await producer.stop()
    records = await read_topic(infra.bootstrap_servers, TOPIC, expect=5)
    pool = await create_pool(infra.database_url, "analytics")
    try:
        live = ProjectionHandler(Counted(), pool)
        await live.prepare()
        await handle(live, records[:3])
        await ProjectionRebuild(
            projection=Counted(),
            database_dsn=infra.database_url,
            schema="analytics",
            consumer_factory=lambda **kw: AIOKafkaConsumer(
                bootstrap_servers=infra.bootstrap_servers, **kw
            ),
        ).run()
        await handle(live, records[3:])
        assert (await counts(pool))[:2] == (5, 5)
    finally:
        await pool.close()
