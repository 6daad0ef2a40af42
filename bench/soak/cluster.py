"""The CRM a soak runs against, and the handles its fault injectors pull.

- `EmbeddedCluster`: an embedded PostgreSQL and broker and every service on free ports,
  each service kept running as `crm up` keeps it (a process that dies is started again
  after a second); the broker can be killed and the stack started again around it, as
  `crm up` is after its broker died.
- `UpCluster`: the services of a running `crm up` (its settings in `DIR/crm.env`, its
  secret and keys in `DIR`); `crm up` itself restarts what is killed. Its broker is not
  killed: `crm up` stops everything when its broker dies.

Both answer the replicas' URLs (a soak's clients spread their requests over them, as a
load balancer would), kill a replica, add and remove a second one, and name the
PostgreSQL processes to pause.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil

from contracts.topics import Topic
from local.embedded.broker import EmbeddedBroker
from local.embedded.postgres import EmbeddedPostgres
from local.embedded.processes import port_is_free
from local.launcher import ServiceProcess, command_environment
from services import SERVICE_NAMES
from services.runtime.http.authentication import mint_token, new_secret
from services.runtime.messaging.kafka import ensure_topics, wait_for_broker
from services.runtime.messaging.outbox import republish_from_the_start

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0
"""Pause before a dead service is started again: `crm up`'s first one."""
TOPIC_PARTITIONS = 3
"""As `crm up` creates the topics."""
SERVICE_ENV = {
    "analytics": {
        "CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS": "1",
        "CRM_ANALYTICS_HISTORY_QUIET_SECONDS": "5",
    }
}
"""Settings of the services an embedded cluster starts, beyond the defaults: analytics
moves its RFM boundaries every second, and takes the wall clock as its event time again
five seconds after the load's facts of the past stop (its sweep then brings everyone to
now), so that the profiles are compared soon after the load ends."""


@dataclass
class Replica:
    """One process of a service."""

    service: str
    process: ServiceProcess
    extra: bool = False
    """Added beside the first replica, to be removed again."""
    removed: bool = False
    restarts: int = 0


class Cluster(abc.ABC):
    """What a soak needs of the CRM under test."""

    database_url: str
    bootstrap_servers: str
    secret: str
    description: str
    can_kill_broker: bool = False

    def __init__(self) -> None:
        self.replicas: dict[str, list[Replica]] = {name: [] for name in SERVICE_NAMES}
        self.changing = asyncio.Lock()
        """Held while replicas come or go and while the broker is restarted: one at a
        time (a replica started while the stack restarts around a new broker would keep
        relaying from where it was)."""

    def token(self, role: str = "administrator", subject: str = "soak") -> str:
        return mint_token(self.secret, subject, [role])

    def urls(self, service: str) -> list[str]:
        """Where the service's replicas answer (removed ones left out)."""
        return [r.process.url for r in self.replicas[service] if not r.removed]

    def crm_environment(self) -> dict[str, str]:
        """The environment of a `crm` command on this CRM."""
        return command_environment(self.database_url, self.bootstrap_servers)

    @abc.abstractmethod
    async def kill(self, service: str, rng: random.Random) -> str:
        """SIGKILL one replica of `service`, chosen at random; names it."""

    async def add_replica(self, service: str) -> Replica:
        """Start one more replica of `service` (not waiting for it to be ready)."""
        async with self.changing:
            process = self._new_process(service)
            await asyncio.to_thread(process.start, wait_ready=False)
            replica = Replica(service, process, extra=True)
            self.replicas[service].append(replica)
            return replica

    async def remove_replica(self, service: str) -> Replica | None:
        """Stop (SIGTERM) the replica `add_replica` added last, if any."""
        async with self.changing:
            extra = [r for r in self.replicas[service] if r.extra and not r.removed]
            if not extra:
                return None
            replica = extra[-1]
            replica.removed = True
            await asyncio.to_thread(replica.process.stop)
            return replica

    @abc.abstractmethod
    def _new_process(self, service: str) -> ServiceProcess: ...

    @abc.abstractmethod
    def postgres_pid(self) -> int:
        """The PostgreSQL server process (the postmaster)."""

    def postgres_processes(self) -> list[psutil.Process]:
        """The postmaster and every process it started (backends and helpers)."""
        root = psutil.Process(self.postgres_pid())
        return [root, *root.children(recursive=True)]

    async def kill_broker(self) -> None:
        raise NotImplementedError(f"{self.description}: the broker is not killed here")

    async def close(self) -> None:
        """Stop the replicas this soak started."""
        await asyncio.gather(
            *(
                asyncio.to_thread(r.process.stop)
                for replicas in self.replicas.values()
                for r in replicas
                if r.extra and not r.removed
            )
        )


def _kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# Embedded -----------------------------------------------------------------------------


@dataclass
class EmbeddedCluster(Cluster):
    """Every service on `postgres` and `broker`, kept running by `supervise()`."""

    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    database_url: str
    log_dir: Path
    secret: str = field(default_factory=new_secret)
    description: str = "embedded PostgreSQL, broker and services"
    can_kill_broker: bool = True

    def __post_init__(self) -> None:
        Cluster.__init__(self)
        self.bootstrap_servers = self.broker.bootstrap_servers
        self._held = False
        self._supervisor: asyncio.Task[None] | None = None
        self._restarting: dict[int, asyncio.Task[None]] = {}

    def _new_process(self, service: str) -> ServiceProcess:
        return ServiceProcess(
            service,
            database_url=self.database_url,
            bootstrap_servers=self.bootstrap_servers,
            log_dir=self.log_dir,
            extra_env=SERVICE_ENV.get(service, {}),
            auth_secret=self.secret,
        )

    async def start(self) -> None:
        """Create the topics, start one replica of every service and wait until all are
        ready, then keep them running."""
        await ensure_topics(self.bootstrap_servers, list(Topic), partitions=TOPIC_PARTITIONS)
        for service in SERVICE_NAMES:
            self.replicas[service].append(Replica(service, self._new_process(service)))
        await self._start_all(wait_ready=True)
        self._supervisor = asyncio.create_task(self._supervise())

    async def _start_all(self, *, wait_ready: bool) -> None:
        await asyncio.gather(
            *(
                asyncio.to_thread(r.process.start, wait_ready=wait_ready, timeout=180)
                for replicas in self.replicas.values()
                for r in replicas
                if not r.removed
            )
        )

    async def _supervise(self) -> None:
        """Start again, after `RESTART_DELAY`, every replica that died (as `crm up` does)."""
        while True:
            await asyncio.sleep(0.1)
            if self._held:
                continue
            for replicas in self.replicas.values():
                for replica in replicas:
                    process = replica.process.process
                    dead = process is not None and process.poll() is not None
                    if dead and not replica.removed and id(replica) not in self._restarting:
                        self._restarting[id(replica)] = asyncio.create_task(self._restart(replica))

    async def _restart(self, replica: Replica) -> None:
        try:
            await asyncio.sleep(RESTART_DELAY)
            if not self._held and not replica.removed:
                replica.restarts += 1
                await asyncio.to_thread(replica.process.start, wait_ready=False)
                if replica.removed:  # removed while it was being started
                    await asyncio.to_thread(replica.process.stop)
        finally:
            self._restarting.pop(id(replica), None)

    async def kill(self, service: str, rng: random.Random) -> str:
        """A running replica (waiting for one to have been started again if none runs)."""
        deadline = time.monotonic() + 120
        while True:
            running = [
                r
                for r in self.replicas[service]
                if not r.removed
                and r.process.process is not None
                and r.process.process.poll() is None
            ]
            if running or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        if not running:
            return f"{service} (no replica running)"
        replica = rng.choice(running)
        await asyncio.to_thread(replica.process.kill)
        return f"{service} on port {replica.process.port}"

    def postgres_pid(self) -> int:
        pid = self.postgres.pid
        assert pid is not None, "PostgreSQL is not running"
        return pid

    async def kill_broker(self) -> None:
        """SIGKILL the broker, then what `crm up` goes through when its broker died and it
        is started again: the services stop, the broker starts empty, the topics are
        created, every relay is set to publish its event store again from the start and
        the services start."""
        async with self.changing:
            await self._restart_around_a_new_broker()

    async def _restart_around_a_new_broker(self) -> None:
        self._held = True
        try:
            pid = self.broker.pid
            assert pid is not None, "the broker is not running"
            await asyncio.to_thread(_kill_pid, pid)
            await asyncio.gather(
                *(
                    asyncio.to_thread(r.process.stop)
                    for replicas in self.replicas.values()
                    for r in replicas
                    if not r.removed
                )
            )
            await asyncio.to_thread(self._start_broker_again)
            await wait_for_broker(self.bootstrap_servers)
            await ensure_topics(self.bootstrap_servers, list(Topic), partitions=TOPIC_PARTITIONS)
            connection = await asyncpg.connect(self.database_url)
            try:
                await republish_from_the_start(connection)
            finally:
                await connection.close()
            await self._start_all(wait_ready=False)
        finally:
            self._held = False

    def _start_broker_again(self) -> None:
        deadline = time.monotonic() + 30
        while not port_is_free(self.broker.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.broker.start()

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self._held = True
        await asyncio.gather(
            *(
                asyncio.to_thread(r.process.stop)
                for replicas in self.replicas.values()
                for r in replicas
            )
        )


# crm up -------------------------------------------------------------------------------


class UpCluster(Cluster):
    """The services of the `crm up` whose data directory is `data_dir`."""

    def __init__(self, data_dir: Path, log_dir: Path) -> None:
        from local.tokens import SECRET_FILE, local_secret, local_signing_keys
        from local.up.layout import SERVICES

        super().__init__()
        settings_file = data_dir / "crm.env"
        if not settings_file.is_file() or not (data_dir / SECRET_FILE).is_file():
            raise SystemExit(f"no running `crm up` in {data_dir}: start one first (make up)")
        self.settings = dict(
            line.split("=", 1)
            for line in settings_file.read_text().splitlines()
            if "=" in line and not line.lstrip().startswith("#")
        )
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.database_url = self.settings["CRM_DATABASE_URL"]
        self.bootstrap_servers = self.settings["CRM_KAFKA_BOOTSTRAP_SERVERS"]
        secret = local_secret(data_dir, create=False)
        assert secret is not None
        self.secret = secret
        self.description = f"the services of `crm up` ({data_dir})"
        self._signing = local_signing_keys(data_dir, [s.name for s in SERVICES])
        self.ports = {spec.name: spec.port for spec in SERVICES}
        for spec in SERVICES:
            process = ServiceProcess(
                spec.name,
                database_url=self.database_url,
                bootstrap_servers=self.bootstrap_servers,
                log_dir=log_dir,
                auth_secret=self.secret,
                keys={},
            )
            process.port, process.url = spec.port, spec.url  # crm up's own, not ours
            self.replicas[spec.name].append(Replica(spec.name, process))

    def crm_environment(self) -> dict[str, str]:
        return {**os.environ, **self.settings}

    def _new_process(self, service: str) -> ServiceProcess:
        from local.demo.sales import DEMO_TEAMS

        extra = {"CRM_SALES_TEAMS": json.dumps(DEMO_TEAMS)} if service == "sales" else {}
        return ServiceProcess(
            service,
            database_url=self.database_url,
            bootstrap_servers=self.bootstrap_servers,
            log_dir=self.log_dir,
            extra_env=extra,
            auth_secret=self.secret,
            keys={
                "CRM_KEYRING_MASTER_KEY_FILE": self.settings["CRM_KEYRING_MASTER_KEY_FILE"],
                "CRM_SIGNING_KEY_FILE": str(self._signing[service]),
                "CRM_SIGNING_TRUSTED_KEYS_FILE": str(self._signing["trusted"]),
            },
        )

    async def kill(self, service: str, rng: random.Random) -> str:
        """`crm up`'s process of `service` (which `crm up` starts again; a replica the soak
        added is not, so it is left alone)."""
        pid = _listening_pid(self.ports[service])
        if pid is None:
            return f"{service} of crm up (not running)"
        await asyncio.to_thread(_kill_pid, pid)
        return f"{service} of crm up"

    def postgres_pid(self) -> int:
        return int((self.data_dir / "postgres" / "postmaster.pid").read_text().split("\n")[0])


def _listening_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1:`port`."""
    for connection in psutil.net_connections(kind="tcp"):
        address = connection.laddr
        if connection.status == psutil.CONN_LISTEN and address and address.port == port:
            return connection.pid
    return None
