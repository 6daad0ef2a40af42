"""Segments: their sizes and value, a defined segment's rule, members now or at a
moment, and how customers moved between the segments of a family."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from services.analytics.queries.records import as_dict, as_dicts
from services.runtime.http.paging import Position
from services.runtime.storage.filters import Where

SEGMENT_FAMILIES = ("rfm", "lifecycle", "tier")
"""The built-in segment families (`<family>.<name>`)."""


@dataclass(frozen=True)
class SegmentFigures:
    """Current members and their value per segment, beside the whole population's."""

    sizes: dict[str, dict[str, Any]]
    """segment -> {customers, value}"""
    total_value: Decimal
    population: int
    defined: list[dict[str, Any]]
    """The defined segments' rules."""


async def segment_figures(pool: asyncpg.Pool) -> SegmentFigures:
    async with pool.acquire() as c:
        sizes = await c.fetch(
            """SELECT h.segment, count(*) AS customers, coalesce(sum(p.total_spend), 0) AS value
               FROM segment_history h JOIN profiles p USING (customer_id)
               WHERE h.left_at IS NULL GROUP BY h.segment"""
        )
        total = await c.fetchval("SELECT coalesce(sum(total_spend), 0) FROM profiles")
        population = await c.fetchval("SELECT count(*) FROM profiles")
        defined = await c.fetch(
            "SELECT segment, version, name, description, rule::text AS rule FROM segment_rules"
        )
    return SegmentFigures(
        sizes={r["segment"]: dict(r) for r in sizes},
        total_value=total,
        population=population,
        defined=as_dicts(defined, "rule"),
    )


async def segment_rule(pool: asyncpg.Pool, segment: str) -> dict[str, Any] | None:
    """A defined segment's rule, or None."""
    row = await pool.fetchrow(
        "SELECT segment, version, name, description, rule::text AS rule, defined_at "
        "FROM segment_rules WHERE segment = $1",
        segment,
    )
    return as_dict(row, "rule")


async def segment_rule_versions(pool: asyncpg.Pool, segment: str) -> list[dict[str, Any]]:
    """Every version of a defined segment's rule, oldest first."""
    rows = await pool.fetch(
        "SELECT segment, version, name, description, rule::text AS rule, defined_at "
        "FROM segment_rule_versions WHERE segment = $1 ORDER BY version",
        segment,
    )
    return as_dicts(rows, "rule")


async def segment_members(
    pool: asyncpg.Pool, segment: str, at: datetime | None, after: Position | None, limit: int
) -> list[dict[str, Any]]:
    """Members now (`at` None) or at a moment, by customer id."""
    where = Where()
    where.equal("h.segment", segment)
    if at is None:
        where.condition("h.left_at IS NULL")
    else:
        moment = where.parameter(at)
        where.condition(f"h.entered_at <= {moment} AND (h.left_at IS NULL OR h.left_at > {moment})")
    where.after(("h.customer_id",), after)
    rows = await pool.fetch(
        f"""SELECT h.customer_id, p.name, h.rule_version, h.entered_at, h.left_at,
                   h.entered_values::text AS decided_by, p.total_spend, p.value_tier
            FROM segment_history h LEFT JOIN profiles p USING (customer_id)
            WHERE {where.sql} ORDER BY h.customer_id LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return as_dicts(rows, "decided_by")


async def migration(
    pool: asyncpg.Pool, start: datetime, end: datetime, family: str
) -> list[dict[str, Any]]:
    """How many customers were in which segment of `family` (a built-in family, or one
    defined segment) at `start`, and in which at `end`; `(none)` for none."""
    if family in SEGMENT_FAMILIES:
        condition, argument = "segment LIKE $2", f"{family}.%"
    else:
        condition, argument = "segment = $2", family
    rows = await pool.fetch(
        f"""WITH a AS (SELECT customer_id, segment FROM segment_history
                       WHERE {condition} AND entered_at <= $1
                         AND (left_at IS NULL OR left_at > $1)),
                 b AS (SELECT customer_id, segment FROM segment_history
                       WHERE {condition} AND entered_at <= $3
                         AND (left_at IS NULL OR left_at > $3))
            SELECT coalesce(a.segment, '(none)') AS from_segment,
                   coalesce(b.segment, '(none)') AS to_segment, count(*) AS customers
            FROM a FULL JOIN b USING (customer_id)
            GROUP BY 1, 2 ORDER BY 1, 2""",
        start,
        argument,
        end,
    )
    return as_dicts(rows)
