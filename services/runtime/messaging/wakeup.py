"""What wakes an outbox relay at rest: a PostgreSQL notification from whoever wrote to its
source, or else a slow fallback poll.

Every writer of a relay's source notifies the source's channel (`channel_of`) in the same
transaction as what it writes: the event store's recorder (`storage/idempotent_commits.py`)
and, for an outbox table, a trigger the service's migrations put on it
(`notify_relay()`, `storage/migrations/0009_notify_relay.sql`). PostgreSQL delivers a
notification only once that transaction has committed, so a relay that reads after being
woken sees what woke it.

The relay listens on the connection that holds its leadership lock: a replica that takes
the lock over listens from then on, and reads once before it first waits, so nothing
written while no one listened waits for the next notification. A notification lost with
a dropped connection only delays: the drop itself wakes the relay (which then reconnects
and reads), and the fallback poll (`relay_poll_interval_seconds`) reads anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg


def channel_of(schema: str, table: str) -> str:
    """The channel that writers of `schema`.`table` notify (as `notify_relay()` names it)."""
    return f"{schema}.{table}"


class Wakeup:
    """Set by a notification on a channel, or by the loss of the connection that listens."""

    def __init__(self, fallback_seconds: float) -> None:
        self._fallback = fallback_seconds
        self._event = asyncio.Event()

    async def listen(self, connection: asyncpg.Connection, channel: str) -> None:
        """From now on, a notification on `channel` or the end of `connection` wakes."""
        connection.add_termination_listener(self._connection_ended)
        await connection.add_listener(channel, self._notified)

    def clear(self) -> None:
        """Forget earlier wake-ups: call before reading the source, so that a notification
        arriving while it reads wakes the next `wait`."""
        self._event.clear()

    async def wait(self) -> None:
        """Until woken, or the fallback poll is due."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._fallback):
                await self._event.wait()

    def _notified(self, *_: Any) -> None:
        self._event.set()

    def _connection_ended(self, *_: Any) -> None:
        self._event.set()
