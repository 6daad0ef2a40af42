"""The analytics fold in several processes of one consumer group, as analytics replicas
run it: `crm bench analytics-fold --fold-processes 2`.

Each process runs the service's fold (`AnalyticsFold` behind a `ProjectionHandler` in a
`BatchConsumer`) on the partitions the group gives it (partition `n` of every topic to
one process). The clock starts at the first batch any of them handles once every process
has been given its partitions, and stops when together they have handled every event;
the CPU time is that of the processes (read by `psutil`), PostgreSQL and the broker.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable, Sequence
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from bench.figures import cpu_seconds
from contracts.envelope import EventEnvelope
from services.analytics.domain.money import Converter
from services.analytics.migrations import MIGRATIONS
from services.analytics.projections.fold import AnalyticsFold
from services.runtime.messaging.consumer import BatchConsumer, Parsed
from services.runtime.messaging.deadletter import DeadLetterPublisher, Rejection
from services.runtime.messaging.projection import ProjectionHandler
from services.runtime.storage.database import create_pool, ensure_database
from services.runtime.storage.migrator import DURABLE, migrate_all

GROUP = "bench.analytics_fold.processes"


class _Shared:
    """What the fold processes and the benchmark share."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.handled: Synchronized[int] = context.Value("q", 0)
        self.batches: Synchronized[int] = context.Value("q", 0)
        self.assigned = context.Array("b", processes)
        self.first_message_at: Synchronized[float] = context.Value("d", 0.0)
        self.context = context


class _CountingHandler(ProjectionHandler):
    """The fold's handler; its first batch waits until every process has its partitions."""

    def __init__(self, shared: _Shared, index: int, *args: Any) -> None:
        super().__init__(*args)
        self._shared = shared
        self._index = index
        projection_assigned = self.on_assigned

        def assigned() -> None:
            shared.assigned[index] = 1
            if projection_assigned is not None:
                projection_assigned()

        self.on_assigned = assigned

    def parse(self, record: ConsumerRecord[Any, Any]) -> EventEnvelope[Any]:
        """Parsed, the first message noted once every process has its partitions (as
        `bench.analytics_fold.TimedHandler`; before then a process may read partitions a
        rebalance is about to take from it)."""
        first = self._shared.first_message_at
        if not first.value and all(self._shared.assigned[:]):
            with first.get_lock():
                if not first.value:
                    first.value = time.perf_counter()
        return super().parse(record)

    async def handle(self, batch: Sequence[Parsed[Any]]) -> list[Rejection]:
        while not all(self._shared.assigned[:]):
            await asyncio.sleep(0.01)
        failed = await super().handle(batch)
        with self._shared.handled.get_lock():
            self._shared.handled.value += len(batch)
            self._shared.batches.value += 1
        return failed


def _fold_process(shared: _Shared, index: int, database_url: str, servers: str) -> None:
    asyncio.run(_fold(shared, index, database_url, servers))


async def _fold(shared: _Shared, index: int, database_url: str, servers: str) -> None:
    pool = await create_pool(database_url, "analytics")
    handler = _CountingHandler(shared, index, AnalyticsFold(Converter("CNY")), pool)
    handler.group_id = GROUP
    await handler.prepare()
    consumer = BatchConsumer(
        handler=handler,
        consumer_factory=lambda *topics, **kw: AIOKafkaConsumer(
            *topics, bootstrap_servers=servers, **kw
        ),
        dead_letters=DeadLetterPublisher(lambda: AIOKafkaProducer(bootstrap_servers=servers), "b"),
        max_records=handler.max_records or 2000,
    )
    await consumer.run()


class FoldProcesses:
    """`processes` fold processes of one group on the analytics database at
    `database_url`: started by `start`, ended by `stop`."""

    def __init__(self, database_url: str, servers: str, processes: int) -> None:
        self.shared = _Shared(processes)
        self.workers = [
            self.shared.context.Process(
                target=_fold_process, args=(self.shared, n, database_url, servers)
            )
            for n in range(processes)
        ]
        self._database_url = database_url
        self._watched: list[psutil.Process] = []

    async def start(self) -> None:
        """Make the fold's tables once (before the processes race to make them), start
        the processes and wait until each has its partitions."""
        pool = await create_pool(self._database_url, "analytics")
        try:
            await ProjectionHandler(AnalyticsFold(Converter("CNY")), pool).prepare()
        finally:
            await pool.close()
        for worker in self.workers:
            worker.start()
        self._watched = [psutil.Process(w.pid) for w in self.workers]
        while not all(self.shared.assigned[:]):
            for worker in self.workers:
                if not worker.is_alive():
                    raise RuntimeError(f"a fold process ended ({worker.exitcode})")
            await asyncio.sleep(0.01)

    def cpu(self) -> float:
        """The CPU seconds the processes used so far."""
        return sum(cpu_seconds(p) for p in self._watched)

    def stop(self) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.join(10)


async def fold_in_processes(
    database_url: str,
    servers: str,
    expect: int,
    servers_cpu: Callable[[], tuple[float, float]],
    processes: int,
) -> dict[str, float]:
    """Events/s of `processes` fold processes over the `expect` events on the topics, and
    the CPU seconds of the processes, PostgreSQL and the broker."""
    await ensure_database(database_url)
    await migrate_all(database_url, "analytics", (DURABLE, MIGRATIONS))
    fold = FoldProcesses(database_url, servers, processes)
    shared = fold.shared
    try:
        await fold.start()
        cpu_before = fold.cpu()
        postgres_before, broker_before = servers_cpu()
        while shared.handled.value < expect:
            await asyncio.sleep(0.02)
        done = time.perf_counter()
        python_cpu = fold.cpu() - cpu_before
        postgres_after, broker_after = servers_cpu()
    finally:
        fold.stop()
    seconds = done - (shared.first_message_at.value or done)
    return {
        "events_per_second": expect / seconds,
        "seconds": seconds,
        "average_batch": expect / max(shared.batches.value, 1),
        "python_cpu": python_cpu,
        "postgres_cpu": postgres_after - postgres_before,
        "broker_cpu": broker_after - broker_before,
    }
