"""The fits of the lifetime value models (`model_fits`): every version of a model, one
version, and each model's latest fit and the one in use (its latest converged fit)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.analytics.queries.records import as_dict, as_dicts
from services.runtime.http.paging import Position, SortKey
from services.runtime.storage.filters import Where

BY_VERSION = SortKey(("version",), (int,))
"""A model's fits page by version, newest first."""

FIT_COLUMNS = """model, version, outcome, fitted_at, trigger, population, excluded,
    parameters::text AS parameters, log_likelihood, converged, message,
    shortfall::text AS shortfall"""
_JSON = ("parameters", "shortfall")


async def latest(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Per model: its latest fit, its latest converged fit (in use), and how many
    versions it has; flags tell which is which (`latest`, `in_use`)."""
    rows = await pool.fetch(
        f"""WITH ranked AS (
                SELECT {FIT_COLUMNS},
                       version = max(version) OVER (PARTITION BY model) AS latest,
                       version = max(version) FILTER (WHERE converged)
                           OVER (PARTITION BY model) AS in_use,
                       count(*) OVER (PARTITION BY model) AS versions
                FROM model_fits)
            SELECT * FROM ranked WHERE latest OR coalesce(in_use, false)
            ORDER BY model, version DESC"""
    )
    return as_dicts(rows, *_JSON)


async def versions(
    pool: asyncpg.Pool, model: str, after: Position | None, limit: int
) -> list[dict[str, Any]]:
    where = Where()
    where.equal("model", model)
    where.after(("version",), after, descending=True)
    rows = await pool.fetch(
        f"""SELECT {FIT_COLUMNS} FROM model_fits WHERE {where.sql}
            ORDER BY version DESC LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return as_dicts(rows, *_JSON)


async def version(pool: asyncpg.Pool, model: str, number: int) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"SELECT {FIT_COLUMNS} FROM model_fits WHERE model = $1 AND version = $2", model, number
    )
    return as_dict(row, *_JSON)


async def in_use_version(pool: asyncpg.Pool, model: str) -> int | None:
    number: int | None = await pool.fetchval(
        "SELECT max(version) FROM model_fits WHERE model = $1 AND converged", model
    )
    return number
