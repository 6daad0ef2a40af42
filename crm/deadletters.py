"""`crm dead-letters`: see what consumers could not handle, and send it again once fixed.

    crm dead-letters list [--reason TEXT] [--source TOPIC] [--service NAME] [--json]
    crm dead-letters show SERVICE:ID
    crm dead-letters replay SERVICE:ID [--value-file FIXED.json]

The dead letters are read from where each service keeps them whole, its `dead_letters`
table in PostgreSQL (`CRM_DATABASE_URL`), so they outlive a broker that loses its topics;
the dead-letter topic carries the same for other systems to watch. `replay` publishes the
message (or its corrected value) to the topic it came from, with its original key and
headers, and notes when it was replayed. A corrected value goes only to an inbound
topic: the internal topics carry only what their service signed (`contracts.signing`).
Consumers recognise an event they already applied, so a replay of something that did get
applied changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from contracts.signing import OWNERS
from contracts.topics import Topic
from services.runtime.messaging.deadletter import HEADER_PREFIX


@dataclass(frozen=True)
class DeadLetter:
    """One kept dead letter of one service."""

    service: str
    letter_id: int
    consumer: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str
    detail: str
    original_bytes: int
    failed_at: datetime
    replayed_at: datetime | None

    @property
    def position(self) -> str:
        return f"{self.service}:{self.letter_id}"

    def summary(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "source_topic": self.source_topic,
            "source_position": f"{self.source_partition}:{self.source_offset}",
            "service": self.service,
            "consumer": self.consumer,
            "reason": self.reason,
            "detail": self.detail,
            "failed_at": self.failed_at.isoformat(),
            "replayed_at": self.replayed_at.isoformat() if self.replayed_at else None,
        }


LETTERS_SQL = """
SELECT letter_id, consumer, source_topic, source_partition, source_offset, key, value,
       headers, reason, detail, original_bytes, failed_at, replayed_at
FROM "{schema}".dead_letters ORDER BY letter_id
"""


async def read_dead_letters(database_url: str) -> list[DeadLetter]:
    """Every service's kept dead letters, oldest first within each service."""
    connection = await asyncpg.connect(database_url)
    try:
        schemas = await connection.fetch(
            """SELECT table_schema FROM information_schema.tables
               WHERE table_name = 'dead_letters' ORDER BY table_schema"""
        )
        letters: list[DeadLetter] = []
        for (schema,) in schemas:
            for row in await connection.fetch(LETTERS_SQL.format(schema=schema)):
                headers = [(k, base64.b64decode(v)) for k, v in json.loads(row["headers"])]
                letters.append(DeadLetter(schema, **{**dict(row), "headers": headers}))
        return letters
    finally:
        await connection.close()


async def mark_replayed(database_url: str, letter: DeadLetter) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            f'UPDATE "{letter.service}".dead_letters SET replayed_at = now() WHERE letter_id = $1',
            letter.letter_id,
        )
    finally:
        await connection.close()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dead-letters",
        help="list, show and replay dead-lettered messages",
        description="Messages consumers could not parse or apply wait on the dead-letter "
        f"tables (and on the topic {Topic.DEAD_LETTER}) with the reason. Uses "
        "CRM_DATABASE_URL, and CRM_KAFKA_BOOTSTRAP_SERVERS to replay.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="one line per dead letter")
    listing.add_argument("--reason", help="only those whose reason contains this text")
    listing.add_argument("--source", help="only those that came from this topic")
    listing.add_argument("--service", help="only those of this service")
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    show = actions.add_parser("show", help="one dead letter in full")
    show.add_argument("position", metavar="SERVICE:ID")
    replay = actions.add_parser("replay", help="publish one again to the topic it came from")
    replay.add_argument("position", metavar="SERVICE:ID")
    replay.add_argument(
        "--value-file", type=Path, help="publish this corrected value instead of the original"
    )
    parser.set_defaults(handler=run)


def parse_position(text: str) -> tuple[str, int]:
    service, _, letter_id = text.partition(":")
    if not (service and letter_id.isdigit()):
        raise SystemExit(f"expected SERVICE:ID such as sales:17, got {text!r}")
    return service, int(letter_id)


async def publish(options: dict[str, Any], topic: str, letter: DeadLetter, value: bytes) -> None:
    """`value` on `topic` with the letter's key and original headers, marked replayed."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        **options, acks="all", max_request_size=max(1_048_576, len(value) + 65_536)
    )
    await producer.start()
    try:
        headers = [
            *letter.headers,
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
    letters = asyncio.run(read_dead_letters(settings.database_dsn))
    if args.action == "list":
        selected = [
            d
            for d in letters
            if (not args.reason or args.reason in d.reason)
            and (not args.source or d.source_topic == args.source)
            and (not args.service or d.service == args.service)
        ]
        for d in selected:
            if args.json:
                print(json.dumps(d.summary(), ensure_ascii=False))
            else:
                replayed = "  (replayed)" if d.replayed_at else ""
                print(
                    f"{d.position:>16}  {d.failed_at.isoformat()[:19]}  {d.source_topic}"
                    f"  {d.reason}: {d.detail[:80]}{replayed}"
                )
        if not args.json:
            print(f"{len(selected)} dead letters", file=sys.stderr)
        return 0
    wanted = parse_position(args.position)
    letter = next((d for d in letters if (d.service, d.letter_id) == wanted), None)
    if letter is None:
        raise SystemExit(f"no dead letter {args.position}")
    if args.action == "show":
        for name, value in letter.summary().items():
            print(f"{name}: {value}")
        print(f"size: {letter.original_bytes} bytes")
        for key, value in letter.headers:
            print(f"header {key}: {value.decode(errors='replace')}")
        print(f"key: {letter.key.decode(errors='replace') if letter.key else None}")
        print(describe_value(letter.value))
        return 0
    source = letter.source_topic
    owner = OWNERS.get(source)
    if owner is not None and args.value_file:
        raise SystemExit(
            f"{source} carries only what the {owner} service signed: a corrected value "
            "cannot be replayed there. Replay the original once the consumer is fixed, or "
            f"correct the fact through the {owner} service's API"
        )
    value = args.value_file.read_bytes() if args.value_file else letter.value or b""
    asyncio.run(publish(connection_options(settings), source, letter, value))
    asyncio.run(mark_replayed(settings.database_dsn, letter))
    print(f"replayed {letter.position} to {source}")
    return 0
