"""Customers by lifetime value, with the scores of the lifetime value models."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from services.analytics.domain.predictions import SCORE_FIELDS
from services.analytics.queries.profiles import members_of
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
    """Customers with a lifetime value, highest first, filtered."""
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
            FROM profiles WHERE {where.sql}
            ORDER BY lifetime_value DESC, customer_id DESC LIMIT {where.parameter(limit)}""",
        *where.values,
    )
    return as_dicts(rows)
