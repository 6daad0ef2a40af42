"""Overviews: the 80/20 view, lifecycle stages, customers and value by a dimension, the
RFM state, and purchases and revenue by period."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg

from services.analytics.queries.records import as_dicts
from services.runtime.storage.filters import Where


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
                   round(avg(total_spend) FILTER (WHERE purchase_count > 0), 2)
                     AS average_spend_per_buyer
            FROM profiles GROUP BY 1 ORDER BY value DESC, 1"""
    )
    return as_dicts(rows)


async def rfm_state(pool: asyncpg.Pool) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT recency, frequency, monetary, buyers, scored_at FROM rfm_state"
    )
    return dict(row)


Period = Literal["day", "week", "month"]


async def trend(
    pool: asyncpg.Pool, period: Period, start: datetime, end: datetime, currency: str | None
) -> list[dict[str, Any]]:
    """Purchases (won contracts included) and their amounts per period (UTC, weeks from
    Monday) and currency, from `start` until before `end`: the amounts in their currency
    and in the reporting currency."""
    where = Where()
    where.condition(f"occurred_at >= {where.parameter(start)}")
    where.condition(f"occurred_at < {where.parameter(end)}")
    if currency is not None:
        where.equal("currency", currency)
    rows = await pool.fetch(
        f"""SELECT date_trunc({where.parameter(period)}, occurred_at AT TIME ZONE 'UTC')::date
                     AS starts_on,
                   currency, count(*) AS purchases, sum(amount) AS revenue,
                   sum(reporting_amount) AS reporting_revenue
            FROM purchases WHERE {where.sql} GROUP BY 1, 2 ORDER BY 1, 2""",
        *where.values,
    )
    return as_dicts(rows)
