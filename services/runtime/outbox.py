"""Outbox relay: publishes an application's notification log to its Kafka topic.

The event store is the outbox. The relay reads stored events in notification order,
converts each to its public contract, publishes it keyed by customer id, and records its
position only after the broker acknowledged the whole batch. Delivery is at-least-once:
after a failure the batch is sent again, and consumers recognise the repeats by event id.

With several replicas of a service, the one holding a PostgreSQL advisory lock relays;
the others wait on standby and take over when its connection goes away. While the
broker is down, commands keep succeeding (they only write to the event store) and the
backlog is published once it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts.envelope import EventEnvelope
from contracts.registry import serialize_event
from services.runtime.eventstore import EventSourcedApplication
from services.runtime.metrics import (
    EVENTS_PUBLISHED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    PUBLISH_FAILURES,
    RELAY_LEADER,
)

log = logging.getLogger(__name__)

Translator = Callable[[Any], EventEnvelope[Any] | None]
"""Converts a domain event to its public contract; None for events kept private."""

POSITION_DDL = """
CREATE TABLE IF NOT EXISTS outbox_position (
    topic text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


class OutboxRelay:
    def __init__(
        self,
        *,
        application: EventSourcedApplication,
        database_dsn: str,
        schema: str,
        topic: str,
        translate: Translator,
        producer_factory: Callable[[], AIOKafkaProducer],
        batch_size: int = 1000,
        poll_interval: float = 0.02,
    ) -> None:
        self._application = application
        self._dsn = database_dsn
        self._schema = schema
        self._topic = topic
        self._translate = translate
        self._producer_factory = producer_factory
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._producer: AIOKafkaProducer | None = None
        self.broker_reachable = False
        self.is_leader = False
        self._lock_key = f"crm-outbox:{schema}:{topic}"

    async def run(self) -> None:
        """Relay until cancelled, surviving database and broker outages."""
        RELAY_LEADER.labels(topic=self._topic).set(0)
        try:
            while True:
                try:
                    await self._lead_or_wait()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("outbox relay lost its database connection: %s", exc)
                    self.is_leader = False
                    RELAY_LEADER.labels(topic=self._topic).set(0)
                    await asyncio.sleep(1.0)
        finally:
            await self._stop_producer()

    async def _lead_or_wait(self) -> None:
        connection = await asyncpg.connect(
            self._dsn, server_settings={"search_path": f'"{self._schema}"'}
        )
        try:
            await connection.execute(POSITION_DDL)
            while not await connection.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", self._lock_key
            ):
                await asyncio.sleep(1.0)
            self.is_leader = True
            RELAY_LEADER.labels(topic=self._topic).set(1)
            log.info("outbox relay for %s is leading", self._topic)
            await self._relay(connection)
        finally:
            self.is_leader = False
            RELAY_LEADER.labels(topic=self._topic).set(0)
            await connection.close()

    async def _relay(self, connection: asyncpg.Connection) -> None:
        position = await connection.fetchval(
            "SELECT position FROM outbox_position WHERE topic = $1", self._topic
        )
        position = int(position or 0)
        while True:
            notifications = await asyncio.to_thread(
                self._application.recorder.select_notifications,
                position + 1,
                self._batch_size,
            )
            await self._record_backlog(position, notifications)
            if not notifications:
                await asyncio.sleep(self._poll_interval)
                continue
            envelopes = [
                envelope
                for envelope in map(self._to_contract, notifications)
                if envelope is not None
            ]
            await self._publish(envelopes)
            position = notifications[-1].id
            await connection.execute(
                """INSERT INTO outbox_position (topic, position) VALUES ($1, $2)
                   ON CONFLICT (topic) DO UPDATE
                   SET position = excluded.position, updated_at = now()""",
                self._topic,
                position,
            )

    def _to_contract(self, notification: Any) -> EventEnvelope[Any] | None:
        domain_event = self._application.mapper.to_domain_event(notification)
        return self._translate(domain_event)

    async def _publish(self, envelopes: Sequence[EventEnvelope[Any]]) -> None:
        """Send every envelope and wait for all acknowledgements; retry until they arrive."""
        delay = 0.2
        while True:
            try:
                producer = await self._started_producer()
                pending = [
                    await producer.send(
                        self._topic,
                        value=serialize_event(envelope),
                        key=str(envelope.customer_id).encode(),
                        headers=[
                            ("event_type", envelope.event_type.encode()),
                            ("schema_version", str(envelope.schema_version).encode()),
                        ],
                    )
                    for envelope in envelopes
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
            for envelope in envelopes:
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

    async def _record_backlog(self, position: int, notifications: Sequence[Any]) -> None:
        if not notifications:
            OUTBOX_BACKLOG.labels(topic=self._topic).set(0)
            OUTBOX_OLDEST_AGE.labels(topic=self._topic).set(0)
            return
        newest = await asyncio.to_thread(self._application.recorder.max_notification_id)
        OUTBOX_BACKLOG.labels(topic=self._topic).set((newest or position) - position)
        oldest = self._application.mapper.to_domain_event(notifications[0])
        recorded = getattr(oldest, "timestamp", None)
        if recorded is not None:
            OUTBOX_OLDEST_AGE.labels(topic=self._topic).set(
                max(0.0, time.time() - recorded.timestamp())
            )


async def republish_from_the_start(connection: asyncpg.Connection) -> list[str]:
    """Make every service's relay publish its whole event store again when it next starts.

    For a broker that lost its topics (the in-memory broker of a local run): the topics
    then hold the whole history again, and consumers skip the events they had applied,
    since they recognise them by event id. Returns the schemas whose position was reset.
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
