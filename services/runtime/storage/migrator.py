"""Numbered migrations of the tables that no event can give back.

Projections are derived: when a projection's shape changes it is rebuilt from its topics
(its shape version says when, see `messaging/projection.py`). The durable tables hold what
no event gives back — the audit log, outboxes and how far their relays got, the record
of consumed events, the projections' shape versions, the database generation and the
customers' keys — so their shape changes by migration: numbered SQL files
(`0001_what_it_does.sql`) in a package, each applied once, in order, recorded in
`schema_migrations` of the schema it applies to.

A service applies its migrations when it starts, before anything else touches its
tables; replicas starting together take turns (one advisory lock per schema and set), so
each migration runs once. A migration never edits a file already released: a change is
a new file with the next number.

The runner is this module, on asyncpg like the rest of the services: for a handful of
tables, a migration framework (Alembic) would add SQLAlchemy and a second, synchronous
connection path with its own TLS settings.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    migration_set text NOT NULL,
    number integer NOT NULL,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (migration_set, number)
)
"""


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    sql: str


@dataclass(frozen=True)
class MigrationSet:
    """The migrations in package `package`, applied to `schema`, or to the service's own
    schema when `schema` is None."""

    name: str
    package: str
    schema: str | None = None

    def migrations(self) -> list[Migration]:
        found = []
        for entry in resources.files(self.package).iterdir():
            match = FILE_NAME.match(entry.name)
            if match:
                found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
        found.sort(key=lambda m: m.number)
        numbers = [m.number for m in found]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"migrations of {self.name} are not numbered 1..n: {numbers}")
        return found


DURABLE = MigrationSet("runtime", "services.runtime.storage.migrations")
"""The durable tables every service has in its own schema."""

KEYRING = MigrationSet("keyring", "services.runtime.privacy.migrations", schema="crm_keys")
"""The customers' keys, shared by every service."""


async def migrate(
    connection: asyncpg.Connection, migration_set: MigrationSet, service_schema: str
) -> list[Migration]:
    """Apply what `migration_set` has and the schema has not had yet; the ones applied."""
    schema = migration_set.schema or service_schema
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"crm-migrations:{schema}:{migration_set.name}",
        )
        await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await connection.execute(f'SET LOCAL search_path TO "{schema}"')
        await connection.execute(LEDGER_DDL)
        applied = {
            row["number"]
            for row in await connection.fetch(
                "SELECT number FROM schema_migrations WHERE migration_set = $1",
                migration_set.name,
            )
        }
        pending = [m for m in migration_set.migrations() if m.number not in applied]
        for migration in pending:
            log.info(
                "applying migration %s %04d %s",
                migration_set.name,
                migration.number,
                migration.name,
            )
            await connection.execute(migration.sql)
            await connection.execute(
                "INSERT INTO schema_migrations (migration_set, number, name) VALUES ($1, $2, $3)",
                migration_set.name,
                migration.number,
                migration.name,
            )
    return pending


async def migrate_all(
    dsn: str, service_schema: str, migration_sets: tuple[MigrationSet, ...]
) -> list[Migration]:
    """Apply every set, in order, on one connection of its own."""
    connection = await asyncpg.connect(dsn)
    try:
        applied = []
        for migration_set in migration_sets:
            applied += await migrate(connection, migration_set, service_schema)
        return applied
    finally:
        await connection.close()
