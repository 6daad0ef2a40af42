"""A soak from start to table: `soak()` runs the load and the planned faults on a cluster,
waits for the CRM to settle, makes the comparisons of `checks` and returns a
`SoakResult`, whose `table()` is what `crm soak` prints and whose `problems()` is what
the fault-injection tests assert is empty."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.soak import checks, faults
from bench.soak.cluster import Cluster, EmbeddedCluster
from bench.soak.load import Load, Rates
from local.embedded.broker import EmbeddedBroker
from local.embedded.postgres import EmbeddedPostgres
from local.independent_analytics import RULE
from services.runtime.storage.database import ensure_database

log = logging.getLogger(__name__)

SETTLE_TIMEOUT = 300.0
"""How long the CRM may take, once the load ended, to show what it acknowledged."""
ANALYTICS_TIMEOUT = 120.0
"""How long the profiles may take to equal the independent computation (re-scoring)."""


@dataclass
class SoakResult:
    cluster: str
    plan: faults.Plan
    seed: int
    load: Load
    faults: list[faults.Fault]
    load_started: float
    load_ended: float
    settled_seconds: float | None = None
    """From the end of the load until every acknowledged fact was in the views."""
    accounting: checks.Accounting = field(default_factory=checks.Accounting)
    rebuilds: dict[str, list[str]] = field(default_factory=dict)
    analytics: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Everything that must not happen, one line each (at most 20 per kind)."""
        found: list[str] = []
        a = self.accounting
        for name, items in (
            ("lost", a.lost),
            ("doubled", a.doubled),
            ("unexplained", a.unexplained),
            ("server error", self.load.server_errors),
            ("client failure", self.load.failures),
            ("analytics differs from the independent computation", self.analytics),
            *((f"{s} differs from its rebuild", d) for s, d in self.rebuilds.items()),
        ):
            found += [f"{name}: {item}" for item in items[:20]]
            if len(items) > 20:
                found.append(f"{name}: ... {len(items) - 20} more")
        found += [
            f"{f.kind} {f.target}: not recovered within {faults.RECOVERY_TIMEOUT:g} s"
            for f in self.faults
            if f.recovered is None
        ]
        if self.settled_seconds is None:
            found.append(f"not settled within {SETTLE_TIMEOUT:g} s of the end of the load")
        return found

    def table(self) -> str:
        from bench.soak.report import table

        return table(self)


async def _define_segment(cluster: Cluster) -> None:
    """The segment the independent computation knows (`RULE`), unless defined already."""
    headers = {"Authorization": f"Bearer {cluster.token()}"}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        for _ in range(60):
            url = cluster.urls("analytics")[0]
            try:
                if (await client.get(f"{url}/segments/big_happy")).status_code == 200:
                    return
                answer = await client.post(
                    f"{url}/segments",
                    json={"segment": "big_happy", "name": "大客户且满意", "rule": RULE},
                )
                if answer.status_code == 201:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(1.0)
    raise RuntimeError("the analytics service did not take the segment big_happy")


async def soak(
    cluster: Cluster,
    plan: faults.Plan,
    *,
    rates: Rates | None = None,
    seed: int = 1,
    say: Callable[[str], None] = lambda line: print(line, flush=True),
) -> SoakResult:
    """Run the load for `plan.seconds` with `plan`'s faults on `cluster`, then compare."""
    fault_rng, load_rng = random.Random(seed), random.Random(seed + 1)
    schedule = plan.schedule(fault_rng, cluster)
    await _define_segment(cluster)
    load = Load(cluster, load_rng, rates or Rates())
    readiness = faults.Readiness(cluster)
    stop_load, stop_polling = asyncio.Event(), asyncio.Event()
    poller = asyncio.create_task(readiness.poll(stop_polling))
    started = time.monotonic()
    running_load = asyncio.create_task(load.run(stop_load))
    injected: list[faults.Fault] = []
    watchers: list[asyncio.Task[None]] = []

    async def carry_out(planned: faults.Planned) -> None:
        await asyncio.sleep(max(0.0, started + planned.at - time.monotonic()))
        fault = await faults.inject(cluster, planned, fault_rng)
        injected.append(fault)
        say(f"{fault.started - started:6.1f} s  {fault.kind}: {fault.target}")
        watchers.append(asyncio.create_task(watch(fault)))

    async def watch(fault: faults.Fault) -> None:
        await readiness.watch_recovery(fault)
        took = fault.recovery_seconds
        say(
            f"{fault.started - started:6.1f} s  {fault.kind}: {fault.target}: "
            + (f"recovered in {took:.1f} s" if took is not None else "NOT RECOVERED")
        )

    say(f"load for {plan.seconds:g} s; {len(schedule)} faults planned on {cluster.description}")
    carrying_out = [asyncio.create_task(carry_out(p)) for p in schedule]
    await asyncio.sleep(plan.seconds)
    stop_load.set()
    await asyncio.gather(*carrying_out)
    await running_load
    ended = time.monotonic()
    say(f"load ended after {ended - started:.0f} s; waiting for the CRM to settle")
    await asyncio.gather(*watchers)
    result = SoakResult(
        cluster.description, plan, seed, load, injected, load_started=started, load_ended=ended
    )
    broker_kills = [f.started for f in injected if f.kind == faults.BROKER]
    deadline = ended + SETTLE_TIMEOUT
    while True:
        result.accounting = await checks.account(cluster.database_url, load, broker_kills)
        if not result.accounting.lost:
            result.settled_seconds = time.monotonic() - ended
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(2.0)
    stop_polling.set()
    await poller
    say("comparing the analytic profiles with an independent computation")
    deadline = time.monotonic() + ANALYTICS_TIMEOUT
    while True:
        result.analytics = await checks.analytics_differences(cluster)
        if not result.analytics or time.monotonic() > deadline:
            break
        await asyncio.sleep(2.0)
    say("comparing every projection with a rebuild (crm rebuild)")
    result.rebuilds = await checks.rebuild_differences(cluster)
    return result


@contextlib.asynccontextmanager
async def embedded_cluster(work_dir: Path) -> AsyncIterator[EmbeddedCluster]:
    """An `EmbeddedCluster` of its own PostgreSQL (data in `work_dir`) and broker, every
    service started and ready; everything stopped afterwards."""
    logs = work_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(work_dir / "postgres")
    await asyncio.to_thread(postgres.start)
    broker = EmbeddedBroker(log_path=logs / "broker.log")
    try:
        await asyncio.to_thread(broker.start)
        database_url = postgres.dsn("crm")
        await ensure_database(database_url)
        cluster = EmbeddedCluster(postgres, broker, database_url, logs)
        try:
            await cluster.start()
            yield cluster
        finally:
            await cluster.close()
    finally:
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(postgres.stop)
