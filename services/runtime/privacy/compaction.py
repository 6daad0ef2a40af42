"""Erasure that reaches the disk: the old row versions of an erased customer rewritten away.

Overwriting a customer's personal columns (`erasure.py`) leaves the old row versions in
the table's files until PostgreSQL reuses their space, the old index entries, the values
sampled into `pg_statistic`, and the write-ahead log that recorded them. So each
projection that applies `customer.erased` also notes the customer in
`erasures_to_compact` (same transaction), and every `erasure_compaction_interval_seconds`
a service with erasures noted:

1. rewrites every table of its schema (`VACUUM (FULL, ANALYZE)`: a new file and new
   indexes holding the live rows only; the old files are truncated at once), except the
   event stores, whose personal values are sealed with keys that erasure destroys;
2. rewrites `pg_statistic`, where the statistics gathered before the erasure lived;
3. switches to a new WAL segment and checkpoints, so that the segments that recorded the
   personal values are removed (with `wal_recycle = off`, which the CRM's PostgreSQL
   runs with, a removed segment is deleted rather than renamed for reuse).

Steps 2 and 3 need privileges a service role may lack (`pg_maintain`, `pg_checkpoint`,
`EXECUTE` on `pg_switch_wal`): a step refused is logged with the grant it needs and
the compaction counted as `partial`, its erasures kept noted so that the next run tries
again. One replica of a service compacts at a time (an advisory lock per schema).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import asyncpg

from services.runtime.metrics import ERASURE_COMPACTIONS, ERASURES_PENDING

log = logging.getLogger(__name__)

LOCK_TIMEOUT = "10s"
"""How long a rewrite waits for a table's lock before the run gives up until next time
(a rewrite holds the table exclusively while it copies the live rows)."""

TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')
  AND NOT EXISTS (  -- an event store: personal values sealed, erased with their key
      SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'originator_version'
  )
ORDER BY c.relname
"""

PRIVILEGED_STEPS = (
    ("VACUUM (FULL) pg_catalog.pg_statistic", "GRANT pg_maintain TO <service role>"),
    ("SELECT pg_switch_wal()", "GRANT EXECUTE ON FUNCTION pg_switch_wal() TO <service role>"),
    ("CHECKPOINT", "GRANT pg_checkpoint TO <service role>"),
)
"""The server-wide steps, each with the grant that allows it to a role that is not a
superuser."""


def _quoted(schema: str, table: str) -> str:
    return '"{}"."{}"'.format(schema.replace('"', '""'), table.replace('"', '""'))


async def remember_erasures(connection: asyncpg.Connection, customer_ids: Sequence[object]) -> None:
    """Note erased customers for the next compaction (in the caller's transaction)."""
    if customer_ids:
        await connection.execute(
            "INSERT INTO erasures_to_compact (customer_id) SELECT unnest($1::uuid[]) "
            "ON CONFLICT (customer_id) DO NOTHING",
            list(customer_ids),
        )


async def compact_erasures(pool: asyncpg.Pool, service: str, schemas: Sequence[str]) -> str | None:
    """Rewrite `schemas` if erasures are noted; the outcome (`done`, `partial`), or None
    when there was nothing to do or another replica is at it."""
    async with pool.acquire() as connection:
        pending = await connection.fetchval("SELECT count(*) FROM erasures_to_compact")
        ERASURES_PENDING.labels(service).set(pending)
        if not pending:
            return None
        lock = f"crm-erasure-compaction:{schemas[0]}"
        if not await connection.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock):
            return None
        try:
            outcome = await _compact(connection, schemas)
        finally:
            await connection.execute("SELECT pg_advisory_unlock(hashtext($1))", lock)
        pending = await connection.fetchval("SELECT count(*) FROM erasures_to_compact")
    ERASURE_COMPACTIONS.labels(service, outcome).inc()
    ERASURES_PENDING.labels(service).set(pending)
    return outcome


async def _compact(connection: asyncpg.Connection, schemas: Sequence[str]) -> str:
    started = time.monotonic()
    # erasures noted from now on (or not committed yet) wait for the next run
    noted = [
        r["customer_id"]
        for r in await connection.fetch("SELECT customer_id FROM erasures_to_compact")
    ]
    await connection.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    try:
        tables = [
            _quoted(schema, row["relname"])
            for schema in schemas
            for row in await connection.fetch(TABLES, schema)
        ]
        for table in tables:
            await connection.execute(f"VACUUM (FULL, ANALYZE) {table}")
        refused = []
        for statement, grant in PRIVILEGED_STEPS:
            try:
                await connection.execute(statement)
            except asyncpg.InsufficientPrivilegeError:
                refused.append(grant)
    finally:
        await connection.execute("RESET lock_timeout")
    if refused:
        log.warning(
            "erased customers' old row versions rewritten in %d tables, but the database "
            "refused the server-wide steps; statistics or WAL may still hold their values "
            "until it allows them: %s",
            len(tables),
            "; ".join(refused),
        )
        return "partial"
    await connection.execute(
        "DELETE FROM erasures_to_compact WHERE customer_id = ANY($1::uuid[])", noted
    )
    log.info(
        "erased customers' data rewritten away in %d tables and the WAL in %.1fs",
        len(tables),
        time.monotonic() - started,
    )
    return "done"
