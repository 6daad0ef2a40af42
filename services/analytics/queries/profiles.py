"""Profiles: filtered lists, one customer's profile, current segments and their latest
change, segment history, and the detail rows of the customer 360."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from services.analytics.domain.predictions import SCORE_FIELDS
from services.analytics.projections.store import PROFILE_COLUMNS as STORED_COLUMNS
from services.analytics.queries.records import as_dict, as_dicts, within_window
from services.runtime.http.paging import Position, SortKey
from services.runtime.storage.filters import Where

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
    "importance_tier",
    "loyalty_stage",
    "value_behaviour",
    "relationship_level",
)
"""Profile columns `/profiles` filters on by equality."""

PROFILE_COLUMNS = f"""customer_id, name, kind, industry, region, owner, tags, registered,
    importance_tier, loyalty_stage, value_behaviour, relationship_level,
    purchase_count, total_spend, first_spend, {within_window("first_purchase_at")},
    {within_window("last_purchase_at")}, {within_window("last_contact_at")}, csat_average,
    csat_count, nps_latest, complaints_open, complaints_total,
    recency_score, frequency_score, monetary_score, rfm_segment, lifecycle_stage,
    value_tier, satisfaction, quadrant, churn_risk, state::jsonb->'recent_contacts' AS recent,
    updated_at, {", ".join(SCORE_FIELDS)}, scored_at, bg_nbd_version, gamma_gamma_version"""
"""What a profile view shows (`recent`: the start times of the latest contacts)."""


_COMBINED = (*(name for name, _ in STORED_COLUMNS[1:]), "updated_at")
_OWN = (*SCORE_FIELDS, "scored_at", "bg_nbd_version", "gamma_gamma_version")
LISTED = f"""(SELECT p.customer_id, {
    ", ".join(
        f"CASE WHEN m.customer_id IS NULL THEN p.{n} ELSE m.{n} END AS {n}" for n in _COMBINED
    )
}, {", ".join(f"p.{n}" for n in _OWN)}
    FROM profiles p LEFT JOIN merged_profiles m ON m.customer_id = p.customer_id
    WHERE NOT EXISTS (SELECT 1 FROM customer_aliases a WHERE a.customer_id = p.customer_id)
    ) AS profiles"""
"""The profiles a list shows: a survivor of merges as its group combined
(`merged_profiles`, with its own model scores), a customer merged into another not at
all, everyone else as stored."""


def members_of(where: Where, segment: str | None) -> None:
    """Only the customers in `segment` now (nothing when it is None)."""
    if segment is not None:
        where.condition(
            "customer_id IN (SELECT customer_id FROM segment_history "
            f"WHERE left_at IS NULL AND segment = {where.parameter(segment)})"
        )


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
    members_of(where, segment)
    rows = await pool.fetch(
        f"SELECT {PROFILE_COLUMNS} FROM {LISTED} WHERE {where.sql} "
        f"ORDER BY customer_id LIMIT {where.parameter(limit)}",
        *where.values,
    )
    return as_dicts(rows, "recent")


async def quadrant_profiles(
    pool: asyncpg.Pool, quadrant: str, after: Position | None, limit: int
) -> list[dict[str, Any]]:
    where = Where()
    where.equal("quadrant", quadrant)
    where.after(("customer_id",), after)
    rows = await pool.fetch(
        f"""SELECT {PROFILE_COLUMNS} FROM {LISTED} WHERE {where.sql}
            ORDER BY customer_id LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return as_dicts(rows, "recent")


async def profile(pool: asyncpg.Pool, customer_id: UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE customer_id = $1", customer_id
    )
    return as_dict(row, "recent")


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
    return as_dicts(rows, "decided_by", "rule")


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
    return as_dict(row, "decided_by", "left_because")


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
    return as_dicts(rows, "entered_values", "left_values")


@dataclass(frozen=True)
class CustomerDetails:
    """The detail rows the customer 360 shows beside the profile."""

    last_interactions: list[dict[str, Any]]
    open_opportunities: list[dict[str, Any]]
    open_tickets: list[dict[str, Any]]
    latest_answers: list[dict[str, Any]]
    churn_warning: dict[str, Any] | None
    contact_persons: list[dict[str, Any]]
    consent: dict[str, Any] | None
    contracts_outstanding: list[dict[str, Any]]
    recent_purchases: list[dict[str, Any]]


RECENT_PURCHASES = 10
"""How many of the latest purchases the customer 360 shows."""


async def customer_details(pool: asyncpg.Pool, group: list[UUID]) -> CustomerDetails:
    """The detail rows of the customer `group[0]` and those merged into it (`group`)."""
    customer_id = group[0]
    async with pool.acquire() as c:
        interactions = await c.fetch(
            f"""SELECT interaction_id, {within_window("started_at")}, channel, direction,
                      subject FROM interactions
               WHERE customer_id = ANY($1::uuid[]) ORDER BY started_at DESC LIMIT 10""",
            group,
        )
        opportunities = await c.fetch(
            f"""SELECT opportunity_id, description, stage, expected_amount, currency, owner,
                      {within_window("expected_close_date", day=True)}, win_probability,
                      win_baseline, win_factors::text AS win_factors, win_model_version
               FROM opportunities
               WHERE customer_id = ANY($1::uuid[]) AND stage NOT IN ('won', 'lost')
               ORDER BY updated_at""",
            group,
        )
        tickets = await c.fetch(
            f"""SELECT ticket_id, kind, subject, severity, status, {within_window("opened_at")},
                      {within_window("resolution_due_at")}
               FROM tickets WHERE customer_id = ANY($1::uuid[]) AND status = 'open'
               ORDER BY opened_at""",
            group,
        )
        surveys = await c.fetch(
            f"""SELECT survey, {within_window("answered_at")}, csat, nps, channel FROM surveys
               WHERE customer_id = ANY($1::uuid[]) ORDER BY answered_at DESC LIMIT 5""",
            group,
        )
        warning = await c.fetchrow(
            "SELECT raised_at, reasons FROM churn_warnings WHERE customer_id = $1", customer_id
        )
        contacts = await c.fetch(
            """SELECT contact_id, name, title, phones, emails FROM contacts
               WHERE customer_id = ANY($1::uuid[]) AND NOT removed
               ORDER BY customer_id = $2 DESC, contact_id""",
            group,
            customer_id,
        )
        consent = await c.fetchrow(
            "SELECT preferred, opted_out FROM consent WHERE customer_id = $1", customer_id
        )
        contracts = await c.fetch(
            f"""SELECT c.opportunity_id, c.contract_id, {within_window("c.signed_on", day=True)},
                      c.amount, c.currency,
                      coalesce(sum(p.amount) FILTER (WHERE p.currency = c.currency), 0) AS paid
               FROM contracts c LEFT JOIN contract_payments p USING (opportunity_id, contract_id)
               WHERE c.customer_id = ANY($1::uuid[])
               GROUP BY c.opportunity_id, c.contract_id
               HAVING c.amount > coalesce(sum(p.amount) FILTER (WHERE p.currency = c.currency), 0)
               ORDER BY c.signed_on, c.contract_id""",
            group,
        )
        purchases = await c.fetch(
            f"""SELECT kind, reference, source, {within_window("occurred_at")}, amount, currency,
                      reporting_amount
               FROM purchases WHERE customer_id = ANY($1::uuid[])
               ORDER BY occurred_at DESC, event_id LIMIT $2""",
            group,
            RECENT_PURCHASES,
        )
    return CustomerDetails(
        last_interactions=as_dicts(interactions),
        open_opportunities=as_dicts(opportunities, "win_factors"),
        open_tickets=as_dicts(tickets),
        latest_answers=as_dicts(surveys),
        churn_warning=as_dict(warning),
        contact_persons=as_dicts(contacts),
        consent=as_dict(consent),
        contracts_outstanding=[{**r, "outstanding": r["amount"] - r["paid"]} for r in contracts],
        recent_purchases=as_dicts(purchases),
    )
