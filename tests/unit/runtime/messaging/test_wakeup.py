"""A relay's wake-up: a notification that arrives while the relay reads is not lost, the
end of the listening connection wakes it, and without either it polls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from services.runtime.messaging.wakeup import Wakeup, channel_of


class Connection:
    """What `Wakeup` uses of an asyncpg connection."""

    def __init__(self) -> None:
        self.listeners: dict[str, Callable[..., Any]] = {}
        self.on_end: list[Callable[..., Any]] = []

    async def add_listener(self, channel: str, callback: Callable[..., Any]) -> None:
        self.listeners[channel] = callback

    def add_termination_listener(self, callback: Callable[..., Any]) -> None:
        self.on_end.append(callback)

    def notify(self, channel: str) -> None:
        self.listeners[channel](self, 4242, channel, "")

    def end(self) -> None:
        for callback in self.on_end:
            callback(self)


async def waited(wakeup: Wakeup) -> float:
    started = time.monotonic()
    await wakeup.wait()
    return time.monotonic() - started


async def test_a_notification_while_reading_wakes_the_next_wait() -> None:
    connection = Connection()
    wakeup = Wakeup(fallback_seconds=30)
    await wakeup.listen(connection, channel_of("customer", "stored_events"))
    wakeup.clear()
    connection.notify("customer.stored_events")  # a commit while the relay reads
    async with asyncio.timeout(1):
        await wakeup.wait()


async def test_the_end_of_the_connection_wakes() -> None:
    connection = Connection()
    wakeup = Wakeup(fallback_seconds=30)
    await wakeup.listen(connection, "sales.stored_events")
    wakeup.clear()
    asyncio.get_running_loop().call_later(0.05, connection.end)
    async with asyncio.timeout(1):
        await wakeup.wait()


async def test_without_a_notification_it_polls() -> None:
    connection = Connection()
    wakeup = Wakeup(fallback_seconds=0.1)
    await wakeup.listen(connection, "sales.stored_events")
    wakeup.clear()
    assert 0.1 <= await waited(wakeup) < 1
    connection.notify("sales.stored_events")
    wakeup.clear()  # a notification read past does not wake the wait after it
    assert await waited(wakeup) >= 0.1
