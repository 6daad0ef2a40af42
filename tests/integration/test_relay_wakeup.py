"""At rest an outbox relay waits for a PostgreSQL notification, not for its next poll: a
command's event reaches its topic at once though the relay would poll only every 30 s,
and after the connection it listens on is killed, it reconnects and publishes again."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from contracts.topics import Topic
from services.analytics.migrations import MIGRATIONS
from services.runtime.messaging.outbox import TableSource
from services.runtime.metrics import OUTBOX_BACKLOG
from services.runtime.service import ServiceRuntime
from services.runtime.storage.migrator import DURABLE, migrate_all
from tests.support.auth import bearer
from tests.support.infrastructure import Infrastructure, new_database
from tests.support.kafka import read_topic
from tests.support.routes import DEFINITIONS, app_of
from tests.support.serving import served_settings, serving
from tests.support.waiting import eventually

ADMIN = bearer("administrator", "zhao.lei")
FALLBACK_POLL_SECONDS = 30.0
"""Longer than any wait below: what arrives in time was not found by polling."""


def backlog() -> float:
    return float(OUTBOX_BACKLOG.labels(topic=Topic.CUSTOMER)._value.get())


async def relay_idle_after(infra: Infrastructure, published: int) -> None:
    """Until `published` events are on the topic and the relay has since found nothing
    more to publish (it sets its backlog to 0 after such a read, then waits)."""
    await read_topic(infra.bootstrap_servers, Topic.CUSTOMER, expect=published)
    await eventually(lambda: backlog() == 0, describe="the relay waiting, with nothing to do")


async def test_a_relay_at_rest_is_woken_by_the_commit_and_by_losing_its_connection(
    infra: Infrastructure,
) -> None:
    settings = served_settings("customer", infra, relay_poll_interval_seconds=FALLBACK_POLL_SECONDS)
    app = app_of(DEFINITIONS["customer"], settings)
    async with serving(app) as client:
        runtime: ServiceRuntime = app.state.runtime
        assert runtime.relay is not None

        async def register(name: str) -> float:
            answer = await client.post(
                "/customers", json={"name": name, "kind": "consumer"}, headers=ADMIN
            )
            assert answer.status_code == 201, answer.text
            return time.monotonic()

        await register("唤醒 甲")
        await relay_idle_after(infra, 1)

        committed = await register("唤醒 乙")
        await read_topic(infra.bootstrap_servers, Topic.CUSTOMER, expect=2, timeout=5)
        assert time.monotonic() - committed < 1.0
        await relay_idle_after(infra, 2)

        connection = await asyncpg.connect(infra.database_url)
        try:
            # the relay's connection: the one holding its leadership lock
            killed = await connection.fetch(
                """SELECT pg_terminate_backend(pid) FROM pg_locks
                   WHERE locktype = 'advisory' AND granted AND objsubid = 1
                   AND (classid::bigint << 32 | objid::bigint) = hashtextextended($1, 0)""",
                f"crm-outbox:customer:{Topic.CUSTOMER}",
            )
            assert [row[0] for row in killed] == [True]
        finally:
            await connection.close()
        await eventually(lambda: runtime.relay is not None and not runtime.relay.is_leader)

        committed = await register("唤醒 丙")
        await read_topic(infra.bootstrap_servers, Topic.CUSTOMER, expect=3, timeout=15)
        assert time.monotonic() - committed < FALLBACK_POLL_SECONDS / 2
        await eventually(lambda: runtime.relay is not None and runtime.relay.is_leader)


async def test_adding_to_an_outbox_table_notifies_its_relays_channel_at_commit(
    infra: Infrastructure,
) -> None:
    url = await new_database(infra.postgres)
    await migrate_all(url, "analytics", (DURABLE, MIGRATIONS))
    source = TableSource("outbox", name="conclusions")
    notified: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(url)
    writer = await asyncpg.connect(url, server_settings={"search_path": "analytics"})
    try:
        await listener.add_listener(
            source.channel("analytics"), lambda *args: notified.put_nowait(args[2])
        )
        async with writer.transaction():
            await writer.execute(
                "INSERT INTO outbox (envelope) SELECT e FROM unnest($1::bytea[]) AS u(e)",
                [b"one", b"two", b"three"],
            )
            await listener.execute("SELECT 1")  # would bring a notification sent already
            assert notified.empty(), "notified before the commit"
        async with asyncio.timeout(5):
            await notified.get()
        await writer.execute("SELECT 1")  # a round trip: a second notification would be here
        await listener.execute("SELECT 1")
        assert notified.empty(), "one notification per transaction"
    finally:
        await listener.close()
        await writer.close()
