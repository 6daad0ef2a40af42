"""Customers by lifetime value, with the scores of the lifetime value models; open deals
by learned win probability."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from services.analytics.domain.predictions import SCORE_FIELDS
from services.analytics.queries.profiles import LISTED, members_of
from services.analytics.queries.records import as_dicts, within_window
from services.runtime.http.paging import Position, SortKey
from services.runtime.storage.filters import Where

BY_VALUE = SortKey(("lifetime_value", "customer_id"), (Decimal, UUID))
"""The list pages by lifetime value, highest first (ties by customer id)."""

VALUE_FILTERS = ("value_tier", "lifecycle_stage", "rfm_segment", "region", "industry", "owner")
"""Profile columns the list filters on by equality."""


async def lifetime_values(
    pool: asyncpg.Pool,
    filters: dict[str, str],
    *,
    segment: str | None,
    min_probability_active: float | None,
    max_probability_active: float | None,
    min_lifetime_value: Decimal | None,
    after: Position | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Customers with a lifetime value, highest first, filtered; a survivor of merges
    with its group's purchases (and scored on them), those merged into it not at all."""
    where = Where()
    where.condition("lifetime_value IS NOT NULL")
    for name in VALUE_FILTERS:
        where.equal(name, filters.get(name))
    if min_probability_active is not None:
        where.condition(f"probability_active >= {where.parameter(min_probability_active)}")
    if max_probability_active is not None:
        where.condition(f"probability_active <= {where.parameter(max_probability_active)}")
    if min_lifetime_value is not None:
        where.condition(f"lifetime_value >= {where.parameter(min_lifetime_value)}")
    members_of(where, segment)
    where.after(("lifetime_value", "customer_id"), after, descending=True)
    rows = await pool.fetch(
        f"""SELECT customer_id, name, owner, region, value_tier, lifecycle_stage,
                   purchase_count, total_spend, first_spend,
                   {within_window("last_purchase_at")}, {", ".join(SCORE_FIELDS)},
                   scored_at, bg_nbd_version, gamma_gamma_version
            FROM {LISTED} WHERE {where.sql}
            ORDER BY lifetime_value DESC, customer_id DESC LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return as_dicts(rows)


BY_WIN = SortKey(("rank", "opportunity_id"), (Decimal, UUID))
"""Open deals page by learned win probability, highest first (those without one last)."""
_RANK = "coalesce(o.win_probability, -1)::numeric"

WIN_FILTERS = ("owner", "stage", "region", "product")
"""Opportunity columns the list of open deals filters on by equality."""


async def win_probabilities(
    pool: asyncpg.Pool,
    filters: dict[str, str],
    *,
    after: Position | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Open deals with their stage, the learned win probability and its factors."""
    where = Where()
    where.condition("o.stage NOT IN ('won', 'lost')")
    for name in WIN_FILTERS:
        where.equal(f"o.{name}", filters.get(name))
    where.after((_RANK, "o.opportunity_id"), after, descending=True)
    rows = await pool.fetch(
        f"""SELECT o.opportunity_id, o.customer_id, p.name AS customer_name, o.description,
                   o.owner, o.region, o.product, o.stage, o.expected_amount, o.currency,
                   {within_window("o.expected_close_date", day=True)},
                   {within_window("o.opened_at")}, o.win_probability, o.win_baseline,
                   o.win_factors::text AS win_factors, o.win_model_version, o.win_scored_at,
                   {_RANK} AS rank
            FROM opportunities o LEFT JOIN profiles p USING (customer_id)
            WHERE {where.sql}
            ORDER BY {_RANK} DESC, o.opportunity_id DESC LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return as_dicts(rows, "win_factors")
