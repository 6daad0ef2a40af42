"""Dead letters kept in PostgreSQL: whole, once per source position however often the
batch is redelivered, listed by `crm dead-letters`, and forgotten after the retention."""

from __future__ import annotations

import asyncpg
from aiokafka.structs import ConsumerRecord

from crm.deadletters import read_dead_letters
from local.embedded.postgres import EmbeddedPostgres
from services.runtime.messaging.deadletter import DeadLetterStore, Rejection
from services.runtime.storage.database import create_pool
from services.runtime.storage.migrator import DURABLE, migrate_all
from tests.support.infrastructure import new_database


def rejection(offset: int, value: bytes) -> Rejection:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic="crm.inbound.purchases.v1",
        partition=1,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"order-%d" % offset,
        value=value,
        checksum=None,
        serialized_key_size=7,
        serialized_value_size=len(value),
        headers=[("traceparent", b"00-ab"), ("dlq.reason", b"an earlier failure")],
    )
    return Rejection(record, "unknown currency", "currency: RMB is not ISO 4217")


async def test_kept_whole_once_and_forgotten_after_the_retention(
    postgres: EmbeddedPostgres,
) -> None:
    url = await new_database(postgres)
    await migrate_all(url, "sales", (DURABLE,))
    pool = await create_pool(url, "sales")
    try:
        store = DeadLetterStore(pool)
        huge = b'{"note": "' + b"x" * 5_000_000 + b'"}'
        for _ in range(2):  # a redelivered batch
            await store.keep([rejection(7, b'{"currency": "RMB"}'), rejection(8, huge)], "p")
        letters = await read_dead_letters(url)
        assert [(d.position, d.source_offset) for d in letters] == [("sales:1", 7), ("sales:2", 8)]
        assert letters[1].value == huge and letters[1].original_bytes == len(huge)
        assert letters[0].headers == [("traceparent", b"00-ab")]
        assert (letters[0].reason, letters[0].consumer) == ("unknown currency", "p")

        connection = await asyncpg.connect(url)
        try:
            await connection.execute(
                "UPDATE sales.dead_letters SET failed_at = now() - interval '31 days' "
                "WHERE source_offset = 7"
            )
        finally:
            await connection.close()
        await store.sweep(retention_days=30)
        assert [d.source_offset for d in await read_dead_letters(url)] == [8]
    finally:
        await pool.close()


async def test_another_message_at_a_position_kept_before_is_kept_too(
    postgres: EmbeddedPostgres,
) -> None:
    """A broker that lost its topics (the in-memory broker of `crm up`, started again)
    hands out the same offsets again: a new message rejected at a position a dead letter
    was kept for before is another dead letter, not a redelivery."""
    url = await new_database(postgres)
    await migrate_all(url, "sales", (DURABLE,))
    pool = await create_pool(url, "sales")
    try:
        store = DeadLetterStore(pool)
        before = rejection(3, b'{"order_id": "SO-1", "currency": "RMB"}')
        await store.keep([before], "p")
        # the broker starts again, empty; offsets start again at 0
        after = rejection(3, b'{"order_id": "SO-2", "currency": "RMB"}')
        for _ in range(2):  # and the new batch is redelivered too
            await store.keep([after], "p")
        letters = await read_dead_letters(url)
        assert [d.value for d in letters] == [before.record.value, after.record.value]
    finally:
        await pool.close()
