"""Planner statistics kept up with tables that a consumer fills faster than autovacuum
looks at them.

A projection's queries run as prepared statements (asyncpg keeps them per connection),
and PostgreSQL soon plans such a statement once for all executions (a generic plan),
from the statistics of the moment. A table filled from empty at thousands of rows a
second (a rebuild, a backfill, a history loaded at once, a busy first minute) keeps the
statistics of its first rows until autovacuum analyses it (every `autovacuum_naptime`,
once a tenth of it changed). Meanwhile a look-up by key planned for a table of a few rows
scans the whole table: measured on the purchase pipeline, the analytics fold's look-up of
a batch's profiles took 6 to 54 ms, growing with the table, where the primary key index
answers in under a millisecond.

So a consumer asks, at most once per `interval`, which tables of its schema hold more
than `GROWTH` times the rows their statistics say (and at least `minimum_rows`), and
analyses them from a small sample (`SAMPLE_TARGET`: the sizes are what the plans were
wrong about; autovacuum's own analysis refines the rest later). `ANALYZE` replaces the
statistics and makes every cached plan on the table be planned again. A table that keeps
growing is analysed each time it grows fourfold: a handful of times for a million rows.
On the analytics-fold benchmark, at the full default sample and at each doubling, the
analyses cost 3 to 6 µs of PostgreSQL CPU per event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import asyncpg

from services.runtime.transient import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

GROWTH = 4
"""How many times the rows its statistics say a table holds before it is analysed."""
SAMPLE_TARGET = 10
"""`default_statistics_target` of these analyses (the server's default: 100); the rows
sampled are 300 times it."""

GROWN = """
SELECT format('%I.%I', s.schemaname, s.relname) AS name
  FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
 WHERE s.schemaname = current_schema()
   AND s.n_live_tup >= $1
   AND s.n_live_tup > $2 * greatest(c.reltuples, 0)
"""


class PlannerStatistics:
    """Analyses the tables of the pool's schema that outgrew their statistics."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        interval: float = 1.0,
        minimum_rows: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._interval = interval
        self._minimum_rows = minimum_rows
        self._clock = clock
        self._due = clock()

    async def refresh_if_due(self) -> list[str]:
        """Analyse the grown tables if `interval` passed since the last look; their names.
        A failure is logged and left to the next look (autovacuum analyses them too)."""
        now = self._clock()
        if now < self._due:
            return []
        self._due = now + self._interval
        try:
            async with self._pool.acquire() as connection:
                rows = await connection.fetch(GROWN, self._minimum_rows, GROWTH)
                grown = [r["name"] for r in rows]
                for name in grown:
                    async with connection.transaction():
                        await connection.execute(
                            f"SET LOCAL default_statistics_target = {SAMPLE_TARGET}"
                        )
                        await connection.execute(f"ANALYZE {name}")
        except (asyncpg.PostgresError, *TRANSIENT_ERRORS) as exc:
            log.warning("could not refresh the planner statistics: %r", exc)
            return []
        return grown
