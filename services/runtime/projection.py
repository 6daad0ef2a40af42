"""Projection consumer: folds Kafka topics into PostgreSQL read models, exactly once.

For each batch read from the broker:
1. every message is parsed against the contracts; what does not fit goes to the
   dead-letter topic with its original bytes and the reason;
2. in one PostgreSQL transaction, the event ids are recorded in `consumed_events`
   (those already there are duplicates, whatever offset they arrived at) and only the new
   events are applied to the projection;
3. after that transaction commits, the batch's offsets are committed to the broker.

A crash between 2 and 3 re-delivers the batch, and step 2 recognises every event in it.
An event the projection cannot apply is isolated (each event of the batch is then
applied in its own transaction) and dead-lettered with the error. Database outages are
waited out, never skipped: the consumer retries the same batch until it commits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord

from contracts.envelope import EventEnvelope
from contracts.registry import ContractViolation, parse_event
from services.runtime.deadletter import DeadLetterPublisher, Rejection
from services.runtime.failpoints import failpoint
from services.runtime.metrics import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    PROJECTION_LAG,
)

log = logging.getLogger(__name__)

CONSUMED_EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS consumed_events (
    projection text NOT NULL,
    event_id uuid NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    consumed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, event_id)
)
"""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
)


class Projection(Protocol):
    """A read model fed by events. `apply` runs inside the consumer's transaction."""

    name: str
    topics: Sequence[str]

    async def create_tables(self, connection: asyncpg.Connection) -> None: ...

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None: ...


@dataclass(frozen=True)
class Delivered:
    record: ConsumerRecord
    event: EventEnvelope[Any]


class ProjectionConsumer:
    def __init__(
        self,
        *,
        projection: Projection,
        pool: asyncpg.Pool,
        consumer_factory: Callable[..., AIOKafkaConsumer],
        dead_letters: DeadLetterPublisher,
        max_records: int = 2000,
        batch_timeout_ms: int = 50,
    ) -> None:
        self.projection = projection
        self._pool = pool
        self._consumer_factory = consumer_factory
        self._dead_letters = dead_letters
        self._max_records = max_records
        self._batch_timeout_ms = batch_timeout_ms
        self.caught_up = False
        self.connected = False
        self.last_error: str | None = None

    @property
    def group_id(self) -> str:
        return f"crm.projection.{self.projection.name}"

    async def prepare(self) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(CONSUMED_EVENTS_DDL)
            await self.projection.create_tables(connection)

    async def run(self) -> None:
        """Consume until cancelled, reconnecting after broker outages."""
        await self.prepare()
        while True:
            consumer = self._consumer_factory(
                *self.projection.topics,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self._max_records,
                metadata_max_age_ms=5000,
            )
            try:
                await consumer.start()
                self.connected = True
                await self._consume(consumer)
            except (KafkaError, OSError) as exc:
                self.connected = False
                self.last_error = repr(exc)
                log.warning("projection %s lost the broker: %r", self.projection.name, exc)
                await asyncio.sleep(1.0)
            finally:
                self.connected = False
                try:
                    await consumer.stop()
                except (KafkaError, OSError):
                    log.debug("consumer stop failed", exc_info=True)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            fetched = await consumer.getmany(
                timeout_ms=self._batch_timeout_ms, max_records=self._max_records
            )
            records = [record for batch in fetched.values() for record in batch]
            if records:
                await self.handle_batch(records)
                failpoint("projection_after_apply_before_commit")
                try:
                    await consumer.commit(
                        {tp: batch[-1].offset + 1 for tp, batch in fetched.items() if batch}
                    )
                except CommitFailedError as exc:
                    # A rebalance moved the partitions; the next owner re-reads the batch
                    # and recognises every event in it as already applied.
                    log.info("offset commit skipped after rebalance: %s", exc)
            await self._record_lag(consumer)

    async def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        behind = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            lag = max(0, highwater - await consumer.position(tp))
            behind += lag
            CONSUMER_LAG.labels(
                projection=self.projection.name, topic=tp.topic, partition=str(tp.partition)
            ).set(lag)
        self.caught_up = behind == 0
        if self.caught_up:
            PROJECTION_LAG.labels(projection=self.projection.name).set(0)

    async def handle_batch(self, records: Sequence[ConsumerRecord]) -> None:
        """Parse, dead-letter and apply one batch; return once it is committed."""
        delivered, rejected = self._parse(records)
        await self._dead_letters.publish(rejected)
        started = time.perf_counter()
        delay = 0.2
        while True:
            try:
                failed = await self._apply(delivered)
                break
            except TRANSIENT_ERRORS as exc:
                self.last_error = repr(exc)
                log.warning("projection %s waits for the database: %r", self.projection.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        await self._dead_letters.publish(failed)
        BATCH_SECONDS.labels(projection=self.projection.name).observe(time.perf_counter() - started)
        if delivered:
            newest = max(d.event.recorded_at.timestamp() for d in delivered)
            PROJECTION_LAG.labels(projection=self.projection.name).set(
                max(0.0, time.time() - newest)
            )
        self.last_error = None

    def _parse(
        self,
        records: Sequence[ConsumerRecord],
    ) -> tuple[list[Delivered], list[Rejection]]:
        delivered: list[Delivered] = []
        rejected: list[Rejection] = []
        for record in records:
            try:
                delivered.append(Delivered(record, parse_event(record.value)))
            except ContractViolation as exc:
                rejected.append(Rejection(record, exc.reason, exc.detail))
                self._count(record.topic, "unknown", "dead_lettered")
        return delivered, rejected

    async def _apply(self, delivered: list[Delivered]) -> list[Rejection]:
        """Apply the batch in one transaction; on an event-level error, isolate it."""
        if not delivered:
            return []
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                await self._apply_in_transaction(connection, delivered)
            return []
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            if len(delivered) == 1:
                return [self._unappliable(delivered[0], exc)]
            log.info("batch of %d failed (%r); applying one by one", len(delivered), exc)
        failed: list[Rejection] = []
        for item in delivered:
            try:
                async with self._pool.acquire() as connection, connection.transaction():
                    await self._apply_in_transaction(connection, [item])
            except TRANSIENT_ERRORS:
                raise
            except Exception as exc:
                failed.append(self._unappliable(item, exc))
        return failed

    def _unappliable(self, item: Delivered, exc: Exception) -> Rejection:
        self._count(item.record.topic, item.event.event_type, "dead_lettered")
        return Rejection(item.record, "could not apply", f"{type(exc).__name__}: {exc}")

    async def _apply_in_transaction(
        self, connection: asyncpg.Connection, delivered: list[Delivered]
    ) -> None:
        unique: dict[UUID, Delivered] = {}
        for item in delivered:
            unique.setdefault(item.event.event_id, item)
        items = list(unique.values())
        new_ids = {
            row["event_id"]
            for row in await connection.fetch(
                """INSERT INTO consumed_events (projection, event_id, topic, partition, "offset")
                   SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::int[], $5::bigint[])
                   ON CONFLICT DO NOTHING
                   RETURNING event_id""",
                self.projection.name,
                [i.event.event_id for i in items],
                [i.record.topic for i in items],
                [i.record.partition for i in items],
                [i.record.offset for i in items],
            )
        }
        fresh = [i.event for i in items if i.event.event_id in new_ids]
        if fresh:
            await self.projection.apply(connection, fresh)
        for item in delivered:
            outcome = "applied" if item.event.event_id in new_ids else "duplicate"
            if outcome == "applied":
                new_ids.discard(item.event.event_id)
            self._count(item.record.topic, item.event.event_type, outcome)

    def _count(self, topic: str, event_type: str, outcome: str) -> None:
        EVENTS_CONSUMED.labels(
            projection=self.projection.name, topic=topic, event_type=event_type, outcome=outcome
        ).inc()
