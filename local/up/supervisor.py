"""The supervisor of `crm up`: starts PostgreSQL, the broker and the services in order,
restarts a service that dies, and stops everything in order on a signal (see `local.up`)."""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from local.up.demo import load_demo_data
from local.up.layout import (
    DATABASE,
    HOST,
    KAFKA_PORT,
    POSTGRES_PORT,
    SERVICES,
    ServiceSpec,
    UpError,
    available_services,
    env_port,
)
from local.up.output import RunningService, output_prefix, say
from local.up.summary import summary

if TYPE_CHECKING:
    import httpx

    from local.embedded.broker import EmbeddedBroker
    from local.embedded.postgres import EmbeddedPostgres

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
RESTART_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Pauses before restarting a service that died, one more step per quick failure."""
STEADY_SECONDS = 60.0
"""A service that ran this long before dying is restarted after the first pause again."""
TOPIC_PARTITIONS = 3


class _Interrupted(Exception):
    """A stop signal arrived while starting."""


class Supervisor:
    def __init__(self, data_dir: Path, *, fresh: bool, demo: bool) -> None:
        self.data_dir = data_dir
        self.fresh = fresh
        self.demo = demo
        self.logs_dir = data_dir / "logs"
        self.postgres: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.services: list[RunningService] = []
        self.stopping = asyncio.Event()
        self.started_at = time.monotonic()
        self.secret = ""
        self.tokens: dict[str, str] = {}

    # entry point

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        for sig in handled:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            return await self._start_and_supervise()
        except _Interrupted:
            return 0
        except UpError as error:
            say(f"crm up: error: {error}", error=True)
            return 1
        finally:
            await self._shutdown()
            for sig in handled:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            say(f"\n{sig.name} received: shutting down (again to force)")
            self.stopping.set()
            return
        say(f"\n{sig.name} received again: killing the services")
        for service in self.services:
            if service.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    service.process.kill()

    async def _unless_stopped(self, awaitable: Any) -> Any:
        """Await `awaitable`, abandoning it if a stop signal arrives first."""
        if self.stopping.is_set():
            raise _Interrupted
        work = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            raise _Interrupted
        return work.result()

    def _check_stop(self) -> None:
        if self.stopping.is_set():
            raise _Interrupted

    # start-up

    async def _start_and_supervise(self) -> int:
        from local.embedded.broker import EmbeddedBroker
        from local.embedded.postgres import EmbeddedPostgres
        from local.embedded.processes import EmbeddedError

        postgres_port = env_port(*POSTGRES_PORT)
        kafka_port = env_port(*KAFKA_PORT)
        services = available_services()
        self._check_ports(postgres_port, kafka_port, services)
        pg_dir = self.data_dir / "postgres"
        self._check_not_in_use(pg_dir)
        if self.fresh:
            say(f"--fresh: removing {pg_dir} and {self.logs_dir}")
            shutil.rmtree(pg_dir, ignore_errors=True)
            shutil.rmtree(self.logs_dir, ignore_errors=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_tokens()

        first_run = not (pg_dir / "PG_VERSION").exists()
        say(
            f"Starting PostgreSQL on {HOST}:{postgres_port} "
            f"({'creating a new cluster in' if first_run else 'data in'} {pg_dir})"
        )
        self.postgres = EmbeddedPostgres(pg_dir, port=postgres_port)
        try:
            self.postgres.start()
        except EmbeddedError as error:
            raise UpError(str(error)) from None
        self._check_stop()

        say(f"Starting the Kafka broker (Tansu, in memory) on {HOST}:{kafka_port}")
        self.broker = EmbeddedBroker(port=kafka_port, log_path=self.logs_dir / "kafka.log")
        try:
            self.broker.start()
        except EmbeddedError as error:
            raise UpError(str(error)) from None
        self._check_stop()

        await self._unless_stopped(self._prepare_storage())
        for spec in services:
            await self._start_service(spec)
        await self._unless_stopped(self._wait_until_ready())
        if self.demo and any(s.spec.name == "customer" for s in self.services):
            await self._unless_stopped(
                load_demo_data(self.services, self.secret, self.broker.bootstrap_servers)
            )
        say(
            summary(
                services,
                elapsed=time.monotonic() - self.started_at,
                postgres=self.postgres,
                broker=self.broker,
                data_dir=self.data_dir,
                logs_dir=self.logs_dir,
                tokens=self.tokens,
            )
        )
        return await self._supervise()

    def _prepare_tokens(self) -> None:
        from local.tokens import local_secret, role_tokens, write_tokens_file

        secret = local_secret(self.data_dir, create=True)
        assert secret is not None
        self.secret = secret
        self.tokens = role_tokens(secret)
        write_tokens_file(self.data_dir, self.tokens)

    def _check_ports(self, postgres: int, kafka: int, services: list[ServiceSpec]) -> None:
        from local.embedded.processes import port_is_free

        wanted = [
            (postgres, POSTGRES_PORT[0], "PostgreSQL"),
            (kafka, KAFKA_PORT[0], "the Kafka broker"),
            *((spec.port, spec.port_variable, f"the {spec.name} service") for spec in services),
        ]
        seen: dict[int, str] = {}
        for port, variable, _what in wanted:
            if port in seen:
                raise UpError(f"{variable} and {seen[port]} are both set to port {port}")
            seen[port] = variable
        for port, variable, what in wanted:
            if not port_is_free(port):
                raise UpError(
                    f"port {port} for {what} is already in use on {HOST}; "
                    f"stop whatever listens there or set {variable} to a free port, "
                    f"e.g. {variable}={port + 10000 if port < 55535 else port - 10000} crm up"
                )

    def _check_not_in_use(self, pg_dir: Path) -> None:
        pid_file = pg_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return  # left over from a crash: PostgreSQL recovers
        except PermissionError:
            pass
        raise UpError(
            f"{pg_dir} is in use by a running PostgreSQL (pid {pid}), probably another "
            f"`crm up`; stop it first or use another --data-dir"
        )

    async def _prepare_storage(self) -> None:
        import asyncpg

        from contracts.topics import Topic
        from services.runtime.messaging.kafka import ensure_topics, wait_for_broker
        from services.runtime.messaging.outbox import republish_from_the_start
        from services.runtime.storage.database import ensure_database

        assert self.postgres is not None and self.broker is not None
        await ensure_database(self.postgres.dsn(DATABASE))
        connection = await asyncpg.connect(self.postgres.dsn(DATABASE))
        try:
            kept = await republish_from_the_start(connection)
        finally:
            await connection.close()
        if kept:
            say(
                "The broker starts empty: the services publish their kept events again "
                "(consumers skip those they applied)"
            )
        await wait_for_broker(self.broker.bootstrap_servers)
        await ensure_topics(self.broker.bootstrap_servers, list(Topic), partitions=TOPIC_PARTITIONS)
        say(f"Database {DATABASE!r} and {len(Topic)} topics are ready")
        self._write_command_settings()

    def _write_command_settings(self) -> None:
        """What the `crm` commands need to work on this CRM (`crm rebuild`, `crm
        dead-letters`, `crm backup`...), in `DIR/crm.env`, which they read when run here."""
        from local.tokens import local_master_key, local_signing_keys, write_settings_file

        assert self.postgres is not None and self.broker is not None
        signing = local_signing_keys(self.data_dir, [s.name for s in SERVICES])
        write_settings_file(
            self.data_dir,
            {
                "CRM_DATABASE_URL": self.postgres.dsn(DATABASE),
                "CRM_KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
                "CRM_KEYRING_MASTER_KEY_FILE": str(local_master_key(self.data_dir).resolve()),
                "CRM_SIGNING_TRUSTED_KEYS_FILE": str(signing["trusted"].resolve()),
            },
        )

    async def _start_service(self, spec: ServiceSpec, *, register: bool = True) -> RunningService:
        from local.embedded.processes import child_process_options
        from local.launcher import service_command, service_environment
        from local.tokens import SECRET_FILE, local_master_key, local_signing_keys

        assert self.postgres is not None and self.broker is not None
        self._check_stop()
        signing = local_signing_keys(self.data_dir, [s.name for s in SERVICES])
        env = service_environment(
            spec.name,
            port=spec.port,
            database_url=self.postgres.dsn(DATABASE),
            bootstrap_servers=self.broker.bootstrap_servers,
            keys={
                "CRM_AUTH_SECRET_FILE": str(self.data_dir / SECRET_FILE),
                "CRM_KEYRING_MASTER_KEY_FILE": str(local_master_key(self.data_dir)),
                "CRM_SIGNING_KEY_FILE": str(signing[spec.name]),
                "CRM_SIGNING_TRUSTED_KEYS_FILE": str(signing["trusted"]),
            },
        )
        # for people reading the terminal; JSON in production
        env.setdefault("CRM_LOG_FORMAT", "text")
        if spec.name == "sales":
            from local.demo.sales import DEMO_TEAMS

            env.setdefault("CRM_SALES_TEAMS", json.dumps(DEMO_TEAMS, ensure_ascii=False))
        if spec.name == "analytics":
            # the demo's deals closed after the fit are settled in the ledger within seconds
            env.setdefault("CRM_ANALYTICS_LEDGER_INTERVAL_SECONDS", "5")
        say(f"Starting the {spec.name} service on {spec.url}")
        process = await asyncio.create_subprocess_exec(
            *service_command(spec.name),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            limit=1 << 20,
            **child_process_options(),
        )
        service = RunningService(spec, process, self._open_log(spec.name), output_prefix(spec))
        service.pump = asyncio.create_task(service.copy_output())
        if register:
            self.services.append(service)
        return service

    def _open_log(self, name: str) -> IO[bytes]:
        return open(self.logs_dir / f"{name}.log", "ab")  # closed in _stop_service

    async def _wait_until_ready(self) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=2.0) as client:
            await asyncio.gather(*(self._wait_ready(s, client) for s in self.services))

    async def _wait_ready(self, service: RunningService, client: "httpx.AsyncClient") -> None:
        import httpx

        url = f"{service.spec.url}/health/ready"
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer yet"
        while True:
            if service.process.returncode is not None:
                await self._drain(service)
                raise UpError(
                    f"the {service.spec.name} service exited with code "
                    f"{service.process.returncode} while starting; its last output:\n"
                    f"{service.last_output()}"
                )
            try:
                response = await client.get(url)
                if response.status_code == 200:
                    say(f"The {service.spec.name} service is ready")
                    return
                last = f"HTTP {response.status_code} {response.text[:300]}"
            except httpx.TransportError as error:
                last = repr(error)
            if time.monotonic() > deadline:
                raise UpError(
                    f"the {service.spec.name} service was not ready within "
                    f"{READY_TIMEOUT:.0f}s ({url}: {last}); its last output:\n"
                    f"{service.last_output()}"
                )
            await asyncio.sleep(0.25)

    # running

    async def _supervise(self) -> int:
        """Restart what dies until a stop signal; stop everything if the infrastructure
        dies."""
        stop = asyncio.create_task(self.stopping.wait())
        infra = asyncio.create_task(self._watch_infrastructure())
        while True:
            waits = {asyncio.create_task(s.process.wait()): s for s in self.services}
            done, _ = await asyncio.wait({*waits, stop, infra}, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                if task not in done:
                    task.cancel()
            if stop in done:
                infra.cancel()
                return 0
            if infra in done:
                stop.cancel()
                raise UpError(infra.result())
            for died in [s for task, s in waits.items() if task in done]:
                await self._restart(died)

    async def _restart(self, service: RunningService) -> None:
        """Start `service` again after its pause, in its place among the services."""
        await self._drain(service)
        service.log_file.close()
        ran = time.monotonic() - service.started_at
        failures = 0 if ran >= STEADY_SECONDS else service.quick_failures + 1
        delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS)) - 1] if failures else 1.0
        say(
            f"The {service.spec.name} service exited with code {service.process.returncode} "
            f"after {ran:.0f}s; restarting it in {delay:.0f}s. Its last output:\n"
            f"{service.last_output()}",
            error=True,
        )
        await self._unless_stopped(asyncio.sleep(delay))
        if self.stopping.is_set():
            return
        replacement = await self._start_service(service.spec, register=False)
        replacement.quick_failures = failures
        self.services[self.services.index(service)] = replacement

    async def _watch_infrastructure(self) -> str:
        assert self.postgres is not None and self.broker is not None
        while True:
            await asyncio.sleep(1.0)
            if not self.postgres.running:
                return f"PostgreSQL exited unexpectedly; see {self.postgres.log_path}"
            if not self.broker.running:
                return f"the Kafka broker exited unexpectedly; see {self.broker.log_path}"

    # shutdown

    async def _shutdown(self) -> None:
        if self.services:
            say("Stopping services: " + ", ".join(s.spec.name for s in self.services))
            await asyncio.gather(*(self._stop_service(s) for s in self.services))
        if self.broker is not None:
            say("Stopping the Kafka broker")
            self.broker.stop()
        if self.postgres is not None:
            say("Stopping PostgreSQL")
            self.postgres.stop()
        if self.services or self.broker is not None or self.postgres is not None:
            say("Everything is stopped.")

    async def _stop_service(self, service: RunningService) -> None:
        process = service.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                say(
                    f"The {service.spec.name} service ignored SIGTERM for "
                    f"{STOP_TIMEOUT:.0f}s: killing it"
                )
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await self._drain(service)
        service.log_file.close()

    @staticmethod
    async def _drain(service: RunningService) -> None:
        """Let the output copier reach the end of the pipe (bounded: a grandchild may hold it)."""
        if service.pump is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(service.pump), 5.0)
        except TimeoutError:
            service.pump.cancel()
