"""Churn warnings: the open ones, with the profile's name, owner and spend."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.analytics.queries.records import as_dicts
from services.runtime.http.paging import Position
from services.runtime.storage.filters import Where


async def churn_warnings(
    pool: asyncpg.Pool, reason: str | None, after: Position | None, limit: int
) -> list[dict[str, Any]]:
    where = Where()
    where.after(("w.customer_id",), after)
    where.add("{} = ANY(w.reasons)", reason)
    rows = await pool.fetch(
        f"""SELECT w.customer_id, p.name, p.owner, w.value_tier, w.reasons, w.raised_at,
                   w."values"::text AS "values", p.total_spend
            FROM churn_warnings w LEFT JOIN profiles p USING (customer_id)
            WHERE {where.sql} ORDER BY w.customer_id LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return as_dicts(rows, "values")
