"""The faults a soak injects, when, and how long the CRM took to recover from each.

A `Plan` says what happens when (seconds after the load started); `inject` carries out
one `Planned` fault on a `Cluster` and returns its `Fault` record; `watch_recovery`
notes when every replica of the services the fault hit (the one killed; all of them
for the database and the broker) has answered `/health/ready` 200 again after the fault
ended (each at least once: readiness may come and go under load). Faults overlap (they
come at random moments): a recovery includes whatever else happened meanwhile.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import random
import signal
import time
from dataclasses import dataclass, field

import asyncpg
import httpx
import psutil

from bench.soak.cluster import Cluster
from services import SERVICE_NAMES

BROKER_SECONDS = 60.0
"""How long after the broker is killed the services may take to be back: no kill then."""
RECOVERY_TIMEOUT = 300.0
"""A fault not recovered from within this time counts as never recovered from."""

KILL = "service killed (SIGKILL)"
PAUSE = "PostgreSQL paused (SIGSTOP)"
TERMINATE = "database connections terminated"
REPLICA_ADDED = "second replica added"
REPLICA_REMOVED = "second replica removed"
BROKER = "broker killed and restarted"
KINDS = (KILL, PAUSE, TERMINATE, REPLICA_ADDED, REPLICA_REMOVED, BROKER)


@dataclass(frozen=True)
class Planned:
    at: float
    kind: str
    target: str = ""


@dataclass
class Fault:
    kind: str
    target: str
    started: float
    """When it began (monotonic seconds)."""
    ended: float
    """When the fault itself was over: at once for a kill, the broker's death and a new
    replica (their restart and start are the recovery); at the resume of a pause."""
    affected: tuple[str, ...] = SERVICE_NAMES
    """The services it hit: the one killed or given a replica, else all."""
    recovered: float | None = None
    """When every replica of the affected services had been ready again since `ended`;
    None if not within `RECOVERY_TIMEOUT`."""

    @property
    def recovery_seconds(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.ended


@dataclass(frozen=True)
class Plan:
    """What to inject during a load of `seconds`: every service killed `kills` times at
    random moments, PostgreSQL paused for `pause_seconds` and its connections terminated
    `terminations` times, a second replica of one service added and removed, and the
    broker killed once when `broker` (and the cluster allows it). Faults start after
    `quiet` seconds and end `quiet` seconds before the load does."""

    seconds: float
    kills: int
    pause_seconds: float
    terminations: int = 1
    broker: bool = True
    quiet: float = 20.0
    replica_seconds: float = 60.0

    def schedule(self, rng: random.Random, cluster: Cluster) -> list[Planned]:
        first, last = self.quiet, self.seconds - self.quiet
        if last - first < 30:
            raise ValueError(f"{self.seconds:g} s of load leaves no time for faults")

        def moment() -> float:
            return rng.uniform(first, last)

        planned: list[Planned] = []
        kill_moment = moment
        if self.broker and cluster.can_kill_broker:
            at = rng.uniform(first, max(first, last - BROKER_SECONDS))
            planned.append(Planned(at, BROKER))
            # kills keep out of the broker's restart, when the services are down anyway
            before, after = max(0.0, at - 5 - first), max(0.0, last - at - BROKER_SECONDS)
            if before + after >= 10:

                def kill_moment() -> float:
                    draw = rng.uniform(0, before + after)
                    return first + draw if draw < before else last - (draw - before)

        for service in SERVICE_NAMES:
            planned += [Planned(kill_moment(), KILL, service) for _ in range(self.kills)]
        if self.pause_seconds > 0:
            planned.append(Planned(moment(), PAUSE, f"{self.pause_seconds:g} s"))
        planned += [Planned(moment(), TERMINATE) for _ in range(self.terminations)]
        replica = rng.choice(SERVICE_NAMES)
        added = rng.uniform(first, max(first, last - self.replica_seconds))
        planned += [
            Planned(added, REPLICA_ADDED, replica),
            Planned(min(added + self.replica_seconds, last), REPLICA_REMOVED, replica),
        ]
        return sorted(planned, key=lambda p: p.at)


async def inject(cluster: Cluster, planned: Planned, rng: random.Random) -> Fault:
    started = time.monotonic()
    target = planned.target
    if planned.kind == KILL:
        target = await cluster.kill(planned.target, rng)
    elif planned.kind == PAUSE:
        await pause_postgres(cluster, float(planned.target.split()[0]))
    elif planned.kind == TERMINATE:
        target = f"{await terminate_connections(cluster.database_url)} sessions"
    elif planned.kind == REPLICA_ADDED:
        replica = await cluster.add_replica(planned.target)
        target = f"{planned.target} on port {replica.process.port}"
    elif planned.kind == REPLICA_REMOVED:
        removed = await cluster.remove_replica(planned.target)
        target = f"{planned.target} on port {removed.process.port}" if removed else "none"
    elif planned.kind == BROKER:
        await cluster.kill_broker()
        target = cluster.bootstrap_servers
    else:
        raise ValueError(f"unknown fault {planned.kind!r}")
    # a kill is over at once; the broker's restart and a new replica's start are part
    # of the recovery; a pause, the terminations and a removal end when they are done
    over = time.monotonic() if planned.kind in (PAUSE, TERMINATE, REPLICA_REMOVED) else started
    fault = Fault(planned.kind, target, started, over)
    if planned.kind in (KILL, REPLICA_ADDED, REPLICA_REMOVED):
        fault.affected = (planned.target,)
    return fault


async def pause_postgres(cluster: Cluster, seconds: float) -> None:
    """SIGSTOP the postmaster and every process it started (nothing is answered, no
    connection is accepted, but none is lost), then SIGCONT them after `seconds`."""
    stopped: list[psutil.Process] = []
    try:
        for process in cluster.postgres_processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGSTOP)
                stopped.append(process)
        await asyncio.sleep(seconds)
    finally:
        for process in reversed(stopped):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGCONT)


async def terminate_connections(database_url: str) -> int:
    """Terminate every other session on the CRM's database, as a failover or a restart of
    the database would; how many there were."""
    connection = await asyncpg.connect(database_url)
    try:
        return int(
            await connection.fetchval(
                """SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
                   FROM pg_stat_activity
                   WHERE datname = current_database() AND pid <> pg_backend_pid()"""
            )
        )
    finally:
        await connection.close()


@dataclass
class Readiness:
    """When each replica (by URL) answered `/health/ready` 200 (the moment the question
    was asked), polled in the background for as long as the soak runs."""

    cluster: Cluster
    ready_at: dict[str, list[float]] = field(default_factory=dict)

    async def poll(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            while not stop.is_set():
                urls = [url for service in SERVICE_NAMES for url in self.cluster.urls(service)]
                asked = time.monotonic()
                answers = await asyncio.gather(*(self._ready(client, url) for url in urls))
                for url, ready in zip(urls, answers, strict=True):
                    if ready:
                        self.ready_at.setdefault(url, []).append(asked)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.25)

    @staticmethod
    async def _ready(client: httpx.AsyncClient, url: str) -> bool:
        try:
            return (await client.get(f"{url}/health/ready")).status_code == 200
        except httpx.HTTPError:
            return False

    def first_ready(self, url: str, since: float) -> float | None:
        moments = self.ready_at.get(url, [])
        index = bisect.bisect_right(moments, since)
        return moments[index] if index < len(moments) else None

    async def watch_recovery(self, fault: Fault) -> None:
        """Set `fault.recovered` once every replica of the services it hit has been ready
        since it ended."""
        deadline = fault.ended + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:
            urls = [url for service in fault.affected for url in self.cluster.urls(service)]
            times = [self.first_ready(url, fault.ended) for url in urls]
            if urls and None not in times:
                fault.recovered = max(t for t in times if t is not None)
                return
            await asyncio.sleep(0.25)
