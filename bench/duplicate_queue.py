"""The queue of possible duplicates as the directory projection keeps it:
`crm bench duplicate-queue --customers 100000`.

In one process: starts an embedded PostgreSQL, creates the directory's tables
(`CustomerDirectory.create_tables`) and applies `customers` registrations (the synthetic
directory of `crm bench duplicates`, with its planted duplicates) through
`CustomerDirectory.apply`, a batch of 1000 per transaction as the consumer applies them;
then again into a fresh database with the queue's upkeep left out, as the baseline.
Prints registrations per second of both, the queue's size and how many planted
duplicates it holds, and the EXPLAIN ANALYZE of a search by phone and of the queue's
first page, which must use their indexes.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import asyncpg

from bench.duplicates import directory
from contracts import customer as contract
from contracts.envelope import EventEnvelope
from local.embedded.postgres import EmbeddedPostgres
from services.customer import duplicate_queue
from services.customer.projections import CustomerDirectory
from services.customer.queries import DirectoryQuery
from services.runtime.storage.database import create_pool, ensure_database

SCHEMA = "customer"
BATCH = 1000
NAMESPACE = uuid.UUID("0f5e7c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b")
MOMENT = datetime(2026, 11, 1, tzinfo=UTC)


def _id(ref: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ref)


def registrations(rows: list[dict[str, Any]]) -> list[EventEnvelope[Any]]:
    events = []
    for index, row in enumerate(rows):
        payload = contract.CustomerRegistered.model_validate(
            {
                "name": row["name"],
                "kind": "business",
                "contacts": [
                    {**c, "contact_id": f"c{n}", "title": None}
                    for n, c in enumerate(row["contacts"])
                ],
                "addresses": [{**a, "label": "office", "country": "CN"} for a in row["addresses"]],
            }
        )
        customer_id = _id(row["customer_id"])
        moment = MOMENT + timedelta(seconds=index)
        events.append(
            EventEnvelope[contract.CustomerRegistered](
                event_id=uuid.uuid5(customer_id, "1"),
                event_type=payload.event_type,
                schema_version=payload.schema_version,
                customer_id=customer_id,
                aggregate_id=customer_id,
                aggregate_version=1,
                occurred_at=moment,
                recorded_at=moment,
                producer="bench",
                payload=payload,
            )
        )
    return events


async def apply_all(pool: asyncpg.Pool, events: list[EventEnvelope[Any]]) -> float:
    """Seconds to apply `events` a batch per transaction."""
    projection = CustomerDirectory()
    async with pool.acquire() as connection:
        await projection.create_tables(connection)
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        async with pool.acquire() as connection, connection.transaction():
            await projection.apply(connection, events[start : start + BATCH])
    return time.perf_counter() - started


async def explain(pool: asyncpg.Pool, sql: str, *values: Any) -> str:
    rows = await pool.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", *values)
    return "\n".join(r[0] for r in rows)


async def in_database(
    postgres: EmbeddedPostgres, name: str, work: Callable[[asyncpg.Pool], Awaitable[Any]]
) -> Any:
    url = postgres.dsn(name)
    await ensure_database(url)
    pool = await create_pool(url, SCHEMA, max_size=2)
    try:
        return await work(pool)
    finally:
        await pool.close()


async def measure(postgres: EmbeddedPostgres, customers: int, planted: int) -> None:
    rows, truth = directory(customers, planted)
    events = registrations(rows)

    async def with_queue(pool: asyncpg.Pool) -> None:
        seconds = await apply_all(pool, events)
        print(f"with the queue:    {customers / seconds:,.0f} registrations/s ({seconds:.1f} s)")
        pairs = {
            frozenset((r["customer_a"], r["customer_b"]))
            for r in await pool.fetch("SELECT customer_a, customer_b FROM duplicate_pairs")
        }
        planted_pairs = {frozenset(_id(ref) for ref in pair) for pair in truth}
        print(
            f"queue:             {len(pairs)} pairs, {len(pairs & planted_pairs)} of the "
            f"{len(planted_pairs)} planted duplicates"
        )
        await pool.execute("ANALYZE")
        phone = rows[len(rows) // 2]["contacts"][0]["phones"][0].replace("+86 ", "")
        where = DirectoryQuery(name=phone).where()
        sql = (
            f"SELECT customer_id FROM customer_directory WHERE {where.sql} "
            f"ORDER BY name, customer_id LIMIT 50"
        )
        print(f"\nEXPLAIN ANALYZE of the search for {phone!r}:")
        print(await explain(pool, sql, *where.values))
        print("\nEXPLAIN ANALYZE of the queue's first page:")
        page = (
            "SELECT customer_a, customer_b FROM duplicate_pairs "
            "ORDER BY rank, customer_a, customer_b LIMIT 50"
        )
        print(await explain(pool, page))

    async def without_queue(pool: asyncpg.Pool) -> None:
        with mock.patch.object(duplicate_queue, "refresh", _nothing):
            seconds = await apply_all(pool, events)
        print(f"\nwithout the queue: {customers / seconds:,.0f} registrations/s ({seconds:.1f} s)")

    print(f"{customers} registrations ({planted} planted duplicates), {BATCH} per transaction")
    await in_database(postgres, "crm_bench_queue", with_queue)
    await in_database(postgres, "crm_bench_no_queue", without_queue)


async def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


def run_duplicate_queue(customers: int, planted: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="crm-bench-queue-") as scratch,
        EmbeddedPostgres(Path(scratch) / "postgres") as postgres,
    ):
        asyncio.run(measure(postgres, customers, planted))
