"""Benchmark of purchase ingestion: `crm bench purchase-ingestion --count 20000`.

In one process: starts an embedded PostgreSQL and broker, publishes `count` completed
purchases on the inbound purchases topic, and measures events per second from the
inbound topic to committed in the sales event store and published on the sales topic.
It runs the service's real code (the `PurchaseIngestion` batch handler as a FastStream
batch subscriber, `services.runtime.messaging.subscribers`, the `SalesApplication`, the
`OutboxRelay`) twice over the same messages:

- batched: what the sales service runs, one `save()` of many new purchases per batch;
- baseline: the same, except that each purchase is saved in its own `save()` (one
  transaction per event); the check for already-recorded orders stays one query per
  batch in both, so the difference is the transactions alone.

Each run has its own database and consumer group; the baseline relays to its own topic.
The clock starts when the first batch reaches the handler (after consumer-group join).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from contracts.topics import Topic
from local.embedded.broker import EmbeddedBroker
from local.embedded.postgres import EmbeddedPostgres
from services.runtime.messaging.consumer import Parsed
from services.runtime.messaging.deadletter import DeadLetterPublisher, Rejection
from services.runtime.messaging.kafka import ensure_topics
from services.runtime.messaging.outbox import OutboxRelay
from services.runtime.messaging.subscribers import (
    InboundBroker,
    SubscribedConsumer,
    Subscription,
    declare,
    service_broker,
)
from services.runtime.metrics import EVENTS_PUBLISHED
from services.runtime.settings import ServiceSettings
from services.runtime.storage.database import create_pool, ensure_database
from services.runtime.storage.eventstore import open_event_store
from services.runtime.storage.migrator import DURABLE, migrate_all
from services.sales.application import NewPurchase, SalesApplication
from services.sales.ingestion import PurchaseIngestion
from services.sales.projections import CUSTOMERS
from services.sales.publishing import to_contract

BASELINE_TOPIC = "bench.sales-baseline.v1"
SCHEMA = "sales"
MAX_RECORDS = 2000
"""Messages per batch: the sales service's default (`CRM_CONSUMER_MAX_RECORDS`)."""


class OneSavePerPurchase(SalesApplication):
    """The baseline: every purchase in its own `save()`, its own transaction."""

    name = SalesApplication.name

    def record_purchases(self, purchases: Sequence[NewPurchase]) -> list[UUID]:
        recorded = []
        for purchase in purchases:
            aggregate = purchase.aggregate()
            self.save(aggregate)
            recorded.append(aggregate.id)
        return recorded


class TimedIngestion(PurchaseIngestion):
    """The real handler, noting when the first batch arrived (and calling
    `at_first_batch` then, if set)."""

    first_batch_at: float | None = None
    at_first_batch: Callable[[], None] | None = None

    async def handle(self, batch: Sequence[Parsed[Any]]) -> list[Rejection]:
        if self.first_batch_at is None:
            self.first_batch_at = time.perf_counter()
            if self.at_first_batch is not None:
                self.at_first_batch()
        return await super().handle(batch)


def purchases(count: int) -> list[tuple[bytes, bytes]]:
    """`count` purchases by 2,000 shop customers, as (key, value) messages."""
    return [purchase(i, "shop-cn", f"U-{i % 2000:05d}") for i in range(count)]


MOMENT = datetime(2026, 11, 1, tzinfo=UTC).isoformat()


def purchase(i: int, source: str, customer: str) -> tuple[bytes, bytes]:
    """The `i`th order of the shop, by the customer `source` calls `customer`, as a
    (key, value) message."""
    document = {
        "source": "shop-cn",
        "order_id": f"SO-{i:08d}",
        "customer_reference": {"source": source, "source_customer_id": customer},
        "amount": f"{(i % 500) + 9.9:.2f}",
        "currency": "CNY",
        "items": [{"sku": f"SKU-{i % 37}", "name": "标准版月度订阅", "quantity": 1}],
        "channel": "online",
        "occurred_at": MOMENT,
    }
    return customer.encode(), orjson.dumps(document)


async def publish(bootstrap_servers: str, messages: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", linger_ms=20, max_batch_size=1 << 20
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = [
            await producer.send(Topic.PURCHASES_INBOUND, value=value, key=key)
            for key, value in messages
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def wait_published(topic: str, expect: int) -> float:
    """Wait until the relay has `expect` purchases acknowledged by the broker.

    Reads the relay's own counter rather than consuming the topic, so that measuring
    does not take CPU from what is measured; `topic_size` checks the topic afterwards.
    """
    while published(topic) < expect:
        await asyncio.sleep(0.01)
    return time.perf_counter()


def published(topic: str) -> float:
    """The relay's count for `topic`, read from that one metric (collecting the whole
    registry would also read /proc for the process metrics, every time)."""
    return sum(
        sample.value
        for family in EVENTS_PUBLISHED.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
        and sample.labels == {"topic": topic, "event_type": "sales.purchase_recorded"}
    )


async def topic_size(bootstrap_servers: str, topic: str, expect: int) -> int:
    """How many events `topic` holds, reading it to the end (at most 30 s)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    deadline = time.monotonic() + 30
    try:
        while seen < expect and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            seen += sum(len(batch) for batch in batches.values())
        return seen
    finally:
        await consumer.stop()


async def wait_committed(pool: asyncpg.Pool, expect: int) -> float:
    while await pool.fetchval("SELECT count(*) FROM sales_events") < expect:
        await asyncio.sleep(0.05)
    return time.perf_counter()


def subscribed(
    handler: Any, bootstrap_servers: str, service: str
) -> tuple[SubscribedConsumer[Any], KafkaBroker]:
    """`handler` as a FastStream batch subscriber of its own service broker, as the
    services run their subscriptions (`services.runtime.messaging.subscribers`)."""
    subscription = Subscription(
        name=handler.name,
        group_id=handler.group_id,
        topics=tuple(handler.topics),
        message=None,
        description="Messages for the benchmark.",
        handler=lambda runtime: handler,
    )
    consumer: SubscribedConsumer[Any] = SubscribedConsumer(
        subscription=subscription,
        handler=handler,
        dead_letters=DeadLetterPublisher(
            lambda: AIOKafkaProducer(bootstrap_servers=bootstrap_servers), service
        ),
        max_records=MAX_RECORDS,
    )
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap_servers)
    broker = service_broker(service, settings, registry=CollectorRegistry())
    consumer.subscriber = declare(
        broker, subscription, consumer.consume, max_records=MAX_RECORDS, fetch_max_wait_ms=50
    )
    return consumer, broker


def sales_relay(
    application: SalesApplication, database_url: str, bootstrap_servers: str, topic: str
) -> OutboxRelay:
    """The sales service's outbox relay onto `topic`."""
    return OutboxRelay(
        application=application,
        database_dsn=database_url,
        schema=SCHEMA,
        topic=topic,
        translate=to_contract,
        producer_factory=lambda: AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5, max_batch_size=1 << 20
        ),
        batch_size=2000,
    )


async def cancel(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until they have ended."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def ingest(
    database_url: str,
    bootstrap_servers: str,
    *,
    application_class: type[SalesApplication],
    topic: str,
    group: str,
    count: int,
) -> dict[str, float]:
    await ensure_database(database_url)
    await migrate_all(database_url, SCHEMA, (DURABLE,))
    pool = await create_pool(database_url, SCHEMA)
    application = await open_event_store(application_class, database_url, SCHEMA)
    async with pool.acquire() as connection:
        await CUSTOMERS.create_tables(connection)
    handler = TimedIngestion(application, pool)
    handler.group_id = f"bench.{group}"
    consumer, broker = subscribed(handler, bootstrap_servers, "bench")
    relay = sales_relay(application, database_url, bootstrap_servers, topic)
    started = time.perf_counter()
    tasks = [
        asyncio.create_task(InboundBroker(broker, [consumer]).run()),
        asyncio.create_task(consumer.run()),
        asyncio.create_task(relay.run()),
    ]
    try:
        committed_at, published_at = await asyncio.gather(
            wait_committed(pool, count), wait_published(topic, count)
        )
    finally:
        await cancel(tasks)
        await pool.close()
        application.close()
    first = handler.first_batch_at or started
    on_topic = await topic_size(bootstrap_servers, topic, count)
    if on_topic != count:
        raise RuntimeError(f"{topic} holds {on_topic} events, expected {count}")
    return {
        "seconds": published_at - first,
        "committed_seconds": committed_at - first,
        "events_per_second": count / (published_at - first),
    }


async def measure(
    postgres: EmbeddedPostgres, broker: EmbeddedBroker, count: int
) -> dict[str, float]:
    servers = broker.bootstrap_servers
    await ensure_topics(servers, [*Topic, BASELINE_TOPIC])
    publish_seconds = await publish(servers, purchases(count))
    batched = await ingest(
        postgres.dsn("crm_bench_sales_batched"),
        servers,
        application_class=SalesApplication,
        topic=Topic.SALES,
        group="batched",
        count=count,
    )
    baseline = await ingest(
        postgres.dsn("crm_bench_sales_baseline"),
        servers,
        application_class=OneSavePerPurchase,
        topic=BASELINE_TOPIC,
        group="baseline",
        count=count,
    )
    return {
        "count": float(count),
        "publish_seconds": publish_seconds,
        "batched_seconds": batched["seconds"],
        "batched_committed_seconds": batched["committed_seconds"],
        "batched_events_per_second": batched["events_per_second"],
        "baseline_seconds": baseline["seconds"],
        "baseline_committed_seconds": baseline["committed_seconds"],
        "baseline_events_per_second": baseline["events_per_second"],
        "speedup": batched["events_per_second"] / baseline["events_per_second"],
    }


def run_purchase_ingestion(
    count: int, processes: int = 1, quix_processes: int = 1
) -> dict[str, float]:
    """Start the embedded infrastructure, measure both runs and the purchases end to end
    (`bench.purchase_pipeline`, the fold in `processes`), Python per purchase step by step
    (`bench.recording_costs`) and, if it is installed, the same job in Quix Streams
    (`bench.quix_pipeline`, in `quix_processes`); print and return the figures."""
    from bench.purchase_pipeline import print_pipeline, run_pipeline
    from bench.quix_fold import quix_installed
    from bench.quix_pipeline import print_quix_pipeline, run_quix_pipeline
    from bench.recording_costs import print_recording_costs, recording_costs

    if count < 1 or processes < 1 or quix_processes < 1:
        raise ValueError("count and processes must be at least 1")
    with tempfile.TemporaryDirectory(prefix="crm-bench-sales-") as scratch:
        root = Path(scratch)
        with EmbeddedPostgres(root / "postgres") as postgres:
            with EmbeddedBroker() as broker:
                figures = asyncio.run(measure(postgres, broker, count))
            figures.update(run_pipeline(postgres, count, processes))
        if quix_installed():
            figures.update(run_quix_pipeline(count, root / "quix", quix_processes))
    costs = recording_costs()
    figures.update({f"python_{name}": value for name, value in costs.items()})
    print_figures(figures)
    print_pipeline(figures)
    print_quix_pipeline(figures)
    print_recording_costs(costs)
    return figures


def print_figures(figures: dict[str, float]) -> None:
    print(
        f"purchase ingestion of {figures['count']:.0f} purchases: "
        "inbound topic -> event store -> sales topic"
    )
    print(f"  published to the inbound topic in {figures['publish_seconds']:.2f} s")
    print(
        f"  batched (one save per batch)     {figures['batched_events_per_second']:9.0f} events/s"
        f"   ({figures['batched_seconds']:.2f} s; committed after "
        f"{figures['batched_committed_seconds']:.2f} s)"
    )
    print(
        f"  baseline (one save per purchase) {figures['baseline_events_per_second']:9.0f} events/s"
        f"   ({figures['baseline_seconds']:.2f} s; committed after "
        f"{figures['baseline_committed_seconds']:.2f} s)"
    )
    print(f"  batched / baseline: {figures['speedup']:.1f} times")
