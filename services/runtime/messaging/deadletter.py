"""Dead letters: what a consumer could not parse or apply, kept with the reason.

Each is kept twice: whole in the service's own `dead_letters` table (written first and
retried until PostgreSQL has it, so that a broker that loses its topics loses no dead
letter; listed and replayed by `crm dead-letters`, swept after the retention), and on the
dead-letter topic, for other systems to watch.

The dead-lettered message keeps the original key, value and headers byte for byte; the
reason and where it came from are added as headers prefixed `dlq.`.

A message that cannot fit on the dead-letter topic (larger than the producer's
`kafka_max_message_bytes`: the broker accepted it from a producer allowed more) is
dead-lettered in a form that fits: its first `PREFIX_BYTES` bytes, with the headers
`dlq.truncated`, `dlq.original_bytes` and the source topic, partition and offset, which
point to where the whole message stays for the topic's retention. Errors that no retry can
mend (a record still too large) are not retried: the consumer must go on to the next
message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import ConsumerRecord

from contracts.topics import Topic
from services.runtime.metrics import DEAD_LETTERS
from services.runtime.transient import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

HEADER_PREFIX = "dlq."
PREFIX_BYTES = 64 * 1024
"""How much of an oversized message's value (and key) its dead letter keeps."""
TRUNCATED = HEADER_PREFIX + "truncated"


@dataclass(frozen=True)
class Rejection:
    record: ConsumerRecord
    reason: str
    detail: str


def dead_letter_headers(
    rejection: Rejection, service: str, consumer: str
) -> list[tuple[str, bytes]]:
    record = rejection.record
    added = {
        "reason": rejection.reason,
        "detail": rejection.detail[:2000],
        "source_topic": record.topic,
        "source_partition": str(record.partition),
        "source_offset": str(record.offset),
        "service": service,
        "consumer": consumer,
        "failed_at": datetime.now(UTC).isoformat(),
    }
    original = [(k, v) for k, v in (record.headers or ()) if not k.startswith(HEADER_PREFIX)]
    return original + [(HEADER_PREFIX + k, v.encode()) for k, v in added.items()]


@dataclass(frozen=True)
class DeadLetter:
    """What goes on the dead-letter topic for one rejection."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def size(self) -> int:
        """The record's size as the producer counts it against its maximum."""
        return int(
            DefaultRecordBatchBuilder.estimate_size_in_bytes(self.key, self.value, self.headers)
        )


def dead_letter(rejection: Rejection, service: str, consumer: str, limit: int) -> DeadLetter:
    """The dead letter of `rejection`: the original record with the `dlq.` headers, or, when
    that would exceed `limit` bytes, a bounded prefix of it marked truncated."""
    record = rejection.record
    whole = DeadLetter(record.key, record.value, dead_letter_headers(rejection, service, consumer))
    if whole.size <= limit:
        return whole
    return truncated(rejection, service, consumer, limit)


def truncated(rejection: Rejection, service: str, consumer: str, limit: int) -> DeadLetter:
    """The form of an oversized dead letter that fits: prefixes of key and value, the added
    headers and as many original headers as fit, and what was cut."""
    record = rejection.record
    key, value = record.key, record.value or b""
    added = [
        (TRUNCATED, b"true"),
        (HEADER_PREFIX + "original_bytes", str(len(value)).encode()),
    ]
    ours = dead_letter_headers(rejection, service, consumer)
    kept = [(k, v) for k, v in ours if k.startswith(HEADER_PREFIX)]
    original = [(k, v) for k, v in ours if not k.startswith(HEADER_PREFIX)]
    room = max(0, min(PREFIX_BYTES, limit // 4))
    letter = DeadLetter(key[:1024] if key else key, value[:room], added + kept)
    for header in original:  # the original headers, while they fit
        wider = DeadLetter(letter.key, letter.value, [*letter.headers, header])
        if wider.size > limit // 2:
            break
        letter = wider
    return letter


KEEP_SQL = """
INSERT INTO dead_letters (consumer, source_topic, source_partition, source_offset, key,
                          value, headers, reason, detail, original_bytes)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)
ON CONFLICT (consumer, source_topic, source_partition, source_offset, digest) DO NOTHING
"""


class DeadLetterStore:
    """The service's `dead_letters` table: every rejection whole, once per source
    position and content (a redelivered batch adds nothing; a new message at an offset
    a broker that lost its topics hands out again is kept)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def keep(self, rejections: list[Rejection], consumer: str) -> None:
        rows = []
        for r in rejections:
            record = r.record
            headers = [
                [k, base64.b64encode(bytes(v)).decode()]
                for k, v in record.headers or ()
                if not k.startswith(HEADER_PREFIX)
            ]
            rows.append(
                (
                    consumer,
                    record.topic,
                    record.partition,
                    record.offset,
                    record.key,
                    record.value,
                    json.dumps(headers),
                    r.reason,
                    r.detail[:2000],
                    len(record.value or b""),
                )
            )
        await self._pool.executemany(KEEP_SQL, rows)

    async def sweep(self, retention_days: int) -> None:
        """Forget what failed longer than `retention_days` ago."""
        deleted = await self._pool.execute(
            "DELETE FROM dead_letters WHERE failed_at < now() - make_interval(days => $1)",
            retention_days,
        )
        if deleted != "DELETE 0":
            log.info("dead letters past their retention: %s", deleted)


class DeadLetterPublisher:
    """Publishes rejections and waits for the broker's acknowledgement, retrying what a
    retry can mend."""

    def __init__(
        self,
        producer_factory: Callable[[], AIOKafkaProducer],
        service: str,
        *,
        max_message_bytes: int = 1_048_576,
        store: DeadLetterStore | None = None,
    ) -> None:
        self._store = store
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._service = service
        self._limit = max_message_bytes

    async def publish(self, rejections: list[Rejection], consumer: str) -> None:
        """Dead-letter what `consumer` (of this service) could not parse or apply."""
        if not rejections:
            return
        await self._keep(rejections, consumer)
        delay = 0.2
        while True:
            try:
                if self._producer is None:
                    producer = self._producer_factory()
                    await producer.start()
                    self._producer = producer
                letters = [dead_letter(r, self._service, consumer, self._limit) for r in rejections]
                await self._send_all(rejections, letters, consumer)
                break
            except (KafkaError, OSError) as exc:
                log.warning("dead-letter publish failed, retrying: %r", exc)
                await self.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for r in rejections:
            DEAD_LETTERS.labels(topic=r.record.topic, reason=r.reason).inc()
            log.warning(
                "dead-lettered %s[%d]@%d: %s: %s",
                r.record.topic,
                r.record.partition,
                r.record.offset,
                r.reason,
                r.detail[:300],
            )

    async def _keep(self, rejections: list[Rejection], consumer: str) -> None:
        """Into the service's table first, waiting out database outages."""
        if self._store is None:
            return
        delay = 0.2
        while True:
            try:
                await self._store.keep(rejections, consumer)
                return
            except TRANSIENT_ERRORS as exc:
                log.warning("keeping dead letters failed, retrying: %r", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _send_all(
        self, rejections: list[Rejection], letters: list[DeadLetter], consumer: str
    ) -> None:
        """Send every letter; one the broker finds too large (its limit is below ours) is
        sent again in its truncated form, once at most, since a retry cannot mend it."""
        assert self._producer is not None
        pending = [
            await self._producer.send(
                Topic.DEAD_LETTER, value=d.value, key=d.key, headers=d.headers
            )
            for d in letters
        ]
        results = await asyncio.gather(*pending, return_exceptions=True)
        for rejection, letter, result in zip(rejections, letters, results, strict=True):
            if isinstance(result, MessageSizeTooLargeError | RecordTooLargeError):
                smaller = truncated(rejection, self._service, consumer, self._limit // 16)
                log.error("dead letter of %d bytes refused as too large: %r", letter.size, result)
                await (
                    await self._producer.send(
                        Topic.DEAD_LETTER,
                        value=smaller.value,
                        key=smaller.key,
                        headers=smaller.headers,
                    )
                )
            elif isinstance(result, BaseException):
                raise result

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await producer.stop()
            except (KafkaError, OSError):
                log.debug("dead-letter producer stop failed", exc_info=True)
