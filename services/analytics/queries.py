"""The SQL the analytics views run on the fold's tables: segments and their members,
profiles and what the customer 360 shows, satisfaction, churn warnings, overviews and
the outbox the live feed follows. Each function answers plain rows (dicts), JSON columns
decoded; the views shape them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import asyncpg
import orjson

from services.analytics.projections.tables import OUTBOX_TABLE
from services.runtime.http.paging import Position, SortKey
from services.runtime.storage.filters import Where

BY_CUSTOMER = SortKey(("customer_id",), (UUID,))
"""Lists of customers (profiles, members, warnings) page by customer id."""
BY_HISTORY = SortKey(("id",), (int,))
"""A customer's segment history pages by the history row's id (its order of record)."""

PROFILE_FILTERS = (
    "lifecycle_stage",
    "value_tier",
    "rfm_segment",
    "region",
    "industry",
    "owner",
    "kind",
    "quadrant",
    "satisfaction",
)
"""Profile columns `/profiles` filters on by equality."""

SEGMENT_FAMILIES = ("rfm", "lifecycle", "tier")
"""The built-in segment families (`<family>.<name>`)."""

_PROFILE = """customer_id, name, kind, industry, region, owner, tags, registered,
    purchase_count, total_spend, first_purchase_at, last_purchase_at, last_contact_at,
    csat_average, csat_count, nps_latest, complaints_open, complaints_total,
    recency_score, frequency_score, monetary_score, rfm_segment, lifecycle_stage,
    value_tier, satisfaction, quadrant, churn_risk, state->'recent_contacts' AS recent,
    updated_at"""


def _rows(records: Sequence[asyncpg.Record], *json_columns: str) -> list[dict[str, Any]]:
    """Records as dicts, the columns read as JSON text decoded."""
    rows = []
    for record in records:
        row = dict(record)
        for name in json_columns:
            if row[name] is not None:
                row[name] = orjson.loads(row[name])
        rows.append(row)
    return rows


def _row(record: asyncpg.Record | None, *json_columns: str) -> dict[str, Any] | None:
    return _rows([record], *json_columns)[0] if record is not None else None


# Segments -------------------------------------------------------------------------------


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
        defined=_rows(defined, "rule"),
    )


async def segment_rule(pool: asyncpg.Pool, segment: str) -> dict[str, Any] | None:
    """A defined segment's rule, or None."""
    row = await pool.fetchrow(
        "SELECT segment, version, name, description, rule::text AS rule, defined_at "
        "FROM segment_rules WHERE segment = $1",
        segment,
    )
    return _row(row, "rule")


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
    return _rows(rows, "decided_by")


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
    return _rows(rows)


# Profiles and customers ---------------------------------------------------------------


async def profiles(
    pool: asyncpg.Pool,
    filters: Mapping[str, str],
    churn_risk: bool | None,
    segment: str | None,
    after: Position | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Profiles by customer id, each of `PROFILE_FILTERS` in `filters` equal to its value,
    at churn risk or not, members of `segment`."""
    where = Where()
    where.after(("customer_id",), after)
    for name in PROFILE_FILTERS:
        if (value := filters.get(name)) is not None:
            where.condition(f"{name} = {where.parameter(value)}")
    if churn_risk is not None:
        where.condition(f"churn_risk = {where.parameter(churn_risk)}")
    if segment is not None:
        where.condition(
            "customer_id IN (SELECT customer_id FROM segment_history "
            f"WHERE left_at IS NULL AND segment = {where.parameter(segment)})"
        )
    rows = await pool.fetch(
        f"SELECT {_PROFILE} FROM profiles WHERE {where.sql} "
        f"ORDER BY customer_id LIMIT {where.parameter(limit)}",
        *where.values,
    )
    return _rows(rows, "recent")


async def profile(pool: asyncpg.Pool, customer_id: UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"SELECT {_PROFILE} FROM profiles WHERE customer_id = $1", customer_id
    )
    return _row(row, "recent")


async def current_segments(pool: asyncpg.Pool, customer_id: UUID) -> list[dict[str, Any]]:
    """The customer's segments now, with the values that decided each and the rule of a
    defined segment (None for a built-in one)."""
    rows = await pool.fetch(
        """SELECT h.segment, h.rule_version, h.entered_at, h.entered_values::text AS decided_by,
                  r.rule::text AS rule
           FROM segment_history h LEFT JOIN segment_rules r USING (segment)
           WHERE h.customer_id = $1 AND h.left_at IS NULL ORDER BY h.segment""",
        customer_id,
    )
    return _rows(rows, "decided_by", "rule")


async def last_change(pool: asyncpg.Pool, customer_id: UUID, segment: str) -> dict[str, Any] | None:
    """The customer's latest entry into `segment` (and exit, if left), or None."""
    row = await pool.fetchrow(
        """SELECT rule_version, entered_at, entered_values::text AS decided_by, left_at,
                  left_values::text AS left_because
           FROM segment_history WHERE customer_id = $1 AND segment = $2
           ORDER BY id DESC LIMIT 1""",
        customer_id,
        segment,
    )
    return _row(row, "decided_by", "left_because")


async def segment_history(
    pool: asyncpg.Pool, customer_id: UUID, after: Position | None, limit: int
) -> list[dict[str, Any]]:
    where = Where()
    where.equal("customer_id", customer_id)
    where.after(("id",), after)
    rows = await pool.fetch(
        f"""SELECT id, segment, rule_version, entered_at, entered_values::text AS entered_values,
                   left_at, left_values::text AS left_values
            FROM segment_history WHERE {where.sql} ORDER BY id LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return _rows(rows, "entered_values", "left_values")


@dataclass(frozen=True)
class CustomerDetails:
    """The detail rows the customer 360 shows beside the profile."""

    last_interactions: list[dict[str, Any]]
    open_opportunities: list[dict[str, Any]]
    open_tickets: list[dict[str, Any]]
    latest_answers: list[dict[str, Any]]
    churn_warning: dict[str, Any] | None


async def customer_details(pool: asyncpg.Pool, customer_id: UUID) -> CustomerDetails:
    async with pool.acquire() as c:
        interactions = await c.fetch(
            """SELECT interaction_id, started_at, channel, direction, subject FROM interactions
               WHERE customer_id = $1 ORDER BY started_at DESC LIMIT 10""",
            customer_id,
        )
        opportunities = await c.fetch(
            """SELECT opportunity_id, description, stage, expected_amount, currency, owner,
                      expected_close_date FROM opportunities
               WHERE customer_id = $1 AND stage NOT IN ('won', 'lost') ORDER BY updated_at""",
            customer_id,
        )
        tickets = await c.fetch(
            """SELECT ticket_id, kind, subject, severity, status, opened_at, resolution_due_at
               FROM tickets WHERE customer_id = $1 AND status = 'open' ORDER BY opened_at""",
            customer_id,
        )
        surveys = await c.fetch(
            """SELECT survey, answered_at, csat, nps, channel FROM surveys
               WHERE customer_id = $1 ORDER BY answered_at DESC LIMIT 5""",
            customer_id,
        )
        warning = await c.fetchrow(
            "SELECT raised_at, reasons FROM churn_warnings WHERE customer_id = $1", customer_id
        )
    return CustomerDetails(
        last_interactions=_rows(interactions),
        open_opportunities=_rows(opportunities),
        open_tickets=_rows(tickets),
        latest_answers=_rows(surveys),
        churn_warning=_row(warning),
    )


# Satisfaction -------------------------------------------------------------------------

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
        answers=_rows(answers),
        tickets=_rows(tickets),
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
        top_customers=_rows(members),
        buyers_without_satisfaction_data=unknown,
    )


async def quadrant_profiles(
    pool: asyncpg.Pool, quadrant: str, after: Position | None, limit: int
) -> list[dict[str, Any]]:
    where = Where()
    where.equal("quadrant", quadrant)
    where.after(("customer_id",), after)
    rows = await pool.fetch(
        f"""SELECT {_PROFILE} FROM profiles WHERE {where.sql}
            ORDER BY customer_id LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return _rows(rows, "recent")


# Churn --------------------------------------------------------------------------------


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
    return _rows(rows, "values")


# Overviews ----------------------------------------------------------------------------


async def pareto(pool: asyncpg.Pool) -> dict[str, Any]:
    """Buyers, their total value, the top fifth's value, and how many of the biggest
    buyers make 80 % of the value."""
    row = await pool.fetchrow(
        """WITH ranked AS (
               SELECT total_spend, row_number() OVER (ORDER BY total_spend DESC) AS n,
                      count(*) OVER () AS buyers, sum(total_spend) OVER () AS total,
                      sum(total_spend) OVER (ORDER BY total_spend DESC
                                             ROWS UNBOUNDED PRECEDING) AS running
               FROM profiles WHERE purchase_count > 0)
           SELECT max(buyers) AS buyers, max(total) AS total,
                  sum(total_spend) FILTER (WHERE n <= ceil(buyers * 0.2)) AS top_value,
                  count(*) FILTER (WHERE n <= ceil(buyers * 0.2)) AS top_customers,
                  min(n) FILTER (WHERE running >= total * 0.8) AS customers_for_80_percent
           FROM ranked"""
    )
    return dict(row)


async def lifecycle_stages(pool: asyncpg.Pool) -> dict[str, dict[str, Any]]:
    """stage -> {customers, value}, for the stages that have customers."""
    rows = await pool.fetch(
        """SELECT lifecycle_stage, count(*) AS customers, sum(total_spend) AS value
           FROM profiles GROUP BY 1"""
    )
    return {r["lifecycle_stage"]: dict(r) for r in rows}


DistributionDimension = Literal["region", "industry", "kind", "owner", "value_tier"]


async def distribution(pool: asyncpg.Pool, by: DistributionDimension) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"""SELECT {by}, count(*) AS customers,
                   count(*) FILTER (WHERE purchase_count > 0) AS buyers,
                   count(*) FILTER (WHERE purchase_count = 0 AND last_contact_at IS NOT NULL)
                     AS interested_prospects,
                   coalesce(sum(total_spend), 0) AS value,
                   avg(total_spend) FILTER (WHERE purchase_count > 0) AS average_spend_per_buyer
            FROM profiles GROUP BY 1 ORDER BY value DESC, 1"""
    )
    return _rows(rows)


async def rfm_state(pool: asyncpg.Pool) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT recency, frequency, monetary, buyers, scored_at FROM rfm_state"
    )
    return dict(row)


# Live feed ----------------------------------------------------------------------------


async def latest_position(pool: asyncpg.Pool) -> int:
    """The outbox position of the latest conclusion (0 before any)."""
    return int(await pool.fetchval(f"SELECT coalesce(max(position), 0) FROM {OUTBOX_TABLE}"))


async def conclusions_after(pool: asyncpg.Pool, position: int, limit: int = 500) -> list[Any]:
    """The next conclusions in the outbox after `position`: (position, envelope) rows."""
    rows: list[Any] = await pool.fetch(
        f"SELECT position, envelope FROM {OUTBOX_TABLE} WHERE position > $1 "
        "ORDER BY position LIMIT $2",
        position,
        limit,
    )
    return rows
