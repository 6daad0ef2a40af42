"""How far a consumer got through each partition, in the positions of the relays that
published the messages.

Every message a relay publishes carries its source and its position there (`crm-position:
<source>@<n>`: the notification id in the event store, or the row of an outbox table),
and a relay publishes in order of position. A consumer reads each partition in order, so
once it has handled a message of position P from a source on a partition, every message
of that source on that partition up to P has been handled. After each batch the consumer
keeps, per source and partition, the highest position handled (`consumer_positions`,
written after the batch was handled: it can lag behind what was done, never run ahead).

So a message published again whose position is at most the one kept is skipped before
it is read: its signature is checked, nothing is parsed, no database is asked. After a
broker lost its topics (the in-memory local one), every relay publishes its history again,
in order, and the consumers that had handled it keep pace with the relays instead of
reading the history a second time; start-up no longer waits for them to.

Inbound messages from other systems carry no position and are never skipped here (they
are recognised by the sender's ids, as before).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka.structs import ConsumerRecord

HEADER = "crm-position"


def position_header(source: str, position: int) -> tuple[str, bytes]:
    return (HEADER, f"{source}@{position}".encode())


def position_of(record: ConsumerRecord[Any, Any]) -> tuple[str, int] | None:
    """The relay source and position a message carries; None without a valid one."""
    for key, value in record.headers or ():
        if key == HEADER:
            source, _, number = bytes(value).decode("utf-8", "replace").rpartition("@")
            if source and number.isdigit() and len(number) <= 18:
                return source, int(number)
            return None
    return None


class ConsumerPositions:
    """One consumer's positions, in memory and in its service's `consumer_positions`."""

    def __init__(self, pool: asyncpg.Pool, consumer: str) -> None:
        self._pool = pool
        self._consumer = consumer
        self._handled: dict[tuple[str, int], int] = {}

    async def load(self) -> None:
        """Read what this consumer handled (by any replica, before any restart)."""
        rows = await self._pool.fetch(
            "SELECT source, partition, position FROM consumer_positions WHERE consumer = $1",
            self._consumer,
        )
        for row in rows:
            key = (row["source"], row["partition"])
            self._handled[key] = max(self._handled.get(key, 0), row["position"])

    def already_handled(self, record: ConsumerRecord[Any, Any]) -> bool:
        """Whether the message was published before and handled then."""
        found = position_of(record)
        if found is None:
            return False
        source, position = found
        return position <= self._handled.get((source, record.partition), 0)

    async def advance(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Note that `records` were handled (call once they are)."""
        newest: dict[tuple[str, int], int] = {}
        for record in records:
            found = position_of(record)
            if found is None:
                continue
            key = (found[0], record.partition)
            newest[key] = max(newest.get(key, 0), found[1])
        moved = {k: p for k, p in newest.items() if p > self._handled.get(k, 0)}
        if not moved:
            return
        await self._pool.execute(
            """INSERT INTO consumer_positions (consumer, source, partition, position)
               SELECT $1, p.source, p.partition, p.position
               FROM unnest($2::text[], $3::int[], $4::bigint[])
                    AS p(source, partition, position)
               ON CONFLICT (consumer, source, partition) DO UPDATE
               SET position = greatest(consumer_positions.position, excluded.position),
                   updated_at = now()""",
            self._consumer,
            [source for source, _ in moved],
            [partition for _, partition in moved],
            list(moved.values()),
        )
        for key, position in moved.items():
            self._handled[key] = max(self._handled.get(key, 0), position)
