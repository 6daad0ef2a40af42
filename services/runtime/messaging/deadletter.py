"""Dead-letter topic: what a consumer could not parse or apply, kept with the reason.

The dead-lettered message keeps the original key, value and headers byte for byte; the
reason and where it came from are added as headers prefixed `dlq.`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from contracts.topics import Topic
from services.runtime.metrics import DEAD_LETTERS

log = logging.getLogger(__name__)

HEADER_PREFIX = "dlq."


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


class DeadLetterPublisher:
    """Publishes rejections and waits for the broker's acknowledgement, retrying."""

    def __init__(self, producer_factory: Callable[[], AIOKafkaProducer], service: str) -> None:
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._service = service

    async def publish(self, rejections: list[Rejection], consumer: str) -> None:
        """Dead-letter what `consumer` (of this service) could not parse or apply."""
        if not rejections:
            return
        delay = 0.2
        while True:
            try:
                if self._producer is None:
                    producer = self._producer_factory()
                    await producer.start()
                    self._producer = producer
                pending = [
                    await self._producer.send(
                        Topic.DEAD_LETTER,
                        value=r.record.value,
                        key=r.record.key,
                        headers=dead_letter_headers(r, self._service, consumer),
                    )
                    for r in rejections
                ]
                await asyncio.gather(*pending)
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

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await producer.stop()
            except (KafkaError, OSError):
                log.debug("dead-letter producer stop failed", exc_info=True)
