"""Durable tables change by numbered migrations, each applied once however many replicas
start together, and tables made before migrations were numbered are adopted."""

from __future__ import annotations

import asyncio

import asyncpg

from local.embedded.postgres import EmbeddedPostgres
from services.runtime.storage.migrator import DURABLE, KEYRING, migrate_all
from tests.support.infrastructure import new_database


async def test_replicas_starting_together_apply_each_migration_once(
    postgres: EmbeddedPostgres,
) -> None:
    url = await new_database(postgres)
    applied = await asyncio.gather(
        *(migrate_all(url, "sales", (DURABLE, KEYRING)) for _ in range(4))
    )
    names = sorted(f"{m.number}:{m.name}" for run in applied for m in run)
    expected = sorted(
        [f"{m.number}:{m.name}" for m in DURABLE.migrations()]
        + [f"{m.number}:{m.name}" for m in KEYRING.migrations()]
    )
    assert names == expected, "each migration ran exactly once across the four"
    assert await migrate_all(url, "sales", (DURABLE, KEYRING)) == []
    connection = await asyncpg.connect(url)
    try:
        ledger = await connection.fetch(
            "SELECT migration_set, number FROM sales.schema_migrations ORDER BY 1, 2"
        )
        keys = await connection.fetchval("SELECT count(*) FROM crm_keys.customer_keys")
    finally:
        await connection.close()
    assert [(r["migration_set"], r["number"]) for r in ledger] == [
        ("runtime", m.number) for m in DURABLE.migrations()
    ]
    assert keys == 0


async def test_tables_made_before_migrations_were_numbered_are_adopted(
    postgres: EmbeddedPostgres,
) -> None:
    """A database whose services created the durable tables themselves (before this
    change) keeps its rows: the first migration finds the tables there."""
    url = await new_database(postgres)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            """CREATE SCHEMA customer;
               CREATE TABLE customer.outbox_position (
                   topic text PRIMARY KEY, position bigint NOT NULL,
                   updated_at timestamptz NOT NULL DEFAULT now());
               INSERT INTO customer.outbox_position (topic, position)
                   VALUES ('crm.customer.events.v1', 42);"""
        )
        await migrate_all(url, "customer", (DURABLE,))
        kept = await connection.fetchval("SELECT position FROM customer.outbox_position")
    finally:
        await connection.close()
    assert kept == 42
