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

A projection may go further (`recognise`, the analytics fold): it keeps the positions it
applied in the same transaction as what it applied, under its own key, and recognises a
message it applied by its position alone, with no row per event in `consumed_events`.

All of it rests on each source having one publisher at a time, publishing in order of
position on each partition:
- one relay per source publishes: the replica holding the source's PostgreSQL advisory
  lock (`outbox.OutboxRelay`), the others wait;
- it reads its source in order of position: the event store's notification ids are
  given and committed in order (its recorder locks the table for each insert), and the
  writers of an outbox table serialise their transactions (`outbox.TableSource`);
- its producer keeps the order on a partition (aiokafka sends one request per partition
  at a time, retries included), and the relay moves its own position only once the
  broker acknowledged the whole batch; a failed batch is sent again whole, in order;
- a relay taking over (the first lost its connection, and with it the lock) starts after
  the last batch acknowledged; what the first may still deliver of its batch comes after
  that point and in order too, so on each partition every position up to one handled
  was published before it (`tests/e2e/test_outbox_replicas.py` checks the takeover).
A message whose send failed for good while a later one of the same partition got through
(aiokafka gives up on a request after `request_timeout_ms` when a partition has no
leader that long) would break this; the relay then sends the whole batch again, and the
failed message, now behind a later position, would be taken for one handled.
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


APPLIED_SUFFIX = ":applied"
"""The key under which a projection keeps, in `consumer_positions`, the positions it
applied, written in the transaction of what it applied (`recognise`); the consumer's own
key is written after each batch."""


async def recognise(
    connection: asyncpg.Connection, consumer: str, records: Sequence[ConsumerRecord[Any, Any]]
) -> tuple[list[int], list[int]]:
    """Of `records` (one batch, in the transaction that applies it): the indices of those
    with a position after the one stored (new, to apply), and of those to recognise by
    event id instead (no position, or the first of their source and partition: nothing
    is stored for it under this key yet). The others were applied before.

    The stored positions are locked until the transaction ends and moved to the newest
    of the batch; a replica handling the same partition waits, then reads them moved
    (`INSERT ... ON CONFLICT DO UPDATE` works on the newest committed row, whatever its
    snapshot)."""
    by_key: dict[tuple[str, int], list[tuple[int, int, int]]] = {}
    by_id: list[int] = []
    for index, record in enumerate(records):
        found = position_of(record)
        if found is None:
            by_id.append(index)
            continue
        key = (found[0], record.partition)
        by_key.setdefault(key, []).append((record.offset, found[1], index))
    if not by_key:
        return [], by_id
    keys = sorted(by_key)
    rows = await connection.fetch(
        """INSERT INTO consumer_positions AS c (consumer, source, partition, position)
           SELECT $1, k.source, k.partition, 0
           FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS k(source, partition, n)
           ORDER BY k.n
           ON CONFLICT (consumer, source, partition) DO UPDATE SET position = c.position
           RETURNING source, partition, position""",
        consumer + APPLIED_SUFFIX,
        [source for source, _ in keys],
        [partition for _, partition in keys],
    )
    stored = {(row["source"], row["partition"]): row["position"] for row in rows}
    new: list[int] = []
    newest: dict[tuple[str, int], int] = {}
    for key in keys:
        held = stored[key]
        ordered = sorted(by_key[key])  # in the partition's order
        if held == 0:
            by_id += [index for _, _, index in ordered]
            newest[key] = max(position for _, position, _ in ordered)
            continue
        for _, position, index in ordered:
            if position > held:
                new.append(index)
                held = position
        if held > stored[key]:
            newest[key] = held
    if newest:
        await connection.execute(
            """UPDATE consumer_positions c SET position = greatest(c.position, p.position),
                   updated_at = now()
               FROM unnest($2::text[], $3::int[], $4::bigint[]) AS p(source, partition, position)
               WHERE c.consumer = $1 AND c.source = p.source AND c.partition = p.partition""",
            consumer + APPLIED_SUFFIX,
            [source for source, _ in newest],
            [partition for _, partition in newest],
            list(newest.values()),
        )
    return sorted(new), sorted(by_id)
