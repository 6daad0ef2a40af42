"""What a broker that lost its topics costs: `crm bench refill --customers 10000`.

The local broker keeps topics in memory, so after it stops every relay publishes its
whole event store again and every consumer reads it again. This benchmark starts its own
embedded PostgreSQL and broker, records a history of customer registrations in the
customer event store, publishes it with the service's relay and applies it with the
customer directory's consumer. Then, as `crm up` does around an empty broker, the relay
publishes the history again, and it times, in the same run:

- the relay publishing it again (events per second): how long events recorded meanwhile
  wait behind the history;
- the directory's consumer reading the topic from the start, the history twice over,
  as the service does: each message it handled before is skipped by the position it
  carries, unread (`services/runtime/messaging/positions.py`);
- the same consumer without positions, recognising each message by event id in
  PostgreSQL after parsing and checking it, which is what every consumer did before.

The relay here publishes the contracts without sealing personal values (no keyring):
the service's relay does a little more work per event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import REGISTRY

from contracts.topics import Topic
from local.embedded.broker import EmbeddedBroker
from local.embedded.postgres import EmbeddedPostgres
from services.customer.application import CustomerApplication
from services.customer.migrations import MIGRATIONS
from services.customer.projections import CustomerDirectory
from services.customer.publishing import to_contract
from services.runtime.messaging.consumer import BatchConsumer
from services.runtime.messaging.deadletter import DeadLetterPublisher
from services.runtime.messaging.kafka import ensure_topics
from services.runtime.messaging.outbox import OutboxRelay, republish_from_the_start
from services.runtime.messaging.positions import ConsumerPositions
from services.runtime.messaging.projection import ProjectionHandler
from services.runtime.storage.database import create_pool, ensure_database
from services.runtime.storage.eventstore import open_event_store
from services.runtime.storage.migrator import DURABLE, migrate_all

SCHEMA = "customer"


def handled_so_far(consumer: str) -> float:
    """Messages `consumer` handled, whatever the outcome."""
    value = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if (
                sample.name == "crm_events_consumed_total"
                and sample.labels.get("consumer") == consumer
            ):
                value += sample.value
    return value


async def relay_until(relay: OutboxRelay, pool: asyncpg.Pool, newest: int) -> float:
    """Run `relay` until it has published up to `newest`; the seconds it took."""
    started = time.perf_counter()
    task = asyncio.create_task(relay.run())
    try:
        while (
            await pool.fetchval("SELECT position FROM outbox_position WHERE topic = $1", relay.name)
            or 0
        ) < newest:
            await asyncio.sleep(0.05)
        return time.perf_counter() - started
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def consume(
    servers: str, pool: asyncpg.Pool, group: str, expect: int, *, positions: bool
) -> tuple[float, float]:
    """The directory's consumer reading the topic from the start until it has handled
    `expect` messages: seconds and CPU seconds of this process, from its first batch on
    (scaled to every message: the first batch is counted when it is done)."""
    handler = ProjectionHandler(CustomerDirectory(), pool)
    handler.group_id = group
    consumer = BatchConsumer(
        handler=handler,
        consumer_factory=lambda *topics, **kw: AIOKafkaConsumer(
            *topics, bootstrap_servers=servers, **kw
        ),
        dead_letters=DeadLetterPublisher(
            lambda: AIOKafkaProducer(bootstrap_servers=servers), "bench"
        ),
        positions=ConsumerPositions(pool, handler.name) if positions else None,
    )
    before = handled_so_far(handler.name)
    task = asyncio.create_task(consumer.run())
    try:
        # timed from the first message handled: joining the group is not reading
        while handled_so_far(handler.name) == before:
            await asyncio.sleep(0.001)
        started, cpu = time.perf_counter(), time.process_time()
        first = handled_so_far(handler.name) - before
        while handled_so_far(handler.name) - before < expect:
            await asyncio.sleep(0.01)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        return seconds * expect / (expect - first), cpu * expect / (expect - first)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def measure(database_url: str, servers: str, customers: int) -> dict[str, Any]:
    await ensure_database(database_url)
    await migrate_all(database_url, SCHEMA, (DURABLE, MIGRATIONS))
    await ensure_topics(servers, [Topic.CUSTOMER], partitions=3)
    application = await open_event_store(CustomerApplication, database_url, SCHEMA)
    pool = await create_pool(database_url, SCHEMA)
    try:
        started = time.perf_counter()
        for n in range(customers):
            await asyncio.to_thread(application.register, name=f"历史客户 {n:06d}", kind="consumer")
        recorded = time.perf_counter() - started
        newest = int(application.recorder.max_notification_id() or 0)
        relay = OutboxRelay(
            application=application,
            translate=to_contract,
            database_dsn=database_url,
            schema=SCHEMA,
            topic=Topic.CUSTOMER,
            producer_factory=lambda: AIOKafkaProducer(bootstrap_servers=servers, acks="all"),
        )
        await relay_until(relay, pool, newest)
        await consume(servers, pool, "bench.first", newest, positions=True)
        async with pool.acquire() as connection:
            await republish_from_the_start(connection)
        republished = await relay_until(relay, pool, newest)
        skip, skip_cpu = await consume(servers, pool, "bench.skip", 2 * newest, positions=True)
        dedup, dedup_cpu = await consume(servers, pool, "bench.dedup", 2 * newest, positions=False)
    finally:
        await pool.close()
    return {
        "events": newest,
        "recorded_seconds": recorded,
        "republish_seconds": republished,
        "skip_seconds": skip,
        "skip_cpu": skip_cpu,
        "dedup_seconds": dedup,
        "dedup_cpu": dedup_cpu,
    }


def run_refill(args: argparse.Namespace) -> int:
    if args.customers < 1:
        raise SystemExit("--customers must be at least 1")
    with (
        tempfile.TemporaryDirectory(prefix="crm-bench-refill-") as scratch,
        EmbeddedPostgres(Path(scratch) / "postgres") as postgres,
        EmbeddedBroker() as broker,
    ):
        figures = asyncio.run(measure(postgres.dsn(), broker.bootstrap_servers, args.customers))
    events = figures["events"]
    read = 2 * events
    print(f"a history of {events:,} customer events, published again into an empty broker")
    print(f"  recorded in {figures['recorded_seconds']:.1f} s (not part of the figures)")
    print(
        f"  relay publishing it again       {events / figures['republish_seconds']:9,.0f} "
        f"events/s   ({figures['republish_seconds']:.2f} s)"
    )
    for label, key in (
        ("skipped by position (now)", "skip"),
        ("recognised by id (before)", "dedup"),
    ):
        seconds, cpu = figures[f"{key}_seconds"], figures[f"{key}_cpu"]
        print(
            f"  consumer, {label:<26} {read / seconds:9,.0f} messages/s   "
            f"({seconds:.2f} s, {cpu / read * 1e6:.0f} µs CPU per message, {read:,} read)"
        )
    print(
        f"  skipping / recognising by id: {figures['dedup_seconds'] / figures['skip_seconds']:.1f}"
        " times faster"
    )
    return 0
