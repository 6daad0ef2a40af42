"""Rebuilding a projection from its topics while the service keeps answering.

The projection is built afresh in a shadow schema, reading its topics from the beginning
(partitions assigned directly, no consumer group). The live tables keep serving queries
and keep being updated by the service. When the shadow has caught up, one transaction:

1. locks the live `consumer_positions` and `consumed_events` tables, which holds back the
   live consumers' commits (each batch's transaction writes one of them first);
2. reads the topics up to their current end into the shadow, so that it contains every
   event any live consumer could have committed;
3. replaces the live tables by the shadow ones, with their record of consumed events, the
   positions they applied (`positions.recognise`) and their shape version (so a
   projection that needed a rebuild resumes), except the tables the projection lists in
   `kept_tables` (an outbox whose rows were published already: the live one stays, so
   nothing is published twice). Before that,
   a projection with a `settle(connection, live_schema)` method brings the shadow to
   where the live state is (in this transaction, the shadow's tables first in the search
   path): the analytics fold moves its RFM boundaries as the live re-scoring did, and
   keeps the live segment history.

Afterwards the live consumers carry on against the new tables; whatever they had fetched
and not yet committed is either already in them (and recognised) or new (and applied).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from contracts.registry import ContractViolation
from contracts.signing import SignatureError, Verifier
from services.runtime.messaging.alignment import EventTimeAligner, Held
from services.runtime.messaging.consumer import PARSE_SLICE, Parsed, RecordOpener
from services.runtime.messaging.positions import APPLIED_SUFFIX
from services.runtime.messaging.projection import Projection, ProjectionHandler, record_version

log = logging.getLogger(__name__)

SWAP_LOCK_WAIT = 200
"""Milliseconds one attempt to lock the live tables waits (PostgreSQL's deadlock check
begins after a second)."""

BOOKKEEPING = ("consumed_events", "consumer_positions", "projection_versions")
"""Durable tables the handler writes beside the projection's own (`storage/migrations`)."""

Progress = Callable[[int, int], None]
"""Called with (events read so far, events to read in all)."""


@dataclass
class RebuildReport:
    projection: str
    events_read: int
    skipped: int
    tables: list[str]
    reading_seconds: float = 0.0
    """Reading the topics from the beginning to their end, applying as it read."""
    swap_seconds: float = 0.0
    """The swap's transaction: catching up with what arrived meanwhile, settling, and
    replacing the live tables."""
    settling_seconds: float = 0.0
    """Of the swap, the projection's `settle`."""

    @property
    def reading_rate(self) -> float:
        """Events read and applied per second before the swap."""
        return self.events_read / self.reading_seconds if self.reading_seconds else 0.0

    def summary(self) -> str:
        """For an operator: what was rebuilt into which tables, then how long it took (the
        first line's form is kept for scripts reading the tables after " into ")."""
        return (
            f"{self.projection}: rebuilt from {self.events_read} messages "
            f"({self.skipped} skipped as unreadable) into {', '.join(self.tables)}\n"
            f"  read and applied in {self.reading_seconds:.1f} s "
            f"({self.reading_rate:,.0f} events/s), swapped in {self.swap_seconds:.1f} s "
            f"({self.settling_seconds:.1f} s of it settling)"
        )


class ProjectionRebuild:
    def __init__(
        self,
        *,
        projection: Projection,
        database_dsn: str,
        schema: str,
        consumer_factory: Callable[..., AIOKafkaConsumer],
        batch_size: int = 5000,
        opener: RecordOpener | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self._projection = projection
        self._opener = opener
        self._verifier = verifier
        self._dsn = database_dsn
        self._live = schema
        self._shadow = f"{schema}__rebuild_{projection.name}"[:63]
        self._consumer_factory = consumer_factory
        self._batch_size = max(batch_size, getattr(projection, "max_records", None) or 0)
        self._read = 0
        self._skipped = 0
        self._settling = 0.0

    async def run(self, progress: Progress | None = None) -> RebuildReport:
        connection = await asyncpg.connect(self._dsn)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{self._shadow}" CASCADE')
            await connection.execute(f'CREATE SCHEMA "{self._shadow}"')
            # the durable tables the handler and the projection write (bookkeeping, an
            # outbox), shaped as the live ones; the swap leaves the live ones in place
            for table in (*BOOKKEEPING, *getattr(self._projection, "kept_tables", ())):
                await connection.execute(
                    f'CREATE TABLE "{self._shadow}"."{table}" '
                    f'(LIKE "{self._live}"."{table}" INCLUDING ALL)'
                )
        finally:
            await connection.close()
        pool = await asyncpg.create_pool(
            self._dsn,
            min_size=1,
            max_size=4,
            server_settings={"search_path": f'"{self._shadow}",public'},
        )
        assert pool is not None
        consumer = self._consumer_factory(enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            handler = ProjectionHandler(self._projection, pool)
            await handler.prepare()
            started = time.perf_counter()
            partitions = await self._assign_from_beginning(consumer)
            total = sum((await consumer.end_offsets(partitions)).values())
            await self._read_until(consumer, handler, partitions, total, progress)
            read = time.perf_counter()
            tables = await self._swap(consumer, handler, pool, partitions, progress)
        finally:
            await consumer.stop()
            await pool.close()
        return RebuildReport(
            self._projection.name,
            self._read,
            self._skipped,
            tables,
            reading_seconds=read - started,
            swap_seconds=time.perf_counter() - read,
            settling_seconds=self._settling,
        )

    async def _assign_from_beginning(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        await consumer.topics()  # loads the cluster's metadata
        partitions = [
            TopicPartition(topic, partition)
            for topic in self._projection.topics
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            raise RuntimeError(f"none of the topics {list(self._projection.topics)} exists")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        return partitions

    async def _read_until(
        self,
        consumer: AIOKafkaConsumer,
        handler: ProjectionHandler,
        partitions: list[TopicPartition],
        total: int,
        progress: Progress | None,
        end: dict[TopicPartition, int] | None = None,
    ) -> None:
        end = end or await consumer.end_offsets(partitions)
        aligner = self._aligner(handler)
        # as the live consumer does: a batch is fetched and parsed while the one before
        # is applied (batches still applied one after another, in order)
        applying: asyncio.Task[list[Any]] | None = None
        try:
            while await _behind(consumer, end) or (aligner is not None and aligner.holding()):
                # with nothing left to fetch, take the next batch as soon as one is applied
                idle = applying is not None and await _nothing_to_fetch(consumer, end)
                fetched = await consumer.getmany(
                    timeout_ms=0 if idle else 200, max_records=self._batch_size
                )
                batch: list[Parsed[Any]] = []
                for partition, records in fetched.items():
                    read = records
                    records = self._signed(records)
                    readable = records if self._opener is None else await self._opener(records)
                    parsed = await self._parse(handler, records, readable, applying)
                    if aligner is None:
                        batch += parsed
                    elif read:
                        held = [Held(p.record.offset, p.value.occurred_at, p) for p in parsed]
                        aligner.add(partition, held, read[-1].offset + 1)
                if aligner is not None:
                    behind = {p for p in partitions if await consumer.position(p) < end[p]}
                    batch = aligner.release(behind, limit=self._batch_size).items
                    full, paused = aligner.full(), consumer.paused()
                    consumer.pause(*(full - paused))
                    consumer.resume(*(paused - full))
                self._read += sum(len(records) for records in fetched.values())
                if applying is not None:
                    self._skipped += len(await applying)
                    applying = None
                if batch:
                    applying = asyncio.create_task(handler.handle(batch))
                if progress is not None:
                    progress(self._read, max(total, self._read))
            if applying is not None:
                self._skipped += len(await applying)
                applying = None
        finally:
            if applying is not None:
                applying.cancel()
                await asyncio.gather(applying, return_exceptions=True)

    async def _parse(
        self,
        handler: ProjectionHandler,
        records: Sequence[ConsumerRecord[Any, Any]],
        readable: Sequence[ConsumerRecord[Any, Any]],
        applying: asyncio.Task[list[Any]] | None,
    ) -> list[Parsed[Any]]:
        """Each record parsed (what does not parse was dead-lettered when it was first
        consumed, and is counted as skipped), in slices while a batch is being applied,
        so that parsing fills its waits on the database."""
        parsed: list[Parsed[Any]] = []
        for start in range(0, len(records), PARSE_SLICE):
            if applying is not None and not applying.done():
                await asyncio.sleep(0)
            end = start + PARSE_SLICE
            for record, opened in zip(records[start:end], readable[start:end], strict=True):
                try:
                    parsed.append(Parsed(record, handler.parse(opened)))
                except ContractViolation:
                    self._skipped += 1
        return parsed

    def _aligner(self, handler: ProjectionHandler) -> EventTimeAligner[Parsed[Any]] | None:
        """Topics read in event time, as the live consumer reads them (`alignment`)."""
        if not handler.aligned_topics:
            return None
        return EventTimeAligner(
            handler.aligned_topics, capacity=2 * self._batch_size, max_wait=float("inf")
        )

    def _signed(self, records: list[ConsumerRecord[Any, Any]]) -> list[ConsumerRecord[Any, Any]]:
        """The records their topic's owner signed; the others were dead-lettered when they
        were first consumed, and a rebuild applies nothing a live consumer refused."""
        if self._verifier is None:
            return records
        signed = []
        for record in records:
            try:
                self._verifier.check(record.topic, record.value, record.headers)
            except SignatureError:
                self._skipped += 1
                continue
            signed.append(record)
        return signed

    async def _swap(
        self,
        consumer: AIOKafkaConsumer,
        handler: ProjectionHandler,
        pool: asyncpg.Pool,
        partitions: list[TopicPartition],
        progress: Progress | None,
    ) -> list[str]:
        connection = await asyncpg.connect(self._dsn)
        try:
            async with connection.transaction():
                # in the order a live projection's transaction writes them
                await connection.execute(
                    f'LOCK TABLE "{self._live}".consumer_positions, '
                    f'"{self._live}".consumed_events IN EXCLUSIVE MODE'
                )
                end = await consumer.end_offsets(partitions)
                await self._read_until(
                    consumer, handler, partitions, sum(end.values()), progress, end
                )
                settle = getattr(self._projection, "settle", None)
                if settle is not None:
                    # in this transaction, the shadow's tables first (the rest of the
                    # swap names its tables with their schema)
                    await connection.execute(f'SET LOCAL search_path TO "{self._shadow}", public')
                    settling = time.perf_counter()
                    await settle(connection, self._live)
                    self._settling = time.perf_counter() - settling
                # tables whose rows were published already (an outbox) stay as they are:
                # a rebuild must not publish its conclusions a second time
                kept = [*BOOKKEEPING, *getattr(self._projection, "kept_tables", ())]
                tables = [
                    r["tablename"]
                    for r in await connection.fetch(
                        "SELECT tablename FROM pg_tables WHERE schemaname = $1 "
                        "AND tablename <> ALL($2::text[]) ORDER BY tablename",
                        self._shadow,
                        kept,
                    )
                ]
                await self._lock_live(connection, tables)
                for table in tables:
                    await connection.execute(f'DROP TABLE IF EXISTS "{self._live}"."{table}"')
                    await connection.execute(
                        f'ALTER TABLE "{self._shadow}"."{table}" SET SCHEMA "{self._live}"'
                    )
                await connection.execute(
                    f'DELETE FROM "{self._live}".consumed_events WHERE projection = $1',
                    self._projection.name,
                )
                await connection.execute(
                    f'INSERT INTO "{self._live}".consumed_events '
                    f'SELECT * FROM "{self._shadow}".consumed_events WHERE projection = $1',
                    self._projection.name,
                )
                await self._swap_positions(connection)
                await connection.execute(f'SET LOCAL search_path TO "{self._live}"')
                await record_version(connection, self._projection)
                await connection.execute(f'DROP SCHEMA "{self._shadow}" CASCADE')
        finally:
            await connection.close()
        return tables

    async def _swap_positions(self, connection: asyncpg.Connection) -> None:
        """The positions the shadow applied replace the live ones (`positions.recognise`);
        what the consumer noted after its batches stays (it never runs ahead)."""
        applied = self._projection.name + APPLIED_SUFFIX
        await connection.execute(
            f'DELETE FROM "{self._live}".consumer_positions WHERE consumer = $1', applied
        )
        await connection.execute(
            f'INSERT INTO "{self._live}".consumer_positions '
            f'SELECT * FROM "{self._shadow}".consumer_positions WHERE consumer = $1',
            applied,
        )

    async def _lock_live(self, connection: asyncpg.Connection, tables: list[str]) -> None:
        """Every live table to be replaced, locked at once before any is dropped.

        A query reading several of them (a join) takes its locks one table after the
        other; dropping them one by one could take one it waits for while it holds
        another, a deadlock that PostgreSQL ends by failing one side. So the locks are
        asked for together, each attempt giving up after `SWAP_LOCK_WAIT` (well before
        PostgreSQL looks for deadlocks) and letting go of what it took: the queries under
        way finish, and the next attempt finds the tables free."""
        live = [
            r["tablename"]
            for r in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 "
                "AND tablename = ANY($2::text[]) ORDER BY tablename",
                self._live,
                tables,
            )
        ]
        if not live:
            return
        names = ", ".join(f'"{self._live}"."{table}"' for table in live)
        for attempt in itertools.count(1):
            try:
                async with connection.transaction():  # a savepoint: a failed try lets go
                    await connection.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_WAIT}ms'")
                    await connection.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
                    await connection.execute("SET LOCAL lock_timeout = 0")
                return
            except asyncpg.LockNotAvailableError:
                if attempt % 50 == 0:
                    log.info("the swap of %s waits for queries on its tables", self._live)
                await asyncio.sleep(min(0.01 * attempt, 0.2))


async def rebuild_projections(
    projections: Sequence[Projection],
    *,
    database_dsn: str,
    schema: str,
    consumer_factory: Callable[..., AIOKafkaConsumer],
    progress_for: Callable[[str], Progress] | None = None,
    opener: RecordOpener | None = None,
    verifier: Verifier | None = None,
) -> list[RebuildReport]:
    """Rebuild each projection in turn; `opener` opens sealed personal values (the
    service's `PersonalData.open_records`), as the live consumers do."""
    reports = []
    for projection in projections:
        rebuild = ProjectionRebuild(
            projection=projection,
            database_dsn=database_dsn,
            schema=schema,
            consumer_factory=consumer_factory,
            opener=opener,
            verifier=verifier,
        )
        progress = progress_for(projection.name) if progress_for else None
        reports.append(await rebuild.run(progress))
    return reports


async def _behind(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    for partition, offset in end.items():
        if await consumer.position(partition) < offset:
            return True
    return False


async def _nothing_to_fetch(consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
    """Whether every partition is paused (the aligner is full) or read to `end`."""
    paused = consumer.paused()
    for tp, offset in end.items():
        if tp not in paused and await consumer.position(tp) < offset:
            return False
    return True
