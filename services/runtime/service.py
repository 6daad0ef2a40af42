"""Runs one service: its event store, outbox relay, projection consumers and HTTP API.

A service module describes itself with a `ServiceDefinition`; `run_service` wires the
pieces from settings and serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

import asyncpg
import uvicorn
from aiokafka import AIOKafkaConsumer
from fastapi import APIRouter, Depends, FastAPI, Request
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from services.runtime.customer_aliases import MergedAway, follow_merges, merged_away_answer
from services.runtime.http import audit
from services.runtime.http.app import Readiness, create_app
from services.runtime.http.authentication import SecurityConfigError, TokenVerifier
from services.runtime.http.authorization import document_permissions
from services.runtime.http.idempotency import forget_old
from services.runtime.http.inbound import document_inbound, inbound_router
from services.runtime.http.rate_limit import RateLimiter
from services.runtime.http.server import server_options
from services.runtime.http.streams import StreamSlots
from services.runtime.logs import configure_logging
from services.runtime.messaging.consumer import BatchConsumer
from services.runtime.messaging.deadletter import DeadLetterPublisher, DeadLetterStore
from services.runtime.messaging.kafka import connection_options, reliable_producer
from services.runtime.messaging.outbox import OutboxRelay, OutboxSource
from services.runtime.messaging.positions import ConsumerPositions
from services.runtime.messaging.projection import Projection, ProjectionHandler
from services.runtime.messaging.readiness import ConsumerPosition, LagBound, LagGate
from services.runtime.messaging.signatures import SigningConfigError, signer_from, verifier_from
from services.runtime.messaging.subscribers import (
    InboundBroker,
    SubscribedConsumer,
    Subscription,
    declare,
    declare_publishers,
    service_broker,
)
from services.runtime.periodic import every
from services.runtime.privacy import erasure
from services.runtime.privacy.compaction import compact_erasures
from services.runtime.privacy.keyring import Keyring, KeyringConfigError
from services.runtime.privacy.sealing import PersonalData, Translator
from services.runtime.settings import ServiceSettings
from services.runtime.storage.database import (
    create_pool,
    database_generation,
    ensure_database,
    record_pool_use,
)
from services.runtime.storage.eventstore import (
    EventSourcedApplication,
    libpq_tls_environment,
    open_event_store,
)
from services.runtime.storage.migrator import DURABLE, KEYRING, MigrationSet, migrate_all
from services.runtime.supervision import EXIT_STATUS, Supervisor, stop_this_process

log = logging.getLogger(__name__)

BackgroundTask = Callable[[], Coroutine[Any, Any, None]]

GaugeRefresh = Callable[[asyncpg.Pool], Awaitable[None]]
"""Sets gauges from what a query on the read models answers."""


@dataclass(frozen=True, kw_only=True)
class ServiceDefinition:
    name: str
    title: str
    description: str
    topic: str
    application_class: type[EventSourcedApplication]
    translate: Translator
    projections: Callable[[], Sequence[Projection]]
    routers: Sequence[APIRouter] = field(default_factory=tuple)
    subscriptions: Sequence[Subscription] = ()
    """Consumers beyond the projections (inbound topics, other services' topics): FastStream
    subscribers of the service's broker (`services.runtime.messaging.subscribers`)."""
    gauges: Sequence[GaugeRefresh] = ()
    """Gauges computed from the read models, refreshed every `gauge_refresh_seconds`."""
    outboxes: Callable[[], Sequence[OutboxSource]] = field(default=lambda: ())
    """Outbox tables relayed to `topic` besides the event store (e.g. a fold's conclusions)."""
    background: Callable[[ServiceRuntime], Sequence[BackgroundTask]] = field(
        default=lambda runtime: ()
    )
    """Long-running tasks started with the service (e.g. periodic sweeps)."""
    migrations: Sequence[MigrationSet] = ()
    """The service's own durable tables, besides those every service has."""
    inbound: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    """Inbound topics the service records (topic → message contract): each also gets a
    route taking the same messages over HTTP (`http/inbound.py`)."""
    also_compacts: Sequence[str] = ()
    """Schemas besides its own whose old row versions hold what an erasure removes (the
    customer service: the keyring, whose destroyed keys must leave the disk too)."""


class ServiceRuntime:
    """The running parts of a service; reachable from routes as `request.app.state.runtime`."""

    def __init__(
        self,
        definition: ServiceDefinition,
        settings: ServiceSettings,
        *,
        exit_on_failure: bool = False,
    ) -> None:
        """`exit_on_failure`: a background task that ends stops the process (in a service
        process; an app built inside another process only reports it)."""
        self.definition = definition
        self.settings = settings
        self.schema = definition.name
        self.application: EventSourcedApplication | None = None
        self.keyring = Keyring.from_settings(settings)
        self.signer = signer_from(settings)
        self.verifier = verifier_from(settings)
        self.personal = PersonalData(self.keyring, definition.translate)
        self.pool: asyncpg.Pool | None = None
        self.relay: OutboxRelay | None = None
        self.extra_relays: list[OutboxRelay] = []
        self.consumers: list[BatchConsumer[Any]] = []
        self.broker: KafkaBroker | None = None
        """FastStream's broker of the service's subscribers (`declared_broker`)."""
        self.supervisor = Supervisor(on_failure=stop_this_process if exit_on_failure else None)
        self._dead_letters: DeadLetterPublisher | None = None
        self.audit = audit.AuditLog(definition.name)
        self.lag_gate = LagGate(
            LagBound(settings.readiness_max_lag_events, settings.readiness_max_stall_seconds)
        )

    async def start(self) -> None:
        settings = self.settings
        await ensure_database(settings.database_dsn)
        await migrate_all(
            settings.database_dsn, self.schema, (DURABLE, KEYRING, *self.definition.migrations)
        )
        self.pool = await create_pool(settings.database_dsn, self.schema)
        await self.audit.start(self.pool)
        os.environ.update(libpq_tls_environment(settings.database_dsn))
        await asyncio.to_thread(self.keyring.open)
        self.application = await open_event_store(
            self.definition.application_class, settings.database_dsn, self.schema
        )
        self.application.contract_of = self.definition.translate
        self.application.protect_personal_data(self.personal)
        self.relay = OutboxRelay(
            application=self.application,
            database_dsn=settings.database_dsn,
            schema=self.schema,
            topic=self.definition.topic,
            translate=self.personal.sealing_translator(),
            producer_factory=lambda: reliable_producer(settings, f"{self.schema}-relay"),
            batch_size=settings.relay_batch_size,
            poll_interval=settings.relay_poll_interval_seconds,
            listen=settings.relay_listen,
            signer=self.signer,
        )
        self.extra_relays = [
            OutboxRelay(
                source=source,
                database_dsn=settings.database_dsn,
                schema=self.schema,
                topic=self.definition.topic,
                producer_factory=lambda: reliable_producer(settings, f"{self.schema}-relay"),
                batch_size=settings.relay_batch_size,
                poll_interval=settings.relay_poll_interval_seconds,
                listen=settings.relay_listen,
                signer=self.signer,
            )
            for source in self.definition.outboxes()
        ]
        self.dead_letter_store = DeadLetterStore(self.pool)
        self._dead_letters = DeadLetterPublisher(
            lambda: reliable_producer(settings, f"{self.schema}-dead-letters"),
            self.schema,
            max_message_bytes=settings.kafka_max_message_bytes,
            store=self.dead_letter_store,
        )
        kafka_options = connection_options(settings)
        generation = await database_generation(self.pool)
        common: dict[str, Any] = {
            "dead_letters": self._dead_letters,
            "max_records": settings.consumer_max_records,
            "batch_timeout_ms": settings.consumer_batch_timeout_ms,
            "fetch_max_wait_ms": settings.consumer_fetch_max_wait_ms,
            "idle_wait_ms": settings.consumer_idle_wait_ms,
            "group_suffix": f".{generation[:8]}",
            "opener": self.personal.open_records,
            "verifier": self.verifier,
        }
        projections: list[BatchConsumer[Any]] = [
            BatchConsumer(
                handler=handler,
                consumer_factory=lambda *topics, **kw: AIOKafkaConsumer(
                    *topics, **kafka_options, **kw
                ),
                positions=ConsumerPositions(self.pool, handler.name),
                **{**common, "max_records": handler.max_records or settings.consumer_max_records},
            )
            for handler in (
                ProjectionHandler(projection, self.pool)
                for projection in self.definition.projections()
            )
        ]
        subscribed = [self._subscribe(s, common) for s in self.definition.subscriptions]
        self.consumers = [*projections, *subscribed]
        self.broker = declared_broker(
            self.definition,
            settings,
            consumers={c.name: c for c in subscribed},
            group_suffix=common["group_suffix"],
        )
        for consumer in self.consumers:
            # tables exist before the first query; a projection that needs a rebuild
            # waits in its consumer, and readiness says why
            await consumer.prepare()
        start = self.supervisor.start
        start(f"{self.schema}-relay", self.relay.run())
        for consumer in self.consumers:
            start(f"consumer-{consumer.name}", consumer.run())
        if subscribed:
            start(f"{self.schema}-subscribers", InboundBroker(self.broker, subscribed).run())
        for relay in self.extra_relays:
            start(f"{self.schema}-relay-{relay.name}", relay.run())
        for task in self.definition.background(self):
            start(getattr(task, "__qualname__", "background"), task())
        start(
            "idempotency-window",
            every(
                600,
                partial(forget_old, self.pool, self.settings.idempotency_window_hours),
                "forgetting idempotency keys past their window",
            ),
        )
        start(
            "erasure-compaction",
            every(
                self.settings.erasure_compaction_interval_seconds,
                partial(
                    compact_erasures,
                    self.pool,
                    self.schema,
                    (self.schema, *self.definition.also_compacts),
                ),
                "rewriting erased customers' old row versions away",
            ),
        )
        start(
            "dead-letter-retention",
            every(
                3600,
                partial(self.dead_letter_store.sweep, self.settings.dead_letter_retention_days),
                "forgetting dead letters past their retention",
            ),
        )
        for refresh in (*self.definition.gauges, self._refresh_stalls):
            start(
                f"gauges-{getattr(refresh, '__qualname__', refresh)}",
                every(
                    self.settings.gauge_refresh_seconds,
                    partial(refresh, self.pool),
                    f"refreshing gauges ({getattr(refresh, '__qualname__', refresh)})",
                ),
            )

    def _subscribe(
        self, subscription: Subscription, common: dict[str, Any]
    ) -> SubscribedConsumer[Any]:
        """The consumer of `subscription`, with its handler."""
        assert self.pool is not None
        handler = subscription.handler(self)
        assert (handler.name, handler.group_id) == (subscription.name, subscription.group_id)
        return SubscribedConsumer(
            subscription=subscription,
            handler=handler,
            positions=ConsumerPositions(self.pool, handler.name),
            **common,
        )

    async def _refresh_stalls(self, _: asyncpg.Pool | None) -> None:
        for consumer in self.consumers:
            consumer.stalled_for()

    def liveness(self) -> list[str]:
        """What makes this process unhealthy: a background task that ended, or a consumer
        behind without progress for longer than `consumer_stall_seconds`."""
        stalled = [
            f"consumer {c.name} is {c.behind} messages behind and has handled nothing for "
            f"{seconds:.0f} s (last error: {c.last_error})"
            for c in self.consumers
            if (seconds := c.stalled_for()) > self.settings.consumer_stall_seconds
        ]
        return [*self.supervisor.failures, *stalled]

    async def stop(self) -> None:
        await self.supervisor.stop()
        if self._dead_letters is not None:
            await self._dead_letters.close()
        await self.audit.stop()
        if self.pool is not None:
            await self.pool.close()
        if self.application is not None:
            self.application.close()
        await asyncio.to_thread(self.keyring.close)

    async def readiness(self) -> Readiness:
        """Ready while every consumer is within the lag bound (`LagGate`); whether all
        are exactly caught up is reported beside it, without deciding."""
        waiting = [c.not_ready for c in self.consumers if c.not_ready is not None]
        lag = self.lag_gate.judge(
            ConsumerPosition(c.name, c.measured, c.behind, c.stalled_for())
            for c in self.consumers
            if c.not_ready is None  # its problem is in `waiting` already
        )
        checks = {
            "database": await self._database_reachable(),
            "broker": await self._broker_reachable(),
            "projections_current": not waiting,
            "projections_within_lag": lag.within,
            "projections_caught_up": all(c.caught_up for c in self.consumers),
            "background_tasks_running": not self.supervisor.failures,
        }
        behind = {c.name: c.behind for c in self.consumers}
        exact = frozenset({"projections_caught_up"})
        return Readiness(checks, [*waiting, *lag.problems], informational=exact, lag=behind)

    async def _database_reachable(self) -> bool:
        if self.pool is None:
            return False
        record_pool_use(self.pool, self.schema)
        try:
            async with asyncio.timeout(2):
                return bool(await self.pool.fetchval("SELECT 1"))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False

    async def _broker_reachable(self) -> bool:
        for server in self.settings.kafka_bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                async with asyncio.timeout(1):
                    _, writer = await asyncio.open_connection(host, int(port))
                writer.close()
                await writer.wait_closed()
                return True
            except (OSError, TimeoutError):
                continue
        return False


def declared_broker(
    definition: ServiceDefinition,
    settings: ServiceSettings,
    description: str | None = None,
    *,
    consumers: Mapping[str, SubscribedConsumer[Any]] | None = None,
    group_suffix: str = "",
) -> KafkaBroker:
    """The service's FastStream broker: the publishers of what it publishes and a batch
    subscriber per subscription. With `consumers` (the running service's, by name) each
    subscriber hands its batches to its consumer; without, the broker only describes
    the service (`crm.asyncapi` draws the AsyncAPI document from it)."""
    broker = service_broker(definition.name, settings, description=description)
    declare_publishers(broker, definition.topic)
    for subscription in definition.subscriptions:
        consumer = (consumers or {}).get(subscription.name)
        subscriber = declare(
            broker,
            subscription,
            consumer.consume if consumer is not None else _described_only,
            group_suffix=group_suffix,
            max_records=settings.consumer_max_records,
            batch_timeout_ms=settings.consumer_batch_timeout_ms,
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        )
        if consumer is not None:
            consumer.subscriber = subscriber
    return broker


async def _described_only(message: Any) -> None:
    raise AssertionError("a broker declared to be described does not run")


def current_runtime(request: Request) -> ServiceRuntime:
    """FastAPI dependency: the running service's parts."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def current_pool(runtime: Annotated[ServiceRuntime, Depends(current_runtime)]) -> asyncpg.Pool:
    """FastAPI dependency: the service's database pool, for queries on its read models."""
    assert runtime.pool is not None, "the pool opens before the service answers"
    return runtime.pool


DatabasePool = Annotated[asyncpg.Pool, Depends(current_pool)]
"""A route parameter carrying the service's database pool."""


def build_app(
    definition: ServiceDefinition, settings: ServiceSettings, *, exit_on_failure: bool = False
) -> FastAPI:
    """The service's HTTP app; raises `SecurityConfigError` when no token key is set,
    `KeyringConfigError` when no usable master key is, and `SigningConfigError` when the
    signing keys are missing."""
    runtime = ServiceRuntime(definition, settings, exit_on_failure=exit_on_failure)
    verifier = TokenVerifier.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = create_app(
        service=definition.name,
        title=definition.title,
        description=definition.description,
        readiness=runtime.readiness,
        liveness=runtime.liveness,
        lifespan=lifespan,
        verifier=verifier,
        limiter=RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        anonymous_limiter=RateLimiter(
            settings.rate_limit_anonymous_per_minute,
            max(1, settings.rate_limit_anonymous_per_minute // 4),
        ),
        max_body=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
        audit=runtime.audit,
        pool=lambda: runtime.pool,
        idempotency_takeover_seconds=settings.idempotency_takeover_seconds,
    )
    app.state.streams = StreamSlots(settings.stream_limit_per_subject, settings.stream_limit_total)
    app.state.runtime = runtime
    for router in definition.routers:
        app.include_router(router, dependencies=[Depends(follow_merges)])
    app.add_exception_handler(MergedAway, merged_away_answer)
    if definition.inbound:
        app.include_router(inbound_router(definition.inbound))
        document_inbound(app, definition.inbound)
    app.include_router(audit.router)
    app.include_router(erasure.router)
    document_permissions(app)
    return app


def run_service(definition: ServiceDefinition, settings: ServiceSettings, port: int) -> None:
    configure_logging(definition.name, settings.log_level, settings.log_format)
    try:
        app = build_app(definition, settings, exit_on_failure=True)
    except (SecurityConfigError, KeyringConfigError, SigningConfigError) as exc:
        sys.stderr.write(f"invalid configuration: {exc}\n")
        raise SystemExit(2) from None
    config: dict[str, Any] = {
        "host": settings.http_host,
        "port": port,
        "log_level": "warning",
        "log_config": None,
        **server_options(settings),
    }
    uvicorn.run(app, **config)
    failures = app.state.runtime.supervisor.failures
    if failures:
        sys.stderr.write(f"stopped: {failures[0]}\n")
        raise SystemExit(EXIT_STATUS)
