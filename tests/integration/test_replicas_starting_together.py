"""Replicas of services starting together on a new server each make what is missing (the
database, the event store's tables) or find it made; none fails on another making it.
(Migrations: `test_migrator.py`.)"""

from __future__ import annotations

import asyncio
import uuid

from local.embedded.postgres import EmbeddedPostgres
from services.runtime.storage.database import ensure_database
from services.runtime.storage.eventstore import EventSourcedApplication, open_event_store
from services.runtime.storage.migrator import DURABLE, migrate_all
from tests.support.database import fetchval
from tests.support.infrastructure import new_database

REPLICAS = 6


async def test_replicas_starting_together_open_the_event_store(postgres: EmbeddedPostgres) -> None:
    url = await new_database(postgres)
    await migrate_all(url, "sales", (DURABLE,))
    opened = await asyncio.gather(
        *(open_event_store(EventSourcedApplication, url, "sales") for _ in range(REPLICAS)),
        return_exceptions=True,
    )
    failures = [repr(result) for result in opened if isinstance(result, BaseException)]
    for result in opened:
        if isinstance(result, EventSourcedApplication):
            result.close()
    assert failures == [], "every replica opened the event store"
    tables = await fetchval(
        url,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'sales' AND tablename LIKE '%events'",
    )
    assert tables >= 1, "the event store's tables were made"


async def test_replicas_starting_together_make_the_database(postgres: EmbeddedPostgres) -> None:
    url = postgres.dsn(f"crm_{uuid.uuid4().hex[:10]}")
    made = await asyncio.gather(
        *(ensure_database(url) for _ in range(REPLICAS)), return_exceptions=True
    )
    assert [repr(result) for result in made if result is not None] == []
    assert await fetchval(url, "SELECT current_database()") == url.rsplit("/", 1)[1]
