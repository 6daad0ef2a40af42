"""Background work of the analytics service: RFM re-scoring, the time-based sweep, and
refreshing the segment and satisfaction gauges. Each step is one transaction under the
fold's lock; a database outage is logged and retried at the next interval."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import asyncpg

from services.analytics import metrics
from services.analytics.projections import load_rules, lock, reconclude_all, rescore

log = logging.getLogger(__name__)


async def rescore_once(pool: asyncpg.Pool) -> int:
    started = time.perf_counter()
    async with pool.acquire() as connection, connection.transaction():
        changed = await rescore(connection, datetime.now(UTC))
    metrics.RESCORE_SECONDS.observe(time.perf_counter() - started)
    metrics.RESCORED.inc(changed)
    return changed


async def sweep_once(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as connection, connection.transaction():
        await lock(connection)
        changed = await reconclude_all(connection, await load_rules(connection), datetime.now(UTC))
    metrics.SWEEP_CHANGED.inc(changed)
    if changed:
        log.info("time-based sweep changed the conclusions of %d customers", changed)
    return changed


async def refresh_gauges(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        rows = await connection.fetch(
            """SELECT h.segment, count(*) AS size,
                      avg(p.csat_average) AS csat,
                      100.0 * (count(*) FILTER (WHERE p.nps_latest >= 9)
                               - count(*) FILTER (WHERE p.nps_latest <= 6))
                        / nullif(count(p.nps_latest), 0) AS nps
               FROM segment_history h JOIN profiles p USING (customer_id)
               WHERE h.left_at IS NULL GROUP BY h.segment"""
        )
        warnings = await connection.fetch(
            "SELECT value_tier, count(*) AS n FROM churn_warnings GROUP BY value_tier"
        )
    seen = set()
    for row in rows:
        seen.add(row["segment"])
        metrics.SEGMENT_SIZE.labels(row["segment"]).set(row["size"])
        metrics.SEGMENT_CSAT.labels(row["segment"]).set(float(row["csat"] or 0))
        metrics.SEGMENT_NPS.labels(row["segment"]).set(float(row["nps"] or 0))
    for gauge in (metrics.SEGMENT_SIZE, metrics.SEGMENT_CSAT, metrics.SEGMENT_NPS):
        for labels in list(gauge._metrics):  # segments that emptied
            if labels[0] not in seen:
                gauge.labels(*labels).set(0)
    counts = {r["value_tier"]: r["n"] for r in warnings}
    for tier in ("top", "high"):
        metrics.CHURN_WARNINGS.labels(tier).set(counts.get(tier, 0))
