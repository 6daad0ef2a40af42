"""The writers of the analytics tables take turns: each (the fold, the RFM re-scoring, the
sweep, a segment definition, a rebuild's swap) holds one advisory lock for its
transaction, so conclusions and outbox positions are drawn in one order, and leaves a new
random writer token, by which the fold's memory (`cache`) knows whether anyone else
wrote since its last batch."""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg

LOCK_KEY = "crm-analytics-writers"


async def lock(connection: asyncpg.Connection) -> tuple[UUID, UUID]:
    """Serialise the writers of this schema's analytics tables and outbox (a rebuild's
    shadow schema has its own lock), and leave a new writer token (`claim`).
    Returns the previous token and the new one."""
    await take_turn(connection)
    return await claim(connection)


async def take_turn(connection: asyncpg.Connection) -> None:
    """Serialise the writers of this schema's analytics tables and outbox, leaving the
    writer token as it is: what a fold process writes of the customers of its own
    partitions, which no other process's memory holds."""
    await connection.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || $1, 0))", LOCK_KEY
    )


async def current(connection: asyncpg.Connection) -> UUID:
    """The writer token as the last committed writer left it."""
    token: UUID = await connection.fetchval("SELECT token FROM writer_token")
    return token


async def claim(connection: asyncpg.Connection) -> tuple[UUID, UUID]:
    """Leave a new writer token (under the writers' lock); returns (previous, new)."""
    new = uuid.uuid4()
    previous = await connection.fetchval(
        """UPDATE writer_token w SET token = $1 FROM (SELECT token FROM writer_token) old
           RETURNING old.token""",
        new,
    )
    return previous, new
