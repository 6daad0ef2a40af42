"""The profile row of a survivor of merges: its group's profiles combined
(`domain.merge_groups`), scored and concluded as of now, in the shape of `profiles.profile`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.analytics.domain.merge_groups import combine
from services.analytics.domain.profile import Profile
from services.analytics.domain.segments import conclude
from services.analytics.projections.store import (
    derived_columns,
    load_bounds,
    load_profiles,
    load_rules,
)
from services.analytics.queries.profiles import profile
from services.runtime.customer_aliases import merge_group


async def group_profile(
    pool: asyncpg.Pool, customer_id: UUID, group: list[UUID] | None = None
) -> dict[str, Any] | None:
    """The customer's profile row; for the survivor of merges, that of its whole group."""
    row = await profile(pool, customer_id)
    group = group if group is not None else await merge_group(pool, customer_id)
    if row is None or len(group) == 1:
        return row
    combined = await combined_profile(pool, group)
    if combined is None:
        return row
    async with pool.acquire() as connection:
        rules = await load_rules(connection)
    outcome = conclude(combined, datetime.now(UTC), rules)
    rfm_segment, stage, tier, level, quad, risk = derived_columns(combined, outcome)
    values = outcome.values
    return {
        **row,
        "purchase_count": combined.purchase_count,
        "total_spend": combined.total_spend,
        "first_spend": combined.first_spend,
        "first_purchase_at": combined.first_purchase_at,
        "last_purchase_at": combined.last_purchase_at,
        "last_contact_at": combined.last_contact_at,
        "csat_average": values["csat_average"],
        "csat_count": combined.csat_count,
        "nps_latest": combined.nps_latest,
        "complaints_open": values["complaints_open"],
        "complaints_total": values["complaints_total"],
        "recency_score": combined.recency_score,
        "frequency_score": combined.frequency_score,
        "monetary_score": combined.monetary_score,
        "rfm_segment": rfm_segment,
        "lifecycle_stage": stage,
        "value_tier": tier,
        "satisfaction": level,
        "quadrant": quad,
        "churn_risk": risk,
        "recent": [m.isoformat() for m in combined.recent_contacts],
    }


async def combined_profile(pool: asyncpg.Pool, group: list[UUID]) -> Profile | None:
    """The stored profile of `group[0]`, or (with customers merged into it) the group's
    profiles combined and scored against the stored RFM boundaries; None for a customer
    analytics does not know."""
    async with pool.acquire() as connection:
        loaded = await load_profiles(connection, group)
        survivor = loaded.profiles.get(group[0])
        if survivor is None or len(group) == 1:
            return survivor
        bounds = await load_bounds(connection)
    combined = combine(survivor, [loaded.profiles[m] for m in group[1:] if m in loaded.profiles])
    bounds.score(combined)
    return combined
