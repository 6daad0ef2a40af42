"""Reading and writing topics with a plain Kafka client, as another system would."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from contracts.signing import HEADER as SIGNATURE_HEADER
from contracts.signing import OWNERS, Signer
from local.launcher import session_signing_key
from tests.support.waiting import eventually


async def read_topic(
    bootstrap_servers: str, topic: str, *, expect: int, timeout: float = 30.0
) -> list[ConsumerRecord[Any, Any]]:
    """Every record of `topic` from the beginning, once at least `expect` have arrived:
    all that the topic held at that moment (so a record beyond `expect`, such as a
    repeat, is read too). Fails when fewer than `expect` arrive within `timeout`."""
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

    async def fetched() -> bool:
        for batch in (await consumer.getmany(timeout_ms=200)).values():
            records.extend(batch)
        return len(records) >= expect

    try:
        # getmany waits up to 200 ms for records itself: no pause between two checks
        await eventually(
            fetched, timeout=timeout, interval=0, describe=f"{expect} records on {topic}"
        )
        ends = await consumer.end_offsets(list(consumer.assignment()))
        await read_to_the_end(consumer, ends, records, timeout=timeout)
    finally:
        await consumer.stop()
    return records


async def read_to_the_end(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    records: list[ConsumerRecord[Any, Any]],
    *,
    timeout: float = 30.0,
) -> None:
    """Add to `records` what `consumer` reads until it stands at `ends` on every
    partition."""

    async def at_the_end() -> bool:
        behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
        if behind:
            for batch in (await consumer.getmany(*behind, timeout_ms=200)).values():
                records.extend(batch)
        return not behind

    # getmany waits up to 200 ms for records itself: no pause between two checks
    await eventually(
        at_the_end, timeout=timeout, interval=0, describe="every partition read to its end"
    )


def owner_signatures(topic: str, values: Sequence[bytes]) -> list[list[tuple[str, bytes]]]:
    """The headers with which the service owning `topic` would sign `values` (none on an
    inbound topic)."""
    owner = OWNERS.get(topic)
    if owner is None:
        return [[] for _ in values]
    signer = Signer.from_base64(session_signing_key(owner))
    return [[(SIGNATURE_HEADER, h)] for h in signer.sign(topic, values)]


async def publish_raw(
    bootstrap_servers: str,
    topic: str,
    messages: Sequence[tuple[bytes | None, bytes | None]],
    *,
    signed: bool = True,
    pipelined: bool = False,
) -> None:
    """Publish (key, value) pairs in order and wait for every acknowledgement. On an
    internal topic the messages are signed as its owning service signs them (with the key
    the launcher gives that service), unless `signed` is False: a forgery. `pipelined`
    sends them all before waiting for the acknowledgements (batched by the producer):
    thousands of messages in seconds."""
    values = [value or b"" for _, value in messages]
    signatures = owner_signatures(topic, values) if signed else [[] for _ in messages]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        **({"linger_ms": 20} if pipelined else {}),
    )
    await producer.start()
    try:
        sent = []
        for (key, value), headers in zip(messages, signatures, strict=True):
            if pipelined:
                sent.append(await producer.send(topic, value=value, key=key, headers=headers))
            else:
                await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


async def publish_json(
    bootstrap_servers: str,
    topic: str,
    messages: Sequence[tuple[str, dict[str, Any] | bytes]],
    *,
    pipelined: bool = False,
) -> None:
    """Publish as another system would: JSON values (bytes are sent as they are), keyed."""
    await publish_raw(
        bootstrap_servers,
        topic,
        [
            (key.encode(), value if isinstance(value, bytes) else orjson.dumps(value))
            for key, value in messages
        ],
        pipelined=pipelined,
    )
