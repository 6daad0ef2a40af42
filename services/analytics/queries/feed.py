"""The outbox the live feed follows: conclusions in the order of their positions."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.analytics.projections.tables import OUTBOX_TABLE


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
