"""Satisfaction: CSAT, NPS, complaints and resolution times by group, and the value x
satisfaction matrix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import asyncpg

from services.analytics.queries.records import as_dicts

SatisfactionGroup = Literal["segment", "channel", "owner", "period"]

_GROUPS: dict[str, tuple[str, str]] = {
    "channel": ("s.channel", "t.channel"),
    "owner": ("p.owner", "p.owner"),
    "period": (
        "to_char(date_trunc('month', s.answered_at), 'YYYY-MM')",
        "to_char(date_trunc('month', t.opened_at), 'YYYY-MM')",
    ),
    "segment": ("h.segment", "h.segment"),
}
"""The group of a survey answer and of a ticket."""


@dataclass(frozen=True)
class SatisfactionFigures:
    """Per group (`grp`): survey answers, tickets, and customers (by owner or segment)."""

    answers: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    customers: dict[Any, int]


async def satisfaction(
    pool: asyncpg.Pool,
    by: SatisfactionGroup,
    family: str | None,
    start: datetime,
    end: datetime,
) -> SatisfactionFigures:
    """CSAT and NPS of the answers given, and complaints and resolution times of the
    tickets opened, from `start` until before `end`, grouped `by`; with `by=segment`,
    the current members of the segments of `family` (every segment without one)."""
    survey_key, ticket_key = _GROUPS[by]
    join = (
        "JOIN segment_history h ON h.customer_id = p.customer_id AND h.left_at IS NULL"
        + (" AND h.segment LIKE $3" if family else "")
        if by == "segment"
        else ""
    )
    args: list[Any] = [start, end] + ([f"{family}.%"] if family and by == "segment" else [])
    async with pool.acquire() as c:
        answers = await c.fetch(
            f"""SELECT {survey_key} AS grp, avg(s.csat)::float AS csat_average,
                       count(s.csat) AS csat_answers, count(s.nps) AS nps_answers,
                       100.0 * (count(*) FILTER (WHERE s.nps >= 9)
                                - count(*) FILTER (WHERE s.nps <= 6))
                         / nullif(count(s.nps), 0) AS nps
                FROM surveys s JOIN profiles p ON p.customer_id = s.customer_id {join}
                WHERE s.answered_at >= $1 AND s.answered_at < $2 GROUP BY 1""",
            *args,
        )
        tickets = await c.fetch(
            f"""SELECT {ticket_key} AS grp,
                       count(*) FILTER (WHERE t.kind = 'complaint') AS complaints,
                       count(DISTINCT t.customer_id) AS customers_with_tickets,
                       avg(extract(epoch FROM t.resolved_at - t.opened_at) / 3600)
                         FILTER (WHERE t.resolved_at IS NOT NULL)::float AS resolution_hours_avg,
                       percentile_disc(0.9) WITHIN GROUP (ORDER BY
                         extract(epoch FROM t.resolved_at - t.opened_at) / 3600)
                         FILTER (WHERE t.resolved_at IS NOT NULL) AS resolution_hours_p90,
                       count(*) FILTER (WHERE t.resolved_at > t.resolution_due_at)
                         AS resolved_late
                FROM tickets t JOIN profiles p ON p.customer_id = t.customer_id {join}
                WHERE t.opened_at >= $1 AND t.opened_at < $2 GROUP BY 1""",
            *args,
        )
        if by == "owner":
            customers = await c.fetch("SELECT owner AS grp, count(*) AS n FROM profiles GROUP BY 1")
        elif by == "segment":
            customers = await c.fetch(
                """SELECT segment AS grp, count(*) AS n FROM segment_history
                   WHERE left_at IS NULL AND segment LIKE $1 GROUP BY 1""",
                f"{family}.%" if family else "%",
            )
        else:
            customers = []
    return SatisfactionFigures(
        answers=as_dicts(answers),
        tickets=as_dicts(tickets),
        customers={r["grp"]: r["n"] for r in customers},
    )


@dataclass(frozen=True)
class MatrixFigures:
    """The value x satisfaction quadrants: customers and value of each, the top
    customers of each by value, and the buyers that fall in none."""

    total_value: Decimal
    quadrants: dict[str, dict[str, Any]]
    """quadrant -> {customers, value}"""
    top_customers: list[dict[str, Any]]
    buyers_without_satisfaction_data: int


async def value_satisfaction(pool: asyncpg.Pool, sample: int) -> MatrixFigures:
    async with pool.acquire() as c:
        total = await c.fetchval("SELECT coalesce(sum(total_spend), 0) FROM profiles")
        counts = await c.fetch(
            """SELECT quadrant, count(*) AS customers, sum(total_spend) AS value
               FROM profiles WHERE quadrant IS NOT NULL GROUP BY quadrant"""
        )
        members = await c.fetch(
            """SELECT quadrant, customer_id, name, total_spend, csat_average, nps_latest FROM (
                   SELECT *, row_number() OVER (PARTITION BY quadrant
                                                ORDER BY total_spend DESC) AS n
                   FROM profiles WHERE quadrant IS NOT NULL) x
               WHERE n <= $1 ORDER BY quadrant, n""",
            sample,
        )
        unknown = await c.fetchval(
            "SELECT count(*) FROM profiles WHERE quadrant IS NULL AND purchase_count > 0"
        )
    return MatrixFigures(
        total_value=total,
        quadrants={r["quadrant"]: dict(r) for r in counts},
        top_customers=as_dicts(members),
        buyers_without_satisfaction_data=unknown,
    )
