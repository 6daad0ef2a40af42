"""Outbox relay: publishes an application's notification log to its Kafka topic.

The event store is the outbox. The relay reads stored events in notification order,
converts each to its public contract, publishes it keyed by customer id, and records its
position only after the broker acknowledged the whole batch. Delivery is at-least-once:
after a failure the batch is sent again, and consumers recognise the repeats by event id.

At rest a relay waits for a PostgreSQL notification from whoever writes to its source,
with a slow poll as a fallback (`wakeup.py`), rather than polling.

With several replicas of a service, the one holding a PostgreSQL advisory lock relays;
the others wait on standby and take over when its connection goes away. While the
broker is down, commands keep succeeding (they only write to the event store) and the
backlog is published once it returns.

What the relay reads is an `OutboxSource`: an application's notification log (the event
store as the outbox, what customer, sales and interaction use) or an outbox table that a
projection fills in the same transaction as its own changes (`TableSource`, what
analytics uses for the conclusions its fold draws). Each source keeps its own position
in `outbox_position` and its own leadership lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from contracts.envelope import EventEnvelope
from contracts.registry import parse_event, serialize_event
from contracts.signing import HEADER as SIGNATURE_HEADER
from contracts.signing import Signer
from services.runtime.messaging.positions import position_header
from services.runtime.messaging.wakeup import Wakeup, channel_of
from services.runtime.metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    PUBLISH_FAILURES,
    RELAY_LEADER,
    UNPUBLISHABLE,
)
from services.runtime.privacy.sealing import Translator
from services.runtime.storage.eventstore import EventSourcedApplication
from services.runtime.transient import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

PROGRESS_BACKLOG = 10_000
"""A backlog at least this long is reported in the log as it is published."""
PROGRESS_SECONDS = 5.0

SIGNED_BATCH = 128
"""Messages under one signature: a consumer checks seven hashes per message and one
Ed25519 signature per 128 messages."""


@dataclass(frozen=True)
class Pending:
    """One stored item not yet published: its position in the source, its contract
    envelope (None for items kept private) and when it was recorded."""

    position: int
    envelope: EventEnvelope[Any] | None
    recorded_at: datetime | None


class OutboxSource(Protocol):
    """Where a relay reads what to publish, in order of strictly increasing position."""

    name: str
    """Names the source's row in `outbox_position` and its leadership lock."""

    async def read(self, connection: asyncpg.Connection, after: int, limit: int) -> list[Pending]:
        """Up to `limit` items with positions above `after`, in order."""
        ...

    async def newest(self, connection: asyncpg.Connection) -> int:
        """The highest position stored (0 when empty)."""
        ...

    def channel(self, schema: str) -> str | None:
        """The notification channel its writers notify (`wakeup.py`), in `schema`; None
        when they notify none (its relay then polls)."""
        ...


class NotificationLogSource:
    """An eventsourcing application's notification log, converted by `translate`."""

    def __init__(self, application: EventSourcedApplication, translate: Translator, name: str):
        self._application = application
        self._translate = translate
        self.name = name

    async def read(self, connection: asyncpg.Connection, after: int, limit: int) -> list[Pending]:
        notifications = await asyncio.to_thread(
            self._application.recorder.select_notifications, after + 1, limit
        )
        pending = []
        for notification in notifications:
            domain_event = self._application.mapper.to_domain_event(notification)
            pending.append(
                Pending(
                    notification.id,
                    self._translated(notification.id, domain_event),
                    getattr(domain_event, "timestamp", None),
                )
            )
        return pending

    def _translated(self, position: int, domain_event: Any) -> EventEnvelope[Any] | None:
        """The event's contract envelope; None, counted and logged, for a stored event no
        contract reads, so that one such event does not stop the relay for every later
        one (it stays in the event store, where the log line points)."""
        try:
            return self._translate(domain_event)
        except (ValidationError, ValueError) as exc:
            UNPUBLISHABLE.labels(topic=self.name).inc()
            log.error(
                "stored event %s (notification %s) does not translate to its contract and "
                "is not published: %s",
                type(domain_event).__qualname__,
                position,
                exc,
            )
            return None

    async def newest(self, connection: asyncpg.Connection) -> int:
        newest = await asyncio.to_thread(self._application.recorder.max_notification_id)
        return int(newest or 0)

    def channel(self, schema: str) -> str | None:
        """The channel the event store's recorder notifies on each insert (PostgreSQL's
        recorders, `storage/idempotent_commits.py`)."""
        channel = getattr(self._application.recorder, "channel_name", None)
        return channel if isinstance(channel, str) else None


class TableSource:
    """An outbox table in the service's schema: `position`, serialized `envelope`,
    `recorded_at` (a durable table: the service's migrations create it).

    Writers insert envelopes in the same transaction as the state they derive from.
    Positions must become visible in order: writers of the table serialise their
    transactions (the analytics fold holds one advisory lock per transaction), so a
    smaller position never commits after a larger one was read.
    """

    def __init__(self, table: str, name: str) -> None:
        self.table = table
        self.name = name

    async def read(self, connection: asyncpg.Connection, after: int, limit: int) -> list[Pending]:
        rows = await connection.fetch(
            f"SELECT position, envelope, recorded_at FROM {self.table} "
            "WHERE position > $1 ORDER BY position LIMIT $2",
            after,
            limit,
        )
        return [Pending(r["position"], parse_event(r["envelope"]), r["recorded_at"]) for r in rows]

    async def newest(self, connection: asyncpg.Connection) -> int:
        return int(await connection.fetchval(f"SELECT max(position) FROM {self.table}") or 0)

    def channel(self, schema: str) -> str:
        """The channel of the table's `notify_relay` trigger (the service's migrations)."""
        return channel_of(schema, self.table)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message as a relay publishes it."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def outgoing(
    topic: str,
    source: str,
    public: Sequence[tuple[int, EventEnvelope[Any]]],
    signer: Signer | None,
) -> list[Outgoing]:
    """The messages of `public` (each with its position in `source`) for `topic`: keyed by
    customer, with the event's type, schema version and position, and signed by `signer`
    (one signed tree per `SIGNED_BATCH` messages)."""
    values = [serialize_event(envelope) for _, envelope in public]
    signatures: list[list[tuple[str, bytes]]] = [[] for _ in values]
    if signer is not None:
        signatures = []
        for start in range(0, len(values), SIGNED_BATCH):
            chunk = values[start : start + SIGNED_BATCH]
            signatures += [[(SIGNATURE_HEADER, h)] for h in signer.sign(topic, chunk)]
    return [
        Outgoing(
            key=str(envelope.customer_id).encode(),
            value=value,
            headers=[
                ("event_type", envelope.event_type.encode()),
                ("schema_version", str(envelope.schema_version).encode()),
                position_header(source, position),
                *signature,
            ],
        )
        for (position, envelope), value, signature in zip(public, values, signatures, strict=True)
    ]


class OutboxRelay:
    def __init__(
        self,
        *,
        database_dsn: str,
        schema: str,
        topic: str,
        producer_factory: Callable[[], AIOKafkaProducer],
        application: EventSourcedApplication | None = None,
        translate: Translator | None = None,
        source: OutboxSource | None = None,
        batch_size: int = 1000,
        poll_interval: float = 2.0,
        listen: bool = True,
        signer: Signer | None = None,
    ) -> None:
        """Relays `source`, or else the notification log of `application` via `translate`;
        every message signed by `signer` (`contracts.signing`). With nothing to relay it
        waits for a notification from the source's writers (unless `listen` is False),
        and reads again after `poll_interval` seconds at the latest."""
        if source is None:
            assert application is not None and translate is not None
            source = NotificationLogSource(application, translate, name=topic)
        self._source = source
        self._dsn = database_dsn
        self._schema = schema
        self._topic = topic
        self._producer_factory = producer_factory
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._listen = listen
        self._producer: AIOKafkaProducer | None = None
        self._signer = signer
        self.broker_reachable = False
        self.is_leader = False
        self._lock_key = f"crm-outbox:{schema}:{source.name}"
        self._progress_logged_at = 0.0

    @property
    def name(self) -> str:
        """What it relays (the source's name)."""
        return self._source.name

    async def run(self) -> None:
        """Relay until cancelled, surviving database and broker outages (and waiting out
        a query error, such as a table a migration has not created yet)."""
        RELAY_LEADER.labels(topic=self._source.name).set(0)
        try:
            while True:
                try:
                    await self._lead_or_wait()
                except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
                    log.warning("outbox relay lost its database connection: %r", exc)
                    self.is_leader = False
                    RELAY_LEADER.labels(topic=self._source.name).set(0)
                    await asyncio.sleep(1.0)
        finally:
            await self._stop_producer()

    async def _lead_or_wait(self) -> None:
        connection = await asyncpg.connect(
            self._dsn, server_settings={"search_path": f'"{self._schema}"'}
        )
        try:
            while not await connection.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", self._lock_key
            ):
                await asyncio.sleep(1.0)
            self.is_leader = True
            RELAY_LEADER.labels(topic=self._source.name).set(1)
            log.info("outbox relay for %s is leading", self._source.name)
            await self._relay(connection)
        finally:
            self.is_leader = False
            RELAY_LEADER.labels(topic=self._source.name).set(0)
            await connection.close()

    async def _relay(self, connection: asyncpg.Connection) -> None:
        key = self._source.name
        position = await connection.fetchval(
            "SELECT position FROM outbox_position WHERE topic = $1", key
        )
        position = int(position or 0)
        wakeup = Wakeup(self._poll_interval)
        channel = self._source.channel(self._schema) if self._listen else None
        if channel is not None:
            # before the first read: whatever commits after it notifies this connection
            await wakeup.listen(connection, channel)
        while True:
            wakeup.clear()
            pending = await self._source.read(connection, position, self._batch_size)
            await self._record_backlog(connection, position, pending)
            if not pending:
                await wakeup.wait()
                if connection.is_closed():  # and with it, the lock and the listening
                    raise asyncpg.ConnectionDoesNotExistError("the relay's connection ended")
                continue
            await self._publish(pending)
            position = pending[-1].position
            await connection.execute(
                """INSERT INTO outbox_position (topic, position) VALUES ($1, $2)
                   ON CONFLICT (topic) DO UPDATE
                   SET position = excluded.position, updated_at = now()""",
                key,
                position,
            )

    async def _publish(self, items: Sequence[Pending]) -> None:
        """Send every item kept public and wait for all acknowledgements; retry until they
        arrive. Each carries its position (`positions.py`)."""
        public = [(item.position, item.envelope) for item in items if item.envelope is not None]
        messages = outgoing(self._topic, self._source.name, public, self._signer)
        delay = 0.2
        while True:
            try:
                producer = await self._started_producer()
                pending = [
                    await producer.send(self._topic, value=m.value, key=m.key, headers=m.headers)
                    for m in messages
                ]
                await asyncio.gather(*pending)
            except (KafkaError, OSError) as exc:
                self.broker_reachable = False
                PUBLISH_FAILURES.labels(topic=self._topic).inc()
                log.warning("publishing to %s failed, retrying: %r", self._topic, exc)
                await self._stop_producer()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.broker_reachable = True
            for _, envelope in public:
                EVENTS_PUBLISHED.labels(topic=self._topic, event_type=envelope.event_type).inc()
            return

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._producer_factory()
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _stop_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await producer.stop()
            except (KafkaError, OSError):
                log.debug("producer stop failed", exc_info=True)

    def _report_progress(self, position: int, newest: int) -> None:
        """A log line every `PROGRESS_SECONDS` while a long backlog is published (such as
        a whole history, into a broker that lost its topics)."""
        backlog = newest - position
        now = time.monotonic()
        if backlog < PROGRESS_BACKLOG or now - self._progress_logged_at < PROGRESS_SECONDS:
            return
        self._progress_logged_at = now
        log.info(
            "relay for %s: %d of %d events published, %d to go",
            self._source.name,
            position,
            newest,
            backlog,
        )

    async def _record_backlog(
        self, connection: asyncpg.Connection, position: int, pending: Sequence[Pending]
    ) -> None:
        if not pending:
            OUTBOX_BACKLOG.labels(topic=self._source.name).set(0)
            OUTBOX_OLDEST_AGE.labels(topic=self._source.name).set(0)
            return
        newest = await self._source.newest(connection)
        OUTBOX_BACKLOG.labels(topic=self._source.name).set((newest or position) - position)
        self._report_progress(position, newest)
        recorded = pending[0].recorded_at
        if recorded is not None:
            OUTBOX_OLDEST_AGE.labels(topic=self._source.name).set(
                max(0.0, time.time() - recorded.timestamp())
            )


async def republish_from_the_start(connection: asyncpg.Connection) -> list[str]:
    """Make every service's relay publish its whole event store again when it next starts.

    For a broker that lost its topics (the in-memory broker of a local run): the topics
    then hold the whole history again, in order, and consumers skip what they handled
    without reading it (by the position each message carries, `positions.py`). Returns
    the schemas whose position was reset.
    """
    schemas = [
        row["table_schema"]
        for row in await connection.fetch(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'outbox_position'"
        )
    ]
    for schema in schemas:
        await connection.execute(f'DELETE FROM "{schema}".outbox_position')
    return schemas
