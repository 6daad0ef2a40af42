"""Background work on the analytics tables: RFM re-scoring, the time-based sweep, the
scheduled fit of the lifetime value models, the scoring of customers whose purchases
changed, and the ledger of predictions. Each step is one transaction under the writers'
lock (a fit reads and fits before it takes the lock); a database outage is logged and
retried at the next interval (`services.runtime.periodic.every`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from services.analytics import metrics
from services.analytics.domain.money import Converter
from services.analytics.domain.predictions import Valuation
from services.analytics.projections import ledger
from services.analytics.projections.deals import score_open_deals
from services.analytics.projections.fits import FitReport, fit_when_due
from services.analytics.projections.fold import PROGRESS, FoldProgress
from services.analytics.projections.ledger import StepReport
from services.analytics.projections.rescoring import reconclude_all, rescore
from services.analytics.projections.scoring import score_stale
from services.analytics.projections.store import load_rules
from services.analytics.projections.writers import lock

log = logging.getLogger(__name__)


Watermark = Callable[[], datetime | None]
"""The event time up to which every fact has been folded, for the conclusions that no
fact of a customer's causes (the sweep, the re-scoring, the models' scores): the wall
clock while the fold is live, that is caught up and for `quiet_seconds` without folding
history (facts that occurred more than `fold.HISTORICAL_AFTER` before); None while it
folds history (a load at once, a replay, a backlog): then each customer is concluded
only as far as their own facts (`domain.event_time`)."""

QUIET_SECONDS = 10.0
"""The default of `CRM_ANALYTICS_HISTORY_QUIET_SECONDS`. A loader that pauses for longer
(a slow producer, a migration sending its files one after the other) leaves the fold
caught up with history still to come; taking the wall clock then concludes everyone at
the time of loading and makes the rest of their history late, so such a load sets it
higher (the rules that time moves are counted in days: minutes more before they move
cost nothing)."""


def live_watermark(
    caught_up: Callable[[], bool],
    progress: FoldProgress = PROGRESS,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    *,
    quiet_seconds: float = QUIET_SECONDS,
) -> Watermark:
    def watermark() -> datetime | None:
        live = caught_up() and progress.quiet_for() >= quiet_seconds
        return clock() if live else None

    return watermark


async def rescore_once(pool: asyncpg.Pool, watermark: Watermark = lambda: None) -> int:
    started = time.perf_counter()
    async with pool.acquire() as connection, connection.transaction():
        changed = await rescore(connection, watermark(), datetime.now(UTC))
    metrics.RESCORE_SECONDS.observe(time.perf_counter() - started)
    metrics.RESCORED.inc(changed)
    return changed


async def sweep_once(pool: asyncpg.Pool, at: datetime) -> int:
    """Everyone's conclusions brought to event time `at`: each time-dependent rule that
    became true or false since a customer's clock recorded at the moment it did."""
    started = time.perf_counter()
    async with pool.acquire() as connection, connection.transaction():
        await lock(connection)
        changed = await reconclude_all(
            connection, await load_rules(connection), at, datetime.now(UTC)
        )
    metrics.SWEEP_SECONDS.observe(time.perf_counter() - started)
    metrics.SWEEP_CHANGED.inc(changed)
    if changed:
        log.info("time-based sweep changed the conclusions of %d customers", changed)
    return changed


class Sweep:
    """The time-based sweep: at most every `interval` seconds, and as soon as the fold has
    caught up with a backlog (so that a history loaded at once has its time-dependent
    conclusions up to now without waiting for the interval); never while it catches up."""

    def __init__(self, pool: asyncpg.Pool, watermark: Watermark, interval: float) -> None:
        self._pool = pool
        self._watermark = watermark
        self._interval = interval
        self._last: float | None = None
        self._behind = True

    async def __call__(self) -> int:
        at = self._watermark()
        if at is None:
            self._behind = True
            return 0
        due = self._last is None or time.monotonic() - self._last >= self._interval
        if not (due or self._behind):
            return 0
        changed = await sweep_once(self._pool, at)
        self._last, self._behind = time.monotonic(), False
        return changed


async def score_once(
    pool: asyncpg.Pool,
    valuation: Valuation,
    converter: Converter,
    watermark: Watermark = lambda: None,
) -> int:
    """Customers whose purchases changed, and open deals that changed, scored with the
    models in use."""
    async with pool.acquire() as connection, connection.transaction():
        await lock(connection)
        now = datetime.now(UTC)
        scored = await score_stale(connection, valuation, now, at=watermark())
        await score_open_deals(connection, converter, now, every=False)
    metrics.SCORED.inc(scored)
    return scored


async def ledger_once(
    pool: asyncpg.Pool, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> StepReport:
    """The ledger of predictions: churn warnings and people's predictions recorded,
    every prediction that came due settled."""
    async with pool.acquire() as connection, connection.transaction():
        await lock(connection)
        return await ledger.step(connection, clock())


async def fit_once(
    pool: asyncpg.Pool,
    valuation: Valuation,
    converter: Converter,
    interval: timedelta,
    watermark: Watermark = lambda: None,
) -> None:
    report: FitReport | None = await fit_when_due(
        pool, valuation, converter, interval, watermark=watermark
    )
    if report is None:
        return
    metrics.SCORED.inc(report.scored)
    for fit in report.fits:
        log.info(
            "%s version %d: %s (%d customers; %s)",
            fit.record.model,
            fit.version,
            fit.record.outcome,
            fit.record.population,
            fit.record.message,
        )
