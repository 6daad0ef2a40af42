"""Reading and writing topics with a plain Kafka client, as another system would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord


async def read_topic(
    bootstrap_servers: str, topic: str, *, expect: int, timeout: float = 30.0
) -> list[ConsumerRecord[Any, Any]]:
    """Every record of `topic` from the beginning, once at least `expect` have arrived."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
            if len(records) >= expect:
                # drain what else is already there, then stop
                await asyncio.sleep(0.3)
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
                break
    finally:
        await consumer.stop()
    return records


async def publish_raw(
    bootstrap_servers: str, topic: str, messages: Sequence[tuple[bytes | None, bytes | None]]
) -> None:
    """Publish (key, value) pairs in order and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


def header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


async def publish_json(
    bootstrap_servers: str, topic: str, messages: Sequence[tuple[str, dict[str, Any] | bytes]]
) -> None:
    """Publish as another system would: JSON values (bytes are sent as they are), keyed."""
    await publish_raw(
        bootstrap_servers,
        topic,
        [
            (key.encode(), value if isinstance(value, bytes) else orjson.dumps(value))
            for key, value in messages
        ],
    )
