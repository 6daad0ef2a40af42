"""The Quix Streams application of `bench.quix_pipeline` in several processes of one
consumer group, as a stream processor scales out: `crm bench purchase-ingestion
--quix-processes N`.

Each process runs the same application (`pipeline_application`), its own RocksDB state
for the partitions it is given (Quix assigns by range: partition n of every topic to one
process, so the inbound, repartition, sales and customer topics' partition n are folded
together). The purchases are published once every process has its partitions (so that no
rebalance, and no state recovery, falls inside the measurement); the clock runs from the
first inbound message any process reads until every purchase is folded (and every
first-seen customer registered too), counted in shared memory; each process stops itself
then. The CPU is that of every process from the publication on.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from bench.purchase_ingestion import publish
from bench.quix_pipeline import POLL_TIMEOUT, pipeline_application

START_TIMEOUT = 120.0
"""Seconds the processes may take to start and be given their partitions."""
RUN_TIMEOUT = 600.0
"""Seconds the processes may take to fold every purchase and first-seen customer."""
SETTLE = 2.0
"""Seconds every process must have held its partitions before the purchases go out."""
PURCHASES, REGISTERED, PROFILES = range(3)


class SharedTally:
    """The `Tally` of one of the processes: counts in memory shared by all of them."""

    def __init__(self, counts: Any, first_at: Any) -> None:
        self.counts = counts
        self.first_at = first_at

    def first(self) -> None:
        with self.first_at.get_lock():
            if not self.first_at.value:
                self.first_at.value = time.monotonic()

    def folded(self, purchase: bool, registers: bool, new_profile: bool) -> None:
        with self.counts.get_lock():
            self.counts[PURCHASES] += purchase
            self.counts[REGISTERED] += registers
            self.counts[PROFILES] += new_profile


def work(
    servers: str,
    known: dict[tuple[str, str], UUID],
    state_dir: Path,
    number: int,
    shared: dict[str, Any],
    expect: tuple[int, int],
) -> None:
    """One process: runs the application until every purchase and every first-seen
    customer is folded (by all of them), then puts its CPU seconds since the publication
    on `shared["results"]`."""
    counts, ready, go = shared["counts"], shared["ready"], shared["go"]
    app = pipeline_application(
        servers, known, state_dir, SharedTally(counts, shared["first_at"]), POLL_TIMEOUT
    )
    assign, revoke = app._on_assign, app._on_revoke

    def on_assign(consumer: Any, partitions: list[Any]) -> None:
        assign(consumer, partitions)
        if partitions:
            ready[number] = 1

    def on_revoke(consumer: Any, partitions: list[Any]) -> None:
        ready[number] = 0
        revoke(consumer, partitions)

    app._on_assign, app._on_revoke = on_assign, on_revoke
    cpu: list[float] = []

    def watch() -> None:
        while not go.value:
            time.sleep(0.005)
        cpu.append(time.process_time())
        while counts[PURCHASES] < expect[0] or counts[REGISTERED] < expect[1]:
            time.sleep(0.005)
        app.stop()

    threading.Thread(target=watch, daemon=True).start()
    app.run()
    shared["results"].put(time.process_time() - cpu[0] if cpu else 0.0)


def quix_in_processes(
    servers: str,
    messages: list[tuple[bytes, bytes]],
    known: dict[tuple[str, str], UUID],
    first_seen_customers: int,
    scratch: Path,
    processes: int,
    broker_cpu: Any,
) -> dict[str, float]:
    """The application in `processes` processes over `messages`, published once all
    have their partitions: the figures of `quix_pipeline_run` (CPU: all processes)."""
    context = multiprocessing.get_context("spawn")
    shared: dict[str, Any] = {
        "counts": context.Array("q", 3),
        "first_at": context.Value("d", 0.0),
        "ready": context.Array("b", processes, lock=False),
        "go": context.Value("b", 0, lock=False),
        "results": context.Queue(),
    }
    purchases = len(messages)
    workers = [
        context.Process(
            target=work,
            args=(
                servers,
                known,
                scratch / f"process-{n}",
                n,
                shared,
                (purchases, first_seen_customers),
            ),
        )
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        _wait_ready(shared["ready"], workers)
        shared["go"].value = 1
        broker_before = broker_cpu()
        asyncio.run(publish(servers, messages))
        counts, times = shared["counts"], dict[str, float]()
        deadline = time.monotonic() + RUN_TIMEOUT
        while len(times) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Quix Streams folded {counts[PURCHASES]} of {purchases} purchases and "
                    f"{counts[REGISTERED]} of {first_seen_customers} customers in "
                    f"{RUN_TIMEOUT:.0f} s"
                )
            for name, index, expect in (
                ("purchases", PURCHASES, purchases),
                ("registered", REGISTERED, first_seen_customers),
            ):
                if counts[index] >= expect:
                    times.setdefault(name, time.monotonic())
            _check_alive(workers)
            time.sleep(0.002)
        cpu = sum(shared["results"].get(timeout=60) for _ in workers)
        done = time.monotonic()
        broker = broker_cpu() - broker_before
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
    first = shared["first_at"].value
    return {
        "purchases_per_second": purchases / (times["purchases"] - first),
        "purchases_seconds": times["purchases"] - first,
        "registered_seconds": times["registered"] - first,
        "seconds": done - first,
        "cpu": cpu,
        "broker_cpu": broker,
        "profiles": counts[PROFILES],
        "processes": processes,
    }


def _wait_ready(ready: Any, workers: list[Any]) -> None:
    """Until every process has held its partitions for `SETTLE` seconds."""
    deadline = time.monotonic() + START_TIMEOUT
    steady_since: float | None = None
    while time.monotonic() < deadline:
        _check_alive(workers)
        if all(ready):
            steady_since = steady_since or time.monotonic()
            if time.monotonic() - steady_since >= SETTLE:
                return
        else:
            steady_since = None
        time.sleep(0.05)
    raise RuntimeError(f"Quix Streams processes not all given partitions: {list(ready)}")


def _check_alive(workers: list[Any]) -> None:
    for worker in workers:
        if worker.exitcode not in (None, 0):
            raise RuntimeError(f"a Quix Streams process ended with {worker.exitcode}")
