"""An import's record in `customer_imports`: one run of an import at a time (a lock), the
checkpoint (the last row committed) and the counts so far, from which a stopped import
resumes."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from services.customer.import_mapping import Mapping
from services.customer.import_report import OUTCOMES, Summary
from services.runtime.errors import CommandRejected


class ImportRefused(CommandRejected):
    """The import cannot run as asked (its id is taken by another mapping, or it runs
    elsewhere); the message says what to do."""

    status_code = 409


async def begin(
    connection: asyncpg.Connection, summary: Summary, mapping: Mapping, actor: str
) -> None:
    """Record that the import runs; a stopped one resumes: `summary` gets the row it
    resumes after and the counts so far (a new import, or one whose last run completed,
    starts at row 1). Holds the import's lock for as long as `connection`
    stays open: one run of an import at a time."""
    import_id = summary.import_id
    locked = await connection.fetchval(
        "SELECT pg_try_advisory_lock(hashtext('customer-import'), hashtext($1))", import_id
    )
    if not locked:
        raise ImportRefused(f"import {import_id} is running elsewhere; wait for it to end")
    found = await connection.fetchrow(
        "SELECT mapping_fingerprint, state, committed_row, counts FROM customer_imports "
        "WHERE import_id = $1",
        import_id,
    )
    fingerprint = mapping.fingerprint()
    if found is not None and found["state"] != "completed":
        if found["mapping_fingerprint"] != fingerprint:
            raise ImportRefused(
                f"import {import_id} was started with another mapping and stopped after row "
                f"{found['committed_row']}; resume it with the same mapping, or give "
                "another import id"
            )
        await connection.execute(
            "UPDATE customer_imports SET state = 'running', actor = $2, updated_at = now() "
            "WHERE import_id = $1",
            import_id,
            actor,
        )
        summary.resumed_after = summary.last_row = int(found["committed_row"])
        counts = found["counts"]
        counts = json.loads(counts) if isinstance(counts, str) else counts
        summary.counts.update({name: int(counts.get(name, 0)) for name in OUTCOMES})
        summary.rejected_by_reason.update(counts.get("rejected_by_reason", {}))
        summary.possible_duplicates = int(counts.get("possible_duplicates", 0))
        return
    await connection.execute(
        """INSERT INTO customer_imports
               (import_id, mapping, mapping_fingerprint, actor, state, committed_row, counts)
           VALUES ($1, $2::jsonb, $3, $4, 'running', 0, '{}')
           ON CONFLICT (import_id) DO UPDATE SET
               mapping = excluded.mapping, mapping_fingerprint = excluded.mapping_fingerprint,
               actor = excluded.actor, state = 'running', committed_row = 0, counts = '{}',
               started_at = now(), updated_at = now()""",
        import_id,
        json.dumps(mapping.model_dump(mode="json"), ensure_ascii=False),
        fingerprint,
        actor,
    )


async def checkpoint(
    connection: asyncpg.Connection, summary: Summary, row: int, state: str = "running"
) -> None:
    """The rows up to `row` are committed; the counts so far."""
    counts = {
        **{name: summary.counts[name] for name in OUTCOMES},
        "rejected_by_reason": dict(summary.rejected_by_reason),
        "possible_duplicates": summary.possible_duplicates,
    }
    await connection.execute(
        "UPDATE customer_imports SET committed_row = greatest(committed_row, $2), "
        "counts = $3::jsonb, state = $4, updated_at = now() WHERE import_id = $1",
        summary.import_id,
        row,
        json.dumps(counts),
        state,
    )


async def import_record(pool: asyncpg.Pool, import_id: str) -> dict[str, Any] | None:
    record = await pool.fetchrow(
        "SELECT import_id, actor, state, committed_row, counts, mapping, started_at, "
        "updated_at FROM customer_imports WHERE import_id = $1",
        import_id,
    )
    if record is None:
        return None
    found = dict(record)
    for name in ("counts", "mapping"):
        if isinstance(found[name], str):
            found[name] = json.loads(found[name])
    return found
