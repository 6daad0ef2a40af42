"""Background work on the analytics tables: RFM re-scoring and the time-based sweep. Each
step is one transaction under the writers' lock; a database outage is logged and retried
at the next interval (`services.runtime.periodic.every`)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import asyncpg

from services.analytics import metrics
from services.analytics.projections.rescoring import reconclude_all, rescore
from services.analytics.projections.store import load_rules
from services.analytics.projections.writers import lock

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
