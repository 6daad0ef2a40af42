"""Batch consumer: reads Kafka topics in batches and hands them to a handler, at least once.

The projections run on its own aiokafka loop (below); the inbound consumers run as
FastStream subscribers whose batches go through the same parsing, dead-lettering and
handling (`subscribers.SubscribedConsumer`, which says why the projections do not).

For each batch:
1. every message is parsed by the handler; what does not parse goes to the dead-letter
   topic with its original bytes and the reason;
2. the handler handles the parsed messages (a projection applies them in one PostgreSQL
   transaction; an inbound consumer records them as commands) and returns those it could
   not apply, which are dead-lettered too;
3. only then are the batch's offsets committed to the broker.

While a batch is handled, the next one is fetched and parsed (its handling starts only
once the previous batch's offsets are committed).

With nothing to handle, a consumer waits for new messages up to `idle_wait_ms` (new
messages end the wait at once), so that at rest it does not spin; how long the broker
holds each fetch is `fetch_max_wait_ms`.

A crash between 2 and 3 re-delivers the batch: handlers recognise what they already did
(projections by event id, inbound consumers by the sender's idempotency key). Outages of
the database are waited out on the same batch, never skipped.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from contracts.registry import ContractViolation
from contracts.signing import SignatureError, Verifier
from services.runtime.failpoints import failpoint
from services.runtime.messaging.alignment import EventTimeAligner, Held
from services.runtime.messaging.deadletter import DeadLetterPublisher, Rejection
from services.runtime.messaging.positions import ConsumerPositions
from services.runtime.metrics import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    CONSUMER_STALLED,
    EVENTS_CONSUMED,
)
from services.runtime.transient import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

ALIGNMENT_MAX_WAIT_SECONDS = 2.0
"""How long messages held back to be read in event time wait for a partition that is
said to be behind and is not served (`alignment`), before they are handed on as they
are."""

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

PARSE_SLICE = 50
"""Messages parsed at a time while the previous batch is handled (about a millisecond)."""

YOUNG_GENERATION_THRESHOLD = 100_000
"""Net allocations between two collections of the youngest generation (Python's default:
700).

A batch keeps a hundred thousand objects or more (records, envelopes, payloads, profiles)
alive until it is done; with a lower threshold every batch passes them through young
collections that find nothing to free, and promotes them into older generations, which
then triggers collections of the whole heap (a second per 90,000 folded events at 20,000,
a twentieth of that at 100,000). The objects of a batch are freed by reference counting
once it is done, and cycles are still collected. Raised once per process, never lowered."""


def tune_garbage_collector() -> None:
    threshold, *older = gc.get_threshold()
    if threshold < YOUNG_GENERATION_THRESHOLD:
        gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *older)


class NotReady(Exception):
    """Raised by a handler's `prepare` when it cannot consume yet; the message says why
    and what would change it. The consumer asks again every `NOT_READY_RETRY_SECONDS`."""


NOT_READY_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """A message and what the handler parsed from it."""

    record: ConsumerRecord[Any, Any]
    value: T


class BatchHandler(Protocol[T]):
    """What a `BatchConsumer` feeds. `name` labels metrics and names the consumer group."""

    name: str
    group_id: str
    topics: Sequence[str]

    def parse(self, record: ConsumerRecord[Any, Any]) -> T:
        """The message's content, or `ContractViolation` saying why it does not fit."""
        ...

    def describe(self, value: T) -> str:
        """A bounded label for metrics, such as the event type."""
        ...

    async def prepare(self) -> None:
        """Create tables and whatever else is needed before the first batch; `NotReady`
        while the handler cannot consume."""
        ...

    async def handle(self, batch: Sequence[Parsed[T]]) -> list[Rejection]:
        """Apply the batch, or raise one of TRANSIENT_ERRORS to have it retried.

        Returns the messages that cannot be applied, with reasons; they are dead-lettered.
        """
        ...

    def on_caught_up(self) -> None:
        """Called whenever the consumer has read everything there is to read."""
        ...


RecordOpener = Callable[
    [Sequence[ConsumerRecord[Any, Any]]], Awaitable[list[ConsumerRecord[Any, Any]]]
]
"""Opens sealed personal values of records before parsing (the originals stay for the
dead-letter topic, so that no opened personal data is copied there)."""


class BatchConsumer(Generic[T]):
    def __init__(
        self,
        *,
        handler: BatchHandler[T],
        consumer_factory: Callable[..., AIOKafkaConsumer],
        dead_letters: DeadLetterPublisher,
        max_records: int = 2000,
        batch_timeout_ms: int = 50,
        fetch_max_wait_ms: int = 50,
        idle_wait_ms: int = 1000,
        group_suffix: str = "",
        opener: RecordOpener | None = None,
        verifier: Verifier | None = None,
        positions: ConsumerPositions | None = None,
    ) -> None:
        self.handler = handler
        self._positions = positions
        self._opener = opener
        self._verifier = verifier
        self.group_id = handler.group_id + group_suffix
        self._consumer_factory = consumer_factory
        self._dead_letters = dead_letters
        self._max_records = max_records
        self._batch_timeout_ms = batch_timeout_ms
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._idle_wait_ms = idle_wait_ms
        self.caught_up = False
        self.connected = False
        self.last_error: str | None = None
        self.not_ready: str | None = None
        """Why the handler cannot consume yet, while it cannot."""
        self.behind = 0
        """Messages on its partitions not handled yet, as last measured."""
        self.measured = False
        """Whether `behind` and `caught_up` were measured at all yet."""
        self.progressed_at = time.monotonic()
        """When it last handled a batch or found itself caught up."""
        self.joining_since: float | None = None
        """Since when it waits for the broker to give it its partitions, while it does."""

    @property
    def name(self) -> str:
        return self.handler.name

    def stalled_for(self) -> float:
        """Seconds behind without handling a batch (0 while progressing or caught up), or
        waiting for its partitions (a group the broker does not complete is no start)."""
        if self.joining_since is not None:
            stalled = time.monotonic() - self.joining_since
        else:
            stalled = 0.0 if self.behind == 0 else time.monotonic() - self.progressed_at
        CONSUMER_STALLED.labels(consumer=self.name).set(stalled)
        return stalled

    async def run(self) -> None:
        """Consume until cancelled, reconnecting after broker and database outages (every
        transient error, `services.runtime.transient`); any other error ends the task,
        and with it the process (`services.runtime.supervision`)."""
        tune_garbage_collector()
        await self.until_ready()
        while True:
            consumer = self._consumer_factory(
                *self.handler.topics,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self._max_records,
                metadata_max_age_ms=5000,
                fetch_max_wait_ms=self._fetch_max_wait_ms,
                # The smallest session Kafka accepts by default: a dead replica's
                # partitions move within 6 s, and a joining one waits less for its own
                # (the embedded broker holds a first join for half a session).
                session_timeout_ms=6000,
                heartbeat_interval_ms=1000,
                **self._assignment(),
            )
            on_assigned = getattr(self.handler, "on_assigned", None)
            if on_assigned is not None:
                consumer.subscribe(list(self.handler.topics), listener=_Assigned(on_assigned))
            try:
                # a subscribed consumer starts once the broker has given it partitions
                self.joining_since = time.monotonic()
                await consumer.start()
                self.joining_since = None
                if self._positions is not None:
                    await self._positions.load()
                self.connected = True
                await self._consume(consumer)
            except (KafkaError, *TRANSIENT_ERRORS) as exc:
                # what was fetched and not committed is read again after reconnecting
                self.last_error = repr(exc)
                log.warning("consumer %s reconnects after: %r", self.name, exc)
                await asyncio.sleep(1.0)
            finally:
                self.connected = False
                self.joining_since = None
                try:
                    await consumer.stop()
                except (KafkaError, OSError):
                    log.debug("consumer stop failed", exc_info=True)

    def _assignment(self) -> dict[str, Any]:
        """A handler whose state is owned per partition (`co_partitioned`) gets partition
        `n` of every topic it reads in one process: the range assignor, which gives each
        member the same range of partitions of each topic (of equal partition counts)."""
        if getattr(self.handler, "co_partitioned", False):
            return {"partition_assignment_strategy": (RangePartitionAssignor,)}
        return {}

    async def until_ready(self) -> None:
        """Prepare the handler, waiting while it is not ready (e.g. its projection needs a
        rebuild)."""
        while not await self.prepare():
            await asyncio.sleep(NOT_READY_RETRY_SECONDS)

    async def prepare(self) -> bool:
        """Prepare the handler once: False, with `not_ready` saying why, while it cannot
        consume (readiness reports that from the service's first answer on)."""
        try:
            await self.handler.prepare()
        except NotReady as reason:
            if self.not_ready != str(reason):
                log.warning("consumer %s waits: %s", self.name, reason)
            self.not_ready = str(reason)
            return False
        if self.not_ready is not None:
            log.info("consumer %s resumes", self.name)
        self.not_ready = None
        return True

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch and parse the next batch while the previous one is being handled.

        Batches are still handled one after another, in order, each with its offsets
        committed only after it was handled; only the fetching and parsing (CPU) of the
        next batch overlaps the previous batch's waits on its database and broker. A
        handler that reads its topics in event time (`aligned_topics`) gets what the
        aligner hands on (`services.runtime.messaging.alignment`).
        """
        pending: asyncio.Task[None] | None = None
        aligner = self._aligner()
        try:
            while True:
                # while a batch is handled, or messages are held back to be handed on,
                # look soon whether it is done (to commit it)
                busy = pending is not None or (aligner is not None and aligner.holding())
                wait = self._batch_timeout_ms if busy else self._idle_wait_ms
                if pending is not None and _all_paused(consumer):
                    # nothing can arrive: take the batch as soon as it is handled
                    wait = 0
                fetched = await consumer.getmany(timeout_ms=wait, max_records=self._max_records)
                records = [record for batch in fetched.values() for record in batch]
                parsed, rejected = await self._parse_beside(records, pending)
                if pending is not None:
                    await pending
                    pending = None
                if aligner is None:
                    unhandled = {tp: batch[0].offset for tp, batch in fetched.items() if batch}
                    commits = {tp: batch[-1].offset + 1 for tp, batch in fetched.items() if batch}
                else:
                    parsed, rejected, commits, unhandled = await self._align(
                        consumer, aligner, fetched, parsed, rejected
                    )
                await self._record_lag(consumer, unhandled)
                if parsed or rejected or commits:
                    handled = (
                        records
                        if aligner is None
                        else [m.record for m in parsed] + [r.record for r in rejected]
                    )
                    pending = asyncio.create_task(
                        self._finish(consumer, commits, parsed, rejected, handled)
                    )
        finally:
            if pending is not None:
                # Stopped or the broker lost: a batch not handled yet is rolled back and
                # read again later (its offsets were not committed).
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    def _aligner(self) -> EventTimeAligner[Parsed[T] | Rejection] | None:
        topics = getattr(self.handler, "aligned_topics", ())
        if not topics:
            return None
        return EventTimeAligner(
            topics, capacity=2 * self._max_records, max_wait=ALIGNMENT_MAX_WAIT_SECONDS
        )

    async def _align(
        self,
        consumer: AIOKafkaConsumer,
        aligner: EventTimeAligner[Parsed[T] | Rejection],
        fetched: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
        parsed: list[Parsed[T]],
        rejected: list[Rejection],
    ) -> tuple[
        list[Parsed[T]], list[Rejection], dict[TopicPartition, int], dict[TopicPartition, int]
    ]:
        """Hold what was read, and take what may be handled now in event time; with the
        offsets to commit once it is, and the first offset not handled yet per
        partition (for the lag)."""
        assigned = consumer.assignment()
        aligner.keep_only(assigned)
        event_time = self.handler.event_time  # type: ignore[attr-defined]
        read: dict[TopicPartition, list[Held[Parsed[T] | Rejection]]] = {}
        for message in parsed:
            tp = TopicPartition(message.record.topic, message.record.partition)
            read.setdefault(tp, []).append(
                Held(message.record.offset, event_time(message.value), message)
            )
        for rejection in rejected:
            tp = TopicPartition(rejection.record.topic, rejection.record.partition)
            read.setdefault(tp, []).append(Held(rejection.record.offset, None, rejection))
        for tp, batch in fetched.items():
            if batch and tp in assigned:
                held = sorted(read.get(tp, ()), key=lambda h: h.offset)
                aligner.add(tp, held, batch[-1].offset + 1)
        unhandled = {
            tp: offset for tp in assigned if (offset := aligner.first_held(tp)) is not None
        }
        behind = set()
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None or highwater > await consumer.position(tp):
                behind.add(tp)
        released = aligner.release(behind, limit=self._max_records)
        full = aligner.full()
        paused = consumer.paused()
        if full - paused:
            consumer.pause(*(full - paused))
        if paused - full:
            consumer.resume(*(paused - full))
        handed = [item for item in released.items if isinstance(item, Parsed)]
        refused = [item for item in released.items if isinstance(item, Rejection)]
        return handed, refused, released.commits, unhandled

    async def _finish(
        self,
        consumer: AIOKafkaConsumer,
        commits: dict[TopicPartition, int],
        parsed: list[Parsed[T]],
        rejected: list[Rejection],
        records: Sequence[ConsumerRecord[Any, Any]],
    ) -> None:
        """Handle a parsed batch (of `records`), then commit its offsets."""
        await self.handle_parsed(parsed, rejected)
        if self._positions is not None:
            await self._positions.advance(records)
        failpoint("consumer_after_handle_before_commit")
        try:
            if commits:
                await consumer.commit(commits)
        except CommitFailedError as exc:
            # A rebalance moved the partitions; the next owner re-reads the batch
            # and its handler recognises what was already done.
            log.info("offset commit skipped after rebalance: %s", exc)
        self.progressed_at = time.monotonic()

    async def _record_lag(
        self, consumer: AIOKafkaConsumer, unhandled: dict[TopicPartition, int]
    ) -> None:
        """Lag up to what is handled: what was fetched and not handled yet still counts
        (`unhandled`: the first such offset per partition)."""
        behind = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            handled = unhandled.get(tp)
            if handled is None:
                handled = await consumer.position(tp)
            lag = max(0, highwater - handled)
            behind += lag
            CONSUMER_LAG.labels(
                consumer=self.name, topic=tp.topic, partition=str(tp.partition)
            ).set(lag)
        self.caught_up = behind == 0
        self.behind = behind
        self.measured = True
        if self.caught_up:
            self.progressed_at = time.monotonic()
            self.handler.on_caught_up()

    async def _parse_beside(
        self, records: Sequence[ConsumerRecord[Any, Any]], pending: asyncio.Task[None] | None
    ) -> tuple[list[Parsed[T]], list[Rejection]]:
        """Parse while `pending` handles the previous batch: in slices, letting the handling
        go on whenever its database answers, so that parsing fills its waits."""
        signed, rejected = self.signed(records)
        readable = await self._readable(signed)
        parsed: list[Parsed[T]] = []
        if pending is None or pending.done():
            parsed, bad = self.parse(signed, readable)
            return parsed, rejected + bad
        for start in range(0, len(signed), PARSE_SLICE):
            await asyncio.sleep(0)
            end = start + PARSE_SLICE
            more, bad = self.parse(signed[start:end], readable[start:end])
            parsed += more
            rejected += bad
        return parsed, rejected

    def signed(
        self, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> tuple[list[ConsumerRecord[Any, Any]], list[Rejection]]:
        """The records their topic's owner signed (every record of an inbound topic), and
        the others, refused before anything is read from them (`contracts.signing`).
        Signed records handled when they were published before are left out (counted as
        duplicates): a broker refilled after losing its topics sends them again."""
        signed: list[ConsumerRecord[Any, Any]] = []
        refused: list[Rejection] = []
        for record in records:
            if self._verifier is not None:
                try:
                    self._verifier.check(record.topic, record.value, record.headers)
                except SignatureError as exc:
                    reason = "unsigned" if str(exc).startswith("unsigned") else "bad signature"
                    refused.append(Rejection(record, reason, str(exc)))
                    continue
            if self._positions is not None and self._positions.already_handled(record):
                self.count(record.topic, "republished", "duplicate")
                continue
            signed.append(record)
        return signed, refused

    async def _readable(
        self, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> Sequence[ConsumerRecord[Any, Any]]:
        """The records with sealed personal values opened, when the service opens them."""
        return records if self._opener is None else await self._opener(records)

    def parse(
        self,
        records: Sequence[ConsumerRecord[Any, Any]],
        readable: Sequence[ConsumerRecord[Any, Any]],
    ) -> tuple[list[Parsed[T]], list[Rejection]]:
        """Each message's content (read from `readable`, the records opened), or why it
        goes to the dead-letter topic (with the original record)."""
        parsed: list[Parsed[T]] = []
        rejected: list[Rejection] = []
        for record, opened in zip(records, readable, strict=True):
            try:
                parsed.append(Parsed(record, self.handler.parse(opened)))
            except ContractViolation as exc:
                rejected.append(Rejection(record, exc.reason, exc.detail))
        return parsed, rejected

    async def handle_batch(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Parse, dead-letter and handle one batch; return once it is all done."""
        signed, refused = self.signed(records)
        parsed, rejected = self.parse(signed, await self._readable(signed))
        await self.handle_parsed(parsed, refused + rejected)

    async def handle_parsed(self, parsed: list[Parsed[T]], rejected: list[Rejection]) -> None:
        """Dead-letter what did not parse and handle the rest; return once it is all done."""
        for rejection in rejected:
            self.count(rejection.record.topic, "unparsed", "dead_lettered")
        await self._dead_letters.publish(rejected, self.name)
        if not parsed:
            return
        started = time.perf_counter()
        delay = 0.2
        while True:
            try:
                failed = await self.handler.handle(parsed)
                break
            except TRANSIENT_ERRORS as exc:
                self.last_error = repr(exc)
                log.warning("consumer %s waits for its database: %r", self.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for rejection in failed:
            self.count(rejection.record.topic, "unapplied", "dead_lettered")
        await self._dead_letters.publish(failed, self.name)
        BATCH_SECONDS.labels(consumer=self.name).observe(time.perf_counter() - started)
        self.last_error = None

    def count(self, topic: str, kind: str, outcome: str) -> None:
        EVENTS_CONSUMED.labels(
            consumer=self.name, topic=topic, event_type=kind, outcome=outcome
        ).inc()


class _Assigned(ConsumerRebalanceListener):
    """Tells the handler each time the group gives this consumer its partitions."""

    def __init__(self, on_assigned: Callable[[], None]) -> None:
        self._on_assigned = on_assigned

    def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._on_assigned()


def _all_paused(consumer: AIOKafkaConsumer) -> bool:
    """Whether every partition the consumer holds is paused (the aligner holds all it may
    until the batch being handled is done)."""
    assigned = consumer.assignment()
    return bool(assigned) and assigned <= consumer.paused()
