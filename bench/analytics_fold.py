"""Benchmark of the analytics fold: `crm bench analytics-fold --customers 10000`.

In one process: starts an embedded PostgreSQL and broker, publishes a generated history
(`local.synthetic_history`: registrations, purchases, won contracts, interactions, surveys,
tickets) on the customer, sales and interaction topics in the order the facts occurred,
as they are published live (customers' facts interleaved), each message with its position
as a relay publishes it, then measures, in the same run:

- raw consume: a plain aiokafka consumer reading the same topics to the end (no parsing);
- fold: the analytics service's real code (`AnalyticsFold` behind the
  `ProjectionHandler` in a `BatchConsumer`, transactions of up to
  `CRM_ANALYTICS_FOLD_MAX_RECORDS` = 10,000 facts),
  from the topics to committed analytics state (profiles, memberships, outbox), clock
  started when the consumer has the first message in hand (reading in event time, it
  parses messages of every partition before the first batch goes to the handler: timed
  from that batch, a history of 44,000 events would leave most of its parsing out of
  the time); then the same with the topics read
  as the broker serves them rather than in event time (`alignment`), for its cost;
- rebuild: `crm rebuild analytics` over the same history, into the database the fold
  filled (read into a shadow schema, then swapped in);
- baseline: the same handler and fold, one event per transaction, over the first
  `--baseline-events` events;
- Quix Streams (`bench.quix_fold`, when its extra `bench-quix` is installed): the same
  events folded per customer with a stateful `apply` into Quix's RocksDB state store, by
  its own consumer group from the beginning; its rate, the fold's rate over it, and the
  CPU each takes per event; then Quix doing the fold's own work with the fold's code
  (`bench.quix_concluding`: the tolerant reader, the profile folded and every rule
  concluded in event time, each conclusion produced as its contract envelope);
- floor: the same consumer and handler with a projection that folds nothing
  (`NothingFolded`): fetching, validating every contract, recording the event ids and
  committing, which any fold with the same guarantees does before folding; the rate
  that leaves a fold, and the CPU it takes. (The fold reads only what it reads,
  `services.analytics.projections.reads`, and recognises the messages by position in
  its transaction, `positions.recognise`; the floor does neither.)

Beside the fold's rate it prints the CPU time each process used for it (this Python
process, PostgreSQL, the broker) and what that CPU time alone allows on this machine's
cores, however well the processes overlapped.

Each run has its own database and consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from bench.figures import PARTITIONS, allowed_rate, quiet
from bench.fold_processes import fold_in_processes
from bench.quix_concluding import CONCLUSIONS, concluding_run
from bench.quix_fold import INSTALL_HINT, quix_installed, quix_run
from contracts.envelope import EventEnvelope
from contracts.topics import Topic
from local.embedded.broker import EmbeddedBroker
from local.embedded.postgres import EmbeddedPostgres
from local.synthetic_history import history
from services.analytics.domain.money import Converter
from services.analytics.migrations import MIGRATIONS
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.projections.store import Bounds
from services.runtime.messaging.consumer import BatchConsumer, Parsed
from services.runtime.messaging.deadletter import DeadLetterPublisher, Rejection
from services.runtime.messaging.kafka import ensure_topics
from services.runtime.messaging.positions import position_header
from services.runtime.messaging.projection import Projection, ProjectionHandler
from services.runtime.messaging.rebuild import rebuild_projections
from services.runtime.storage.database import create_pool, ensure_database
from services.runtime.storage.migrator import DURABLE, migrate_all

TOPICS = (Topic.CUSTOMER, Topic.SALES, Topic.INTERACTION)
FOLD_DATABASE = "crm_bench_analytics_fold"
PROCESSES_DATABASE = "crm_bench_analytics_processes"
MAX_RECORDS = 2000
"""Messages per batch of the projections that do not say (`CRM_CONSUMER_MAX_RECORDS`)."""


class TimedHandler(ProjectionHandler):
    """The fold's handler, noting when the consumer had the first message in hand (the
    first parsed, as Quix's clock starts at its first message): reading in event time, the
    consumer parses messages of every partition before its first batch is released."""

    first_message_at: float | None = None
    handled = 0
    batches = 0

    def parse(self, record: ConsumerRecord[Any, Any]) -> EventEnvelope[Any]:
        if self.first_message_at is None:
            self.first_message_at = time.perf_counter()
        return super().parse(record)

    async def handle(self, batch: Sequence[Parsed[Any]]) -> list[Rejection]:
        failed = await super().handle(batch)
        self.handled += len(batch)
        self.batches += 1
        return failed


async def publish(servers: str, messages: list[tuple[str, bytes, bytes]]) -> float:
    """Publish `messages` as the services' relays do: each with its position, one source
    per topic, in order (`positions`)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=servers, acks="all", linger_ms=20, max_batch_size=1 << 20
    )
    await producer.start()
    started = time.perf_counter()
    positions: Counter[str] = Counter()
    try:
        pending = []
        for t, k, v in messages:
            positions[t] += 1
            header = position_header(f"bench.{t}", positions[t])
            pending.append(await producer.send(t, value=v, key=k, headers=[header]))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_consume(servers: str, expect: int) -> float:
    consumer = AIOKafkaConsumer(
        *TOPICS,
        bootstrap_servers=servers,
        group_id="bench.raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    started: float | None = None
    try:
        while seen < expect:
            batches = await consumer.getmany(timeout_ms=500, max_records=MAX_RECORDS)
            if batches and started is None:
                started = time.perf_counter()
            seen += sum(len(b) for b in batches.values())
    finally:
        await consumer.stop()
    return expect / (time.perf_counter() - (started or time.perf_counter()))


class NothingFolded:
    """A projection of the fold's topics that applies nothing: what is left is the work
    every batch does before the fold (validating, recording the event ids, committing)."""

    name = "nothing_folded"
    topics = AnalyticsFold.topics
    version = 1

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        return None

    async def apply(self, connection: asyncpg.Connection, events: Sequence[Any]) -> None:
        return None


async def fold_run(
    database_url: str,
    servers: str,
    expect: int,
    servers_cpu: Callable[[], tuple[float, float]],
    projection: Projection,
    *,
    aligned: bool = True,
) -> dict[str, float]:
    """`projection` from the topics to committed state, with the CPU seconds of this
    process and of the servers (`servers_cpu`: PostgreSQL's and the broker's so far) it
    took; with `aligned` false, its topics are read as the broker serves them, not in
    event time."""
    await ensure_database(database_url)
    await migrate_all(database_url, "analytics", (DURABLE, MIGRATIONS))
    pool = await create_pool(database_url, "analytics")
    handler = TimedHandler(projection, pool)
    handler.group_id = f"bench.{projection.name}.{'aligned' if aligned else 'unaligned'}"
    if not aligned:
        handler.aligned_topics = ()
    await handler.prepare()
    consumer = BatchConsumer(
        handler=handler,
        consumer_factory=lambda *topics, **kw: AIOKafkaConsumer(
            *topics, bootstrap_servers=servers, **kw
        ),
        dead_letters=DeadLetterPublisher(lambda: AIOKafkaProducer(bootstrap_servers=servers), "b"),
        max_records=handler.max_records or MAX_RECORDS,
    )
    python_before, (postgres_before, broker_before) = time.process_time(), servers_cpu()
    task = asyncio.create_task(consumer.run())
    try:
        while handler.handled < expect:
            await asyncio.sleep(0.02)
        done = time.perf_counter()
        python_cpu = time.process_time() - python_before
        postgres_after, broker_after = servers_cpu()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await pool.close()
    seconds = done - (handler.first_message_at or done)
    return {
        "events_per_second": expect / seconds,
        "seconds": seconds,
        "average_batch": handler.handled / max(1, handler.batches),
        "python_cpu": python_cpu,
        "postgres_cpu": postgres_after - postgres_before,
        "broker_cpu": broker_after - broker_before,
    }


async def baseline_run(database_url: str, servers: str, events: int) -> float:
    """One event per transaction through the same handler and fold."""
    await ensure_database(database_url)
    await migrate_all(database_url, "analytics", (DURABLE, MIGRATIONS))
    pool = await create_pool(database_url, "analytics")
    handler = ProjectionHandler(AnalyticsFold(Converter("CNY")), pool)
    await handler.prepare()
    consumer = AIOKafkaConsumer(
        *TOPICS,
        bootstrap_servers=servers,
        group_id="bench.baseline",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        while len(records) < events:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=events)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    records = records[:events]
    started = time.perf_counter()
    for record in records:
        await handler.handle([Parsed(record, handler.parse(record))])
    seconds = time.perf_counter() - started
    await pool.close()
    return events / seconds


async def measure(
    postgres: EmbeddedPostgres,
    broker: EmbeddedBroker,
    customers: int,
    baseline: int,
    processes: int,
) -> dict[str, float]:
    servers = broker.bootstrap_servers
    await ensure_topics(servers, list(Topic), partitions=PARTITIONS)
    # in the order the facts occurred, as they are published live: every reader (the fold,
    # Quix Streams) meets each customer's facts in the same order
    events = sorted(
        history(customers), key=lambda e: datetime.fromisoformat(e.document["occurred_at"])
    )
    messages = [e.message() for e in events]
    publish_seconds = await publish(servers, messages)
    count = len(messages)
    raw = await raw_consume(servers, count)

    def servers_cpu() -> tuple[float, float]:
        return postgres.cpu_seconds(), broker.cpu_seconds()

    fold_database = postgres.dsn(FOLD_DATABASE)
    await quiet(servers_cpu)
    folded = await fold_run(
        fold_database, servers, count, servers_cpu, AnalyticsFold(Converter("CNY"))
    )
    profiles, conclusions = await fold_counts(fold_database)
    shared: dict[str, float] = {}
    if processes > 1:  # next, so that the folds' runs find the servers alike
        await vacuumed(fold_database, servers_cpu)
        shared = await fold_in_processes(
            postgres.dsn(PROCESSES_DATABASE), servers, count, servers_cpu, processes
        )
        await vacuumed(postgres.dsn(PROCESSES_DATABASE), servers_cpu)
    await vacuumed(fold_database, servers_cpu)
    rebuild = await rebuild_run(fold_database, servers, count)
    await vacuumed(fold_database, servers_cpu)
    unaligned_database = postgres.dsn("crm_bench_analytics_unaligned")
    unaligned = await fold_run(
        unaligned_database,
        servers,
        count,
        servers_cpu,
        AnalyticsFold(Converter("CNY")),
        aligned=False,
    )
    await vacuumed(unaligned_database, servers_cpu)
    floor_database = postgres.dsn("crm_bench_analytics_floor")
    floor = await fold_run(floor_database, servers, count, servers_cpu, NothingFolded())
    await vacuumed(floor_database, servers_cpu)
    per_event = await baseline_run(
        postgres.dsn("crm_bench_analytics_baseline"), servers, min(baseline, count)
    )
    return {
        "customers": customers,
        "events": count,
        "publish_seconds": publish_seconds,
        "raw_events_per_second": raw,
        "fold_events_per_second": folded["events_per_second"],
        "fold_seconds": folded["seconds"],
        "profiles": profiles,
        "conclusions": conclusions,
        "average_batch": folded["average_batch"],
        **{f"rebuild_{name}": value for name, value in rebuild.items()},
        "unaligned_events_per_second": unaligned["events_per_second"],
        "unaligned_python_cpu": unaligned["python_cpu"],
        "baseline_events_per_second": per_event,
        "python_cpu": folded["python_cpu"],
        "postgres_cpu": folded["postgres_cpu"],
        "broker_cpu": folded["broker_cpu"],
        "floor_events_per_second": floor["events_per_second"],
        **{f"floor_{name}_cpu": floor[f"{name}_cpu"] for name in CPU_USERS},
        **({f"processes_{name}": value for name, value in shared.items()} if shared else {}),
        **({"processes": processes} if shared else {}),
    }


async def vacuumed(database_url: str, servers_cpu: Callable[[], tuple[float, ...]]) -> None:
    """Vacuum and analyse the database a run filled, then wait for the servers to go quiet
    (`quiet`): left to autovacuum, that work lands in a later run's figures (two fold
    processes measured 12,500 to 19,300 events/s across three runs without it)."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()
    await quiet(servers_cpu)


async def rebuild_run(database_url: str, servers: str, events: int) -> dict[str, float]:
    """`crm rebuild analytics` over the same history, into the database the fold filled:
    read from the beginning into a shadow schema, then swapped in. Its events/s in all and
    while reading and applying, and the seconds of its swap and of settling within it."""
    started = time.perf_counter()
    (report,) = await rebuild_projections(
        [AnalyticsFold(Converter("CNY"))],
        database_dsn=database_url,
        schema="analytics",
        consumer_factory=lambda **kw: AIOKafkaConsumer(bootstrap_servers=servers, **kw),
    )
    return {
        "events_per_second": events / (time.perf_counter() - started),
        "reading_events_per_second": report.reading_rate,
        "swap_seconds": report.swap_seconds,
        "settling_seconds": report.settling_seconds,
    }


async def fold_counts(database_url: str) -> tuple[int, int]:
    """Profiles and conclusions (outbox rows) the fold left."""
    pool = await create_pool(database_url, "analytics")
    try:
        async with pool.acquire() as connection:
            profiles = await connection.fetchval("SELECT count(*) FROM profiles")
            conclusions = await connection.fetchval("SELECT count(*) FROM outbox")
    finally:
        await pool.close()
    return profiles, conclusions


def run_analytics_fold(customers: int, baseline: int, processes: int = 1) -> dict[str, float]:
    if customers < 1 or baseline < 1 or processes < 1:
        raise ValueError("--customers, --baseline-events and --fold-processes must be at least 1")
    with tempfile.TemporaryDirectory(prefix="crm-bench-analytics-") as scratch:
        root = Path(scratch)
        with EmbeddedPostgres(root / "postgres") as postgres, EmbeddedBroker() as broker:
            figures = asyncio.run(measure(postgres, broker, customers, baseline, processes))

            def servers_cpu() -> tuple[float, float]:
                return postgres.cpu_seconds(), broker.cpu_seconds()

            if quix_installed():
                asyncio.run(quiet(servers_cpu))
                broker_before = broker.cpu_seconds()
                quix = quix_run(
                    broker.bootstrap_servers, TOPICS, int(figures["events"]), root / "quix"
                )
                figures.update({f"quix_{name}": value for name, value in quix.items()})
                figures["quix_broker_cpu"] = broker.cpu_seconds() - broker_before
                asyncio.run(
                    ensure_topics(broker.bootstrap_servers, [CONCLUSIONS], partitions=PARTITIONS)
                )
                asyncio.run(quiet(servers_cpu))
                broker_before = broker.cpu_seconds()
                same = concluding_run(
                    broker.bootstrap_servers,
                    TOPICS,
                    int(figures["events"]),
                    root / "quix-concluding",
                    # as the fold's run began: no segment defined, no RFM boundaries yet
                    # (the rebuild's settling computes them in the fold's database after)
                    rules=[],
                    bounds=Bounds(None, None, None),
                    converter=Converter("CNY"),
                )
                figures.update({f"quix_same_{name}": value for name, value in same.items()})
                figures["quix_same_broker_cpu"] = broker.cpu_seconds() - broker_before
    fold, raw, base = (
        figures["fold_events_per_second"],
        figures["raw_events_per_second"],
        figures["baseline_events_per_second"],
    )
    print(
        f"analytics fold of {figures['events']:.0f} events for {customers} customers "
        "(customer, sales and interaction topics -> committed analytics state)"
    )
    print(f"  published in {figures['publish_seconds']:.2f} s")
    print(f"  raw consume (aiokafka, no parsing)   {raw:9.0f} events/s")
    print(
        f"  fold (batched, the service's code)   {fold:9.0f} events/s   "
        f"({figures['fold_seconds']:.2f} s; {figures['profiles']:.0f} profiles, "
        f"{figures['conclusions']:.0f} conclusions in the outbox; "
        f"{figures['average_batch']:.0f} events per batch on average)"
    )
    unaligned = figures["unaligned_events_per_second"]
    print(
        f"  fold, topics not read in event time  {unaligned:9.0f} events/s   "
        f"(aligned / not: {fold / unaligned:.2f} times the rate, "
        f"{figures['python_cpu'] / figures['unaligned_python_cpu']:.2f} times the Python CPU)"
    )
    rebuilt, reading = (
        figures["rebuild_events_per_second"],
        figures["rebuild_reading_events_per_second"],
    )
    print(
        f"  rebuild (crm rebuild's code)         {rebuilt:9.0f} events/s   "
        f"(rebuild / fold: {rebuilt / fold:.2f}; reading and applying {reading:.0f} events/s, "
        f"{reading / fold:.2f} of the fold, then the swap {figures['rebuild_swap_seconds']:.2f} s, "
        f"{figures['rebuild_settling_seconds']:.2f} s of it settling)"
    )
    print(f"  baseline (one event per transaction) {base:9.0f} events/s")
    events, cores = figures["events"], os.cpu_count() or 1
    cpu = {name: figures[f"{name}_cpu"] for name in CPU_USERS}
    print("  CPU time of the fold: " + cpu_line(cpu, events))
    print(
        f"  what that CPU time allows on {cores} cores, perfectly overlapped: "
        f"{allowed_rate(cpu, events, cores):.0f} events/s"
    )
    print(f"  fold / raw consume: {fold / raw:.2f}   fold / baseline: {fold / base:.1f} times")
    print_processes(figures, fold)
    floor = figures["floor_events_per_second"]
    floor_cpu = {name: figures[f"floor_{name}_cpu"] for name in CPU_USERS}
    print(
        f"  floor (validated and recorded, nothing folded) {floor:9.0f} events/s   "
        f"(fold / floor: {fold / floor:.2f})"
    )
    print("  CPU time of the floor: " + cpu_line(floor_cpu, events))
    print(
        "  CPU the fold adds per event: "
        + ", ".join(
            f"{name} {(cpu[name] - floor_cpu[name]) / events * 1e6:.0f} µs" for name in CPU_USERS
        )
    )
    print_quix(figures, cpu)
    return figures


def print_processes(figures: dict[str, float], fold: float) -> None:
    """The row of the fold in several processes of one group, if it ran."""
    if "processes" not in figures:
        return
    rate, events = figures["processes_events_per_second"], figures["events"]
    print(
        f"  fold in {figures['processes']:.0f} processes of one group {rate:9.0f} events/s   "
        f"({figures['processes_seconds']:.2f} s; {rate / fold:.2f} times one process; "
        f"{figures['processes_average_batch']:.0f} events per batch on average)"
    )
    cpu = {name: figures[f"processes_{name}_cpu"] for name in CPU_USERS}
    print(f"  CPU time of the {figures['processes']:.0f} processes: " + cpu_line(cpu, events))


def print_quix(figures: dict[str, float], fold_cpu: dict[str, float]) -> None:
    """The Quix Streams rows, or how to install it."""
    if "quix_events_per_second" not in figures:
        print("  " + INSTALL_HINT)
        return
    quix, events = figures["quix_events_per_second"], figures["events"]
    print(
        f"  Quix Streams (stateful apply, RocksDB) {quix:7.0f} events/s   "
        f"({figures['quix_seconds']:.2f} s, {figures['quix_seconds_to_last']:.2f} s to the "
        f"last event; {figures['quix_customers']:.0f} customers; at-least-once)"
    )
    print_ratios(
        figures,
        "Quix Streams",
        quix,
        "(target: at least 1.3 times, and the fold at least 25000 events/s)",
    )
    quix_cpu = {"python": figures["quix_cpu"], "broker": figures["quix_broker_cpu"]}
    print("  CPU time of Quix Streams: " + cpu_line(quix_cpu, events))
    fold_total, quix_total = sum(fold_cpu.values()), sum(quix_cpu.values())
    print(
        f"  CPU per event, all processes: fold {fold_total / events * 1e6:.0f} µs, "
        f"Quix Streams {quix_total / events * 1e6:.0f} µs "
        f"(fold / Quix Streams: {fold_total / quix_total:.2f} times the CPU)"
    )
    same = figures["quix_same_events_per_second"]
    print(
        f"  Quix Streams doing the fold's work    {same:7.0f} events/s   "
        f"({figures['quix_same_seconds']:.2f} s; {figures['quix_same_customers']:.0f} customers, "
        f"{figures['quix_same_conclusions']:.0f} conclusions produced, "
        f"{figures['quix_same_out_of_order']:.0f} facts met after a later one of their "
        f"customer, {figures['quix_same_again']:.0f} met again; the fold's reader, folding "
        "and concluding, `bench.quix_concluding`)"
    )
    print_ratios(figures, "Quix Streams doing the fold's work", same)
    same_cpu = {"python": figures["quix_same_cpu"], "broker": figures["quix_same_broker_cpu"]}
    same_total = sum(same_cpu.values())
    print(
        "  CPU time of Quix Streams doing the fold's work: "
        + cpu_line(same_cpu, events)
        + f" (fold / it: {fold_total / same_total:.2f} times the CPU)"
    )


def print_ratios(figures: dict[str, float], other: str, rate: float, note: str = "") -> None:
    """The fold's rate over `other`'s, and its processes' if they ran."""
    fold = figures["fold_events_per_second"]
    print(f"  fold / {other}: {fold / rate:.2f} times" + (f" {note}" if note else ""))
    if "processes" in figures:
        shared = figures["processes_events_per_second"]
        print(
            f"  fold in {figures['processes']:.0f} processes / {other}: {shared / rate:.2f} times"
        )


CPU_USERS = ("python", "postgres", "broker")


def cpu_line(cpu: dict[str, float], events: float) -> str:
    return ", ".join(
        f"{name} {s:.2f} s ({s / events * 1e6:.0f} µs/event)" for name, s in cpu.items()
    )
