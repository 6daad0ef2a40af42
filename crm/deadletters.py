"""`crm dead-letters`: see what consumers could not handle, and send it again once fixed.

    crm dead-letters list [--reason TEXT] [--source TOPIC]
    crm dead-letters show PARTITION:OFFSET
    crm dead-letters replay PARTITION:OFFSET [--value-file FIXED.json]

`replay` publishes the message (or its corrected value) to the topic it came from, with
its original key and headers. A corrected value goes only to an inbound topic: the
internal topics carry only what their service signed (`contracts.signing`). Consumers
recognise an event they already applied, so a replay of something that did get applied
changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.signing import OWNERS
from contracts.topics import Topic
from services.runtime.messaging.deadletter import HEADER_PREFIX, TRUNCATED


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == HEADER_PREFIX + name:
                return value.decode(errors="replace")
        return ""

    def summary(self) -> dict[str, str]:
        source = f"{self.header('source_partition')}:{self.header('source_offset')}"
        return {
            "position": self.position,
            "source_topic": self.header("source_topic"),
            "source_position": source,
            "service": self.header("service"),
            "consumer": self.header("consumer"),
            "reason": self.header("reason"),
            "detail": self.header("detail"),
            "failed_at": self.header("failed_at"),
        }

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith(HEADER_PREFIX)]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dead-letters",
        help="list, show and replay dead-lettered messages",
        description="Messages consumers could not parse or apply wait on the dead-letter "
        f"topic {Topic.DEAD_LETTER} with the reason. Uses CRM_KAFKA_BOOTSTRAP_SERVERS.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="one line per dead letter")
    listing.add_argument("--reason", help="only those whose reason contains this text")
    listing.add_argument("--source", help="only those that came from this topic")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    show = actions.add_parser("show", help="one dead letter in full")
    show.add_argument("position", metavar="PARTITION:OFFSET")
    replay = actions.add_parser("replay", help="publish one again to the topic it came from")
    replay.add_argument("position", metavar="PARTITION:OFFSET")
    replay.add_argument(
        "--value-file", type=Path, help="publish this corrected value instead of the original"
    )
    parser.set_defaults(handler=run)


def parse_position(text: str) -> tuple[int, int]:
    partition, _, offset = text.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        raise SystemExit(f"expected PARTITION:OFFSET such as 0:17, got {text!r}")
    return int(partition), int(offset)


async def read_dead_letters(options: dict[str, Any]) -> list[DeadLetter]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False)
    try:
        await consumer.start()
        await consumer.topics()
        partitions = [
            TopicPartition(Topic.DEAD_LETTER, p)
            for p in sorted(consumer.partitions_for_topic(Topic.DEAD_LETTER) or ())
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                letters += [
                    DeadLetter(r.partition, r.offset, r.key, r.value, list(r.headers or ()))
                    for r in records
                ]
        return sorted(letters, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


async def publish(options: dict[str, Any], topic: str, letter: DeadLetter, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**options, acks="all")
    await producer.start()
    try:
        headers = [
            *letter.original_headers(),
            (HEADER_PREFIX + "replayed_from", letter.position.encode()),
        ]
        await producer.send_and_wait(topic, value=value, key=letter.key, headers=headers)
    finally:
        await producer.stop()


def describe_value(value: bytes | None) -> str:
    if value is None:
        return "(no value)"
    try:
        return json.dumps(json.loads(value), ensure_ascii=False, indent=2)
    except ValueError:
        text = value.decode(errors="replace")
        return text if text.isprintable() else value.hex(" ")


def run(args: argparse.Namespace) -> int:
    from services.runtime.messaging.kafka import connection_options
    from services.runtime.settings import ServiceSettings, load_settings

    settings = load_settings(ServiceSettings)
    options = connection_options(settings)
    letters = asyncio.run(read_dead_letters(options))
    if args.action == "list":
        selected = [
            d
            for d in letters
            if (not args.reason or args.reason in d.header("reason"))
            and (not args.source or d.header("source_topic") == args.source)
        ]
        for d in selected:
            if args.json:
                print(json.dumps(d.summary(), ensure_ascii=False))
            else:
                print(
                    f"{d.position:>8}  {d.header('failed_at')[:19]}  {d.header('source_topic')}"
                    f"  {d.header('reason')}: {d.header('detail')[:80]}"
                )
        if not args.json:
            print(f"{len(selected)} dead letters", file=sys.stderr)
        return 0
    wanted = parse_position(args.position)
    letter = next((d for d in letters if (d.partition, d.offset) == wanted), None)
    if letter is None:
        raise SystemExit(f"no dead letter at {args.position}")
    if args.action == "show":
        for key, value in letter.headers:
            print(f"{key}: {value.decode(errors='replace')}")
        print(f"key: {letter.key.decode(errors='replace') if letter.key else None}")
        print(describe_value(letter.value))
        return 0
    source = letter.header("source_topic")
    if not source:
        raise SystemExit(f"dead letter {letter.position} does not say where it came from")
    owner = OWNERS.get(source)
    if owner is not None and args.value_file:
        raise SystemExit(
            f"{source} carries only what the {owner} service signed: a corrected value "
            "cannot be replayed there. Replay the original once the consumer is fixed, or "
            f"correct the fact through the {owner} service's API"
        )
    if any(key == TRUNCATED for key, _ in letter.headers) and not args.value_file:
        raise SystemExit(
            f"dead letter {letter.position} keeps only the first bytes of a message of "
            f"{letter.header('original_bytes')} bytes; the whole message is at {source} "
            f"{letter.header('source_partition')}:{letter.header('source_offset')}"
            " (until the topic's retention)"
        )
    value = args.value_file.read_bytes() if args.value_file else letter.value or b""
    asyncio.run(publish(options, source, letter, value))
    print(f"replayed {letter.position} to {source}")
    return 0
