"""Memory of the analytics fold over a large population: `crm bench fold-memory
--customers 1000000`.

Starts an embedded PostgreSQL and broker; a separate process publishes, for each
customer, a registration and a purchase (`local.synthetic_history.registered_buyers`,
generated as they are sent), so that none of it is in this process's memory; then this
process folds them with the service's code (`AnalyticsFold` behind the
`ProjectionHandler` in a `BatchConsumer`, its profile cache at the service's default
size) to committed profiles, sampling its resident memory throughout. It prints the
events/s, the profiles stored, and the resident memory before the fold, at its largest,
and at the end: the fold keeps at most the cache's profiles in memory, so its memory
does not grow with the population.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import tempfile
import time
from pathlib import Path

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.customer_import import MemorySampler
from contracts.topics import Topic
from local.embedded.broker import EmbeddedBroker
from local.embedded.postgres import EmbeddedPostgres
from local.synthetic_history import registered_buyers
from services.analytics.domain.money import Converter
from services.analytics.migrations import MIGRATIONS
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.settings import AnalyticsSettings
from services.runtime.messaging.consumer import BatchConsumer
from services.runtime.messaging.deadletter import DeadLetterPublisher
from services.runtime.messaging.kafka import ensure_topics
from services.runtime.messaging.projection import ProjectionHandler
from services.runtime.storage.database import create_pool, ensure_database
from services.runtime.storage.migrator import DURABLE, migrate_all

MIB = 1024 * 1024
CACHE: int = AnalyticsSettings.model_fields["analytics_profile_cache_size"].default
"""The profiles the fold keeps in memory, at the service's default."""


def publish(servers: str, customers: int) -> None:
    """Publish the population (in its own process: `multiprocessing` target)."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=20, acks=1)
        await producer.start()
        try:
            pending = []
            for event in registered_buyers(customers):
                topic, key, value = event.message()
                pending.append(await producer.send(topic, value=value, key=key))
                if len(pending) >= 10_000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    asyncio.run(send())


async def fold(
    database_url: str, servers: str, events: int, sampler: MemorySampler, cache: int
) -> float:
    """Fold `events` to committed profiles; the seconds it took."""
    await ensure_database(database_url)
    await migrate_all(database_url, "analytics", (DURABLE, MIGRATIONS))
    pool = await create_pool(database_url, "analytics")
    handler = ProjectionHandler(AnalyticsFold(Converter("CNY"), cache_capacity=cache), pool)
    handler.group_id = "bench.fold-memory"
    await handler.prepare()
    consumer = BatchConsumer(
        handler=handler,
        consumer_factory=lambda *topics, **kw: AIOKafkaConsumer(
            *topics, bootstrap_servers=servers, **kw
        ),
        dead_letters=DeadLetterPublisher(lambda: AIOKafkaProducer(bootstrap_servers=servers), "b"),
    )
    started = time.perf_counter()
    with sampler:
        task = asyncio.create_task(consumer.run())
        try:
            while await _consumed(pool) < events:
                await asyncio.sleep(1.0)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    seconds = time.perf_counter() - started
    await pool.close()
    return seconds


async def _consumed(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM consumed_events WHERE projection = 'analytics_fold'"
        )
    )


def run_fold_memory(customers: int, cache: int = CACHE) -> dict[str, float]:
    if customers < 1:
        raise ValueError("--customers must be at least 1")
    events = 2 * customers
    with tempfile.TemporaryDirectory(prefix="crm-bench-fold-memory-") as scratch:
        root = Path(scratch)
        with EmbeddedPostgres(root / "postgres") as postgres, EmbeddedBroker() as broker:
            servers = broker.bootstrap_servers
            asyncio.run(ensure_topics(servers, list(Topic)))
            started = time.perf_counter()
            publisher = multiprocessing.get_context("spawn").Process(
                target=publish, args=(servers, customers)
            )
            publisher.start()
            publisher.join()
            if publisher.exitcode != 0:
                raise RuntimeError(f"publishing failed (exit {publisher.exitcode})")
            published = time.perf_counter() - started
            before = psutil.Process().memory_info().rss
            sampler = MemorySampler(interval=0.5)
            seconds = asyncio.run(
                fold(postgres.dsn("crm_bench_fold_memory"), servers, events, sampler, cache)
            )
    peak = max(rss for _, rss in sampler.samples)
    end = sampler.samples[-1][1]
    print(
        f"analytics fold of {events:,} events (a registration and a purchase each) "
        f"for {customers:,} customers, profile cache of {cache:,}"
    )
    print(f"  published in {published:.0f} s (by another process)")
    print(f"  folded in {seconds:.0f} s: {events / seconds:.0f} events/s")
    print(
        f"  resident memory of the folding process: {before / MIB:.0f} MiB before the fold, "
        f"{peak / MIB:.0f} MiB at most, {end / MIB:.0f} MiB at the end"
    )
    return {"events": events, "seconds": seconds, "peak_mib": peak / MIB, "end_mib": end / MIB}
