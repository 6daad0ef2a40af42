"""Projections: read models folded from contract events, each event applied exactly once.

Each projection names the shape of its tables with a `version` (1 unless it says more).
The version its tables were built with is kept in `projection_versions`: a projection
whose tables are missing creates them and records its version; one whose tables were
built with another version raises `RebuildNeeded`, and its consumer applies nothing (the
readiness says why, `crm_projection_rebuild_needed` is 1) until `crm rebuild` has built
the tables afresh, beside the live ones, and recorded the new version. Tables are
never patched in place: a changed shape is a new version.

`ProjectionHandler` feeds a `Projection` from a `BatchConsumer`. In one PostgreSQL
transaction it recognises the messages a relay published by their position, kept per
source and partition in the same transaction (`positions.recognise`); it records the ids
of the others (messages without a position) in `consumed_events` and skips those already
there (the same event re-delivered, at the same or another offset); it applies the rest.
The broker offsets are committed only after that transaction, so a crash in between
re-delivers a batch whose every event is then recognised. A projection that says
`recognised_by_position = False` records every event's id instead.

An event the projection cannot apply fails the batch's transaction; the batch is then
applied one event per transaction, and only the failing event is dead-lettered.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import orjson
from aiokafka.structs import ConsumerRecord

from contracts.envelope import EventEnvelope
from contracts.registry import parse_event
from services.runtime.messaging.consumer import NotReady, Parsed
from services.runtime.messaging.deadletter import Rejection
from services.runtime.messaging.positions import recognise
from services.runtime.metrics import EVENTS_CONSUMED, PROJECTION_LAG, PROJECTION_REBUILD_NEEDED
from services.runtime.storage.statistics import PlannerStatistics
from services.runtime.transient import TRANSIENT_ERRORS

log = logging.getLogger(__name__)


class RebuildNeeded(NotReady):
    """The projection's tables have another shape than its code; the message says which
    and what to run."""


class Projection(Protocol):
    """A read model fed by events. `apply` runs inside the consumer's transaction.

    `version` is the shape of its tables, raised whenever `create_tables` changes.
    `kept_tables` (optional) names durable tables it writes beside its own (an outbox):
    a rebuild leaves the live ones as they are. `aligned_topics` (optional) names topics
    it reads in event time, live and in a rebuild (`alignment`): one of them read ahead
    of another is held back until the other has been read up to its time. `parse`
    (optional) reads a message's value into an envelope with what it reads (a tolerant
    reader, `contracts.tolerant`); without it, every message is parsed with its whole
    contract (`parse_event`). `max_records` (optional) is the most messages it applies in
    one transaction, for a projection whose cost per transaction is worth spreading over
    more messages than `CRM_CONSUMER_MAX_RECORDS` (the analytics fold writes back each
    profile a transaction touches once, however many of its facts the transaction
    holds); a consumer takes what has arrived, so a larger one adds no latency."""

    name: str
    topics: Sequence[str]
    version: int

    async def create_tables(self, connection: asyncpg.Connection) -> None: ...

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None: ...


Delivered = Parsed[EventEnvelope[Any]]


async def record_version(connection: asyncpg.Connection, projection: Projection) -> None:
    """Record that `projection`'s tables in the current schema have its shape."""
    await connection.execute(
        """INSERT INTO projection_versions (projection, version) VALUES ($1, $2)
           ON CONFLICT (projection) DO UPDATE SET version = excluded.version, built_at = now()""",
        projection.name,
        projection.version,
    )


class ProjectionHandler:
    def __init__(self, projection: Projection, pool: asyncpg.Pool) -> None:
        self.projection = projection
        self._pool = pool
        self.name = projection.name
        self.group_id = f"crm.projection.{projection.name}"
        self.topics = projection.topics
        self.max_records: int | None = getattr(projection, "max_records", None)
        """The most messages the projection applies in one transaction, if it says."""
        self.aligned_topics: Sequence[str] = getattr(projection, "aligned_topics", ())
        """The topics the projection reads in event time (`alignment`), if any."""
        self.by_position: bool = getattr(projection, "recognised_by_position", True)
        """Whether events with a relay position are recognised by it (`positions.recognise`)
        rather than by a row per event in `consumed_events` (every projection, unless it
        says otherwise: a row less per event)."""
        self.co_partitioned: bool = getattr(projection, "co_partitioned", False)
        """Whether the projection's state is owned per partition: partition `n` of every
        topic it reads goes to one consumer of the group (`BatchConsumer`)."""
        self.on_assigned: Callable[[], None] | None = getattr(projection, "on_assigned", None)
        """Told each time the group gives this consumer its partitions, if it asks."""
        self._committed: Callable[[], None] = getattr(projection, "committed", lambda: None)
        """Told once a transaction of `apply` committed (what it kept is what is stored)."""
        self._parse: Callable[[bytes | None], EventEnvelope[Any]] = getattr(
            projection, "parse", parse_event
        )
        self._statistics = PlannerStatistics(pool)
        """The tables the projection fills fast keep statistics its look-ups can use."""

    def event_time(self, value: EventEnvelope[Any]) -> datetime:
        return value.occurred_at

    def parse(self, record: ConsumerRecord[Any, Any]) -> EventEnvelope[Any]:
        return self._parse(record.value)

    def describe(self, value: EventEnvelope[Any]) -> str:
        return value.event_type

    @property
    def version(self) -> int:
        return self.projection.version

    async def prepare(self) -> None:
        """Create the tables if they are missing; `RebuildNeeded` when they have another
        shape than this code's."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || $1, 0))",
                f".projection.{self.name}",
            )
            built = await connection.fetchval(
                "SELECT version FROM projection_versions WHERE projection = $1", self.name
            )
            if built is None:
                await self.projection.create_tables(connection)
                await record_version(connection, self.projection)
                built = self.version
        stale = built != self.version
        PROJECTION_REBUILD_NEEDED.labels(projection=self.name).set(1 if stale else 0)
        if stale:
            raise RebuildNeeded(
                f"projection {self.name} has tables of shape version {built}, this code "
                f"needs version {self.version}: run `crm rebuild <service> --projection "
                f"{self.name}`; until then it applies nothing"
            )

    def on_caught_up(self) -> None:
        PROJECTION_LAG.labels(projection=self.name).set(0)

    async def handle(self, batch: Sequence[Delivered]) -> list[Rejection]:
        """Apply the batch in one transaction; on an event-level error, isolate it."""
        try:
            failed = await self._apply_each_transaction([list(batch)])
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            if len(batch) == 1:
                return [self._unappliable(batch[0], exc)]
            log.info("batch of %d failed (%r); applying one by one", len(batch), exc)
            failed = await self._apply_each_transaction([[item] for item in batch], isolate=True)
        newest = max(item.value.recorded_at for item in batch).timestamp()
        PROJECTION_LAG.labels(projection=self.name).set(max(0.0, time.time() - newest))
        await self._statistics.refresh_if_due()
        return failed

    async def _apply_each_transaction(
        self, groups: list[list[Delivered]], *, isolate: bool = False
    ) -> list[Rejection]:
        failed: list[Rejection] = []
        for group in groups:
            try:
                async with self._pool.acquire() as connection, connection.transaction():
                    outcomes = await self._apply(connection, group)
                self._committed()
                self._count(outcomes)  # only once committed: a retried batch counts once
            except TRANSIENT_ERRORS:
                raise
            except Exception as exc:
                if not isolate:
                    raise
                failed.append(self._unappliable(group[0], exc))
        return failed

    def _unappliable(self, item: Delivered, exc: Exception) -> Rejection:
        return Rejection(item.record, "could not apply", f"{type(exc).__name__}: {exc}")

    async def _apply(
        self, connection: asyncpg.Connection, delivered: list[Delivered]
    ) -> list[tuple[Delivered, bool]]:
        """Record and apply the batch's new events; returns each delivery and whether it
        was applied now (False: a duplicate)."""
        # Keyed by the ids' integers: hashing a uuid.UUID runs Python code, an int's does not.
        unique: dict[int, Delivered] = {}
        for item in delivered:
            unique.setdefault(item.value.event_id.int, item)
        items = list(unique.values())
        new_ids: set[int] = set()
        if self.by_position:
            new, by_id = await recognise(connection, self.name, [i.record for i in items])
            new_ids = {items[n].value.event_id.int for n in new}
            items = [items[n] for n in by_id]
        if items:
            new_ids |= await self._record_ids(connection, items)
        fresh = [item.value for key, item in unique.items() if key in new_ids]
        if fresh:
            await self.projection.apply(connection, fresh)
        outcomes = []
        for item in delivered:
            key = item.value.event_id.int
            outcomes.append((item, key in new_ids))
            new_ids.discard(key)
        return outcomes

    async def _record_ids(self, connection: asyncpg.Connection, items: list[Delivered]) -> set[int]:
        """Record the events' ids in `consumed_events`; the ids not recorded before."""
        # One JSON parameter rather than one array per column: asyncpg checks every
        # element of an array parameter in Python, PostgreSQL reads JSON faster.
        consumed = orjson.dumps(
            [(i.value.event_id, i.record.topic, i.record.partition, i.record.offset) for i in items]
        ).decode()
        return {
            row[0].int
            for row in await connection.fetch(
                """INSERT INTO consumed_events (projection, event_id, topic, partition, "offset")
                   SELECT $1, (e->>0)::uuid, e->>1, (e->>2)::int, (e->>3)::bigint
                   FROM jsonb_array_elements($2::jsonb) AS e
                   ON CONFLICT DO NOTHING
                   RETURNING event_id""",
                self.name,
                consumed,
            )
        }

    def _count(self, outcomes: list[tuple[Delivered, bool]]) -> None:
        counts: Counter[tuple[str, str, bool]] = Counter(
            (item.record.topic, item.value.event_type, applied) for item, applied in outcomes
        )
        for (topic, event_type, applied), count in counts.items():
            EVENTS_CONSUMED.labels(
                consumer=self.name,
                topic=topic,
                event_type=event_type,
                outcome="applied" if applied else "duplicate",
            ).inc(count)
