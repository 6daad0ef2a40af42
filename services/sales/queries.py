"""Queries on the sales read models: pipeline, analyses, lists with cursor paging.

Amounts are summed per currency, never across currencies: every aggregated row carries
its `currency`. Customer names come from `sales_customers` (the customer topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeAlias
from uuid import UUID

import asyncpg

from services.runtime.http.paging import BY_MOMENT, Position, SortKey
from services.runtime.storage.filters import Where

Row = dict[str, Any]
Connection: TypeAlias = asyncpg.Connection | asyncpg.Pool

GroupBy = Literal["month", "quarter", "product", "region", "stage", "owner"]
DateBasis = Literal["opened", "expected_close", "closed"]

STAGE_RANK = (
    "array_position(ARRAY['lead','qualified','proposal','negotiation','won','lost'], o.stage)"
)
OPEN = "o.stage IN ('lead','qualified','proposal','negotiation')"
OPENED_ON = "(o.opened_at AT TIME ZONE 'UTC')::date"


def owned_by(where: Where, column: str, owners: frozenset[str] | None) -> Where:
    """Only rows whose `column` names one of `owners`; every row when `owners` is None.
    An empty set matches nothing (unlike an absent filter): visibility fails closed."""
    if owners is not None:
        where.condition(f"{column} = ANY({where.parameter(sorted(owners))}::text[])")
    return where


OPPORTUNITY_ORDER = SortKey(("opened_at", "opportunity_id"), BY_MOMENT)
PURCHASE_ORDER = SortKey(("occurred_at", "purchase_id"), BY_MOMENT)
"""The sort keys of the lists, newest first."""


@dataclass(frozen=True)
class OpportunityFilter:
    """Filters of the opportunity views; each is optional and they combine with AND."""

    stage: str | None = None
    owner: str | None = None
    region: str | None = None
    currency: str | None = None
    product: str | None = None
    customer_id: UUID | list[UUID] | None = None
    opened_from: date | None = None
    opened_to: date | None = None
    overdue_on: date | None = None
    owners: frozenset[str] | None = None
    """Whose deals the caller may see (`Visibility`); None: everyone's."""

    def where(self) -> Where:
        where = owned_by(Where(), "o.owner", self.owners)
        for column in ("stage", "owner", "region", "currency", "customer_id"):
            where.equal(f"o.{column}", getattr(self, column))
        where.add("o.product_names @> ARRAY[{}]::text[]", self.product)
        where.compare(OPENED_ON, ">=", self.opened_from)
        where.compare(OPENED_ON, "<=", self.opened_to)
        where.add(f"o.expected_close_date < {{}} AND {OPEN}", self.overdue_on)
        return where


OPPORTUNITY_SELECT = """
SELECT o.*, c.name AS customer_name,
       round(o.expected_amount * o.probability / 100.0, 2) AS weighted_amount
FROM opportunities o LEFT JOIN sales_customers c USING (customer_id)
"""


async def pipeline(db: Connection, filters: OpportunityFilter) -> list[Row]:
    """Per stage and currency: how many, how much, and how much weighted by probability."""
    where = filters.where()
    records = await db.fetch(
        f"""SELECT o.stage, o.currency, count(*) AS count,
                   sum(o.expected_amount) AS amount,
                   round(sum(o.expected_amount * o.probability / 100.0), 2) AS weighted_amount
            FROM opportunities o WHERE {where.sql}
            GROUP BY o.stage, o.currency
            ORDER BY min({STAGE_RANK}), o.currency""",
        *where.values,
    )
    return [dict(r) for r in records]


def _basis(date_basis: DateBasis) -> str:
    return {
        "opened": OPENED_ON,
        "expected_close": "o.expected_close_date",
        "closed": "(o.closed_at AT TIME ZONE 'UTC')::date",
    }[date_basis]


async def analysis(
    db: Connection, group_by: GroupBy, date_basis: DateBasis, filters: OpportunityFilter
) -> list[Row]:
    """Counts, amounts and win rate of opportunities per group and currency.

    By product, an opportunity counts once for each product it holds, and its amounts
    are those of the product's lines (quantity times unit price).
    """
    where = filters.where()
    basis = _basis(date_basis)
    amount = "o.expected_amount"
    source = "opportunities o"
    key = {
        "month": f"to_char({basis}, 'YYYY-MM')",
        "quarter": f"to_char({basis}, 'YYYY-\"Q\"Q')",
        "region": "coalesce(o.region, '')",
        "stage": "o.stage",
        "owner": "o.owner",
        "product": "line.value->>'product'",
    }[group_by]
    if group_by == "product":
        source += " CROSS JOIN LATERAL jsonb_array_elements(o.products) AS line(value)"
        amount = "(line.value->>'quantity')::numeric * (line.value->>'unit_price')::numeric"
    if group_by in ("month", "quarter"):
        where.condition(f"{basis} IS NOT NULL")
    records = await db.fetch(
        f"""SELECT {key} AS key, o.currency,
                   count(DISTINCT o.opportunity_id) AS count,
                   sum({amount}) AS amount,
                   round(sum({amount} * o.probability / 100.0), 2) AS weighted_amount,
                   count(DISTINCT o.opportunity_id) FILTER (WHERE {OPEN}) AS open_count,
                   count(DISTINCT o.opportunity_id) FILTER (WHERE o.stage = 'won') AS won_count,
                   coalesce(sum({amount}) FILTER (WHERE o.stage = 'won'), 0) AS won_amount,
                   count(DISTINCT o.opportunity_id) FILTER (WHERE o.stage = 'lost')
                       AS lost_count
            FROM {source} WHERE {where.sql}
            GROUP BY 1, 2 ORDER BY 1, 2""",
        *where.values,
    )
    return [_with_win_rate(dict(r)) for r in records]


def _with_win_rate(row: Row) -> Row:
    decided = row["won_count"] + row["lost_count"]
    row["win_rate"] = round(row["won_count"] / decided, 4) if decided else None
    return row


async def owner_performance(db: Connection, filters: OpportunityFilter) -> list[Row]:
    """Per owner and currency: pipeline, wins, losses, win rate, overdue, contracts, cash."""
    where = filters.where()
    records = await db.fetch(
        f"""WITH o AS (SELECT * FROM opportunities o WHERE {where.sql})
            SELECT o.owner, o.currency,
                   count(*) AS count,
                   count(*) FILTER (WHERE {OPEN}) AS open_count,
                   coalesce(sum(o.expected_amount) FILTER (WHERE {OPEN}), 0) AS open_amount,
                   coalesce(round(sum(o.expected_amount * o.probability / 100.0)
                       FILTER (WHERE {OPEN}), 2), 0) AS weighted_amount,
                   count(*) FILTER (WHERE o.stage = 'won') AS won_count,
                   coalesce(sum(o.expected_amount) FILTER (WHERE o.stage = 'won'), 0)
                       AS won_amount,
                   count(*) FILTER (WHERE o.stage = 'lost') AS lost_count,
                   count(*) FILTER (WHERE {OPEN} AND o.expected_close_date < current_date)
                       AS overdue_count,
                   coalesce(sum(k.amount), 0) AS contracted_amount,
                   coalesce(sum(k.paid), 0) AS collected_amount
            FROM o LEFT JOIN sales_contracts k
              ON k.opportunity_id = o.opportunity_id AND k.currency = o.currency
            GROUP BY o.owner, o.currency ORDER BY o.owner, o.currency""",
        *where.values,
    )
    return [_with_win_rate(dict(r)) for r in records]


async def prediction_accuracy(
    db: Connection,
    owner: str | None,
    kind: str | None,
    since: date | None,
    owners: frozenset[str] | None = None,
) -> list[Row]:
    """Per owner and activity kind: how many predictions were made, resolved, held."""
    where = owned_by(Where(), "a.owner", owners).condition("a.predicted_result IS NOT NULL")
    where.equal("a.owner", owner).equal("a.kind", kind).compare("a.scheduled_on", ">=", since)
    records = await db.fetch(
        f"""SELECT a.owner, a.kind, count(*) AS predicted,
                   count(a.prediction_held) AS resolved,
                   count(*) FILTER (WHERE a.prediction_held) AS held,
                   count(*) FILTER (WHERE NOT a.prediction_held) AS missed
            FROM activities a WHERE {where.sql}
            GROUP BY a.owner, a.kind ORDER BY a.owner, a.kind""",
        *where.values,
    )
    rows = []
    for record in records:
        row = dict(record)
        row["hit_rate"] = round(row["held"] / row["resolved"], 4) if row["resolved"] else None
        rows.append(row)
    return rows


async def find_opportunities(
    db: Connection,
    filters: OpportunityFilter,
    *,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    """One page in the order they were opened; `after` is the last (opened_at, id) seen."""
    where = filters.where().after(("o.opened_at", "o.opportunity_id"), after)
    records = await db.fetch(
        f"{OPPORTUNITY_SELECT} WHERE {where.sql} "
        f"ORDER BY o.opened_at, o.opportunity_id LIMIT {where.parameter(limit)}",
        *where.values,
    )
    return [dict(r) for r in records]


async def customer_name(db: Connection, customer_id: UUID) -> str | None:
    name: str | None = await db.fetchval(
        "SELECT name FROM sales_customers WHERE customer_id = $1", customer_id
    )
    return name


async def get_opportunity(db: Connection, opportunity_id: UUID) -> Row | None:
    record = await db.fetchrow(f"{OPPORTUNITY_SELECT} WHERE o.opportunity_id = $1", opportunity_id)
    if record is None:
        return None
    row = dict(record)
    row["activities"] = [
        dict(r)
        for r in await db.fetch(
            "SELECT * FROM activities WHERE opportunity_id = $1 ORDER BY scheduled_on, planned_at",
            opportunity_id,
        )
    ]
    row["quotes"] = [
        dict(r)
        for r in await db.fetch(
            "SELECT * FROM quotes WHERE opportunity_id = $1 ORDER BY issued_at", opportunity_id
        )
    ]
    contracts = await contracts_of(db, opportunity_id=opportunity_id)
    row["contract"] = contracts[0] if contracts else None
    return row


async def contracts_of(
    db: Connection,
    *,
    opportunity_id: UUID | None = None,
    customer_id: UUID | list[UUID] | None = None,
    contract_id: str | None = None,
    outstanding_only: bool = False,
    owners: frozenset[str] | None = None,
) -> list[Row]:
    where = owned_by(Where(), "k.owner", owners)
    where.equal("k.opportunity_id", opportunity_id).equal("k.customer_id", customer_id)
    where.equal("k.contract_id", contract_id)
    if outstanding_only:
        where.condition("k.amount > k.paid")
    records = await db.fetch(
        f"""SELECT k.*, k.amount - k.paid AS outstanding, c.name AS customer_name
            FROM sales_contracts k LEFT JOIN sales_customers c USING (customer_id)
            WHERE {where.sql}
            ORDER BY k.signed_on, k.contract_id LIMIT 1000""",
        *where.values,
    )
    rows = [dict(r) for r in records]
    if rows:
        payments = await db.fetch(
            "SELECT * FROM payments WHERE contract_id = ANY($1::text[]) "
            "ORDER BY received_on, recorded_at",
            [r["contract_id"] for r in rows],
        )
        for row in rows:
            row["payments"] = [dict(p) for p in payments if p["contract_id"] == row["contract_id"]]
    return rows


@dataclass(frozen=True)
class PurchaseFilter:
    customer_id: UUID | list[UUID] | None = None
    source: str | None = None
    currency: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> Where:
        where = Where()
        for column in ("customer_id", "source", "currency"):
            where.equal(f"p.{column}", getattr(self, column))
        where.compare("p.occurred_at", ">=", self.since)
        where.compare("p.occurred_at", "<", self.until)
        return where


async def find_purchases(
    db: Connection,
    filters: PurchaseFilter,
    *,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    """One page, newest first; `after` is the last (occurred_at, id) seen."""
    where = filters.where().after(("p.occurred_at", "p.purchase_id"), after, descending=True)
    records = await db.fetch(
        f"""SELECT p.*, c.name AS customer_name
            FROM purchases p LEFT JOIN sales_customers c USING (customer_id)
            WHERE {where.sql}
            ORDER BY p.occurred_at DESC, p.purchase_id DESC LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return [dict(r) for r in records]


async def purchase_totals(db: Connection, filters: PurchaseFilter) -> list[Row]:
    where = filters.where()
    records = await db.fetch(
        f"""SELECT p.currency, count(*) AS count, sum(p.amount) AS amount,
                   min(p.occurred_at) AS first_at, max(p.occurred_at) AS last_at
            FROM purchases p WHERE {where.sql} GROUP BY p.currency ORDER BY p.currency""",
        *where.values,
    )
    return [dict(r) for r in records]
