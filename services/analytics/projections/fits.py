"""Fitting the models over the current population, keeping every fit as a numbered
version (`model_fits`, a durable table), and scoring with the models in use afterwards:
the lifetime value models (BG/NBD, Gamma-Gamma) every customer with a purchase, the win
model (`win_probability`, learned from the closed deals) every open deal.

A fit reads every customer with a purchase (one query, no lock), fits BG/NBD and
Gamma-Gamma by maximum likelihood in a worker thread (each starting from the model in
use, if any), then, in one transaction under the writers' lock: records both fits as the
next version of their model, and scores everyone again with the models in use, which
are each model's latest converged fit. The win model likewise, over the closed deals.
So a fit that did not converge, or a population too small to fit, is recorded as such
and changes no score; the previous model stays in use. The scores are computed under the
lock from the summaries as they are then, so a purchase folded while the models were
fitted is scored too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from services.analytics import metrics
from services.analytics.domain.bg_nbd import BG_NBD, BgNbdFit, fit_bg_nbd
from services.analytics.domain.estimation import NotEnoughData
from services.analytics.domain.gamma_gamma import GAMMA_GAMMA, GammaGammaFit, fit_gamma_gamma
from services.analytics.domain.money import Converter
from services.analytics.domain.predictions import (
    NOT_CONVERGED,
    NOT_ENOUGH_DATA,
    FitRecord,
    Population,
    Valuation,
    population,
    record_of,
)
from services.analytics.domain.win_probability import WIN_PROBABILITY, fit_win_model
from services.analytics.projections.deals import CLOSED_DEALS, closed_deals, score_open_deals
from services.analytics.projections.scoring import (
    POPULATION,
    InUse,
    models_in_use,
    score_all,
    summaries,
)
from services.analytics.projections.writers import lock

SCHEDULE = "schedule"
REQUEST = "request"
"""What started a fit (`model_fits.trigger`)."""


@dataclass(frozen=True)
class StoredFit:
    version: int
    fitted_at: datetime
    trigger: str
    record: FitRecord


@dataclass(frozen=True)
class FitReport:
    fits: list[StoredFit]
    scored: int
    """Customers scored afterwards with the models in use."""
    deals_scored: int = 0
    """Open deals scored afterwards with the win model in use."""


def _fit(
    people: Population, models: InUse, now: datetime
) -> tuple[BgNbdFit | NotEnoughData, GammaGammaFit | NotEnoughData]:
    bg = fit_bg_nbd(people.histories, start=models.bg_nbd, fitted_at=now)
    gg = fit_gamma_gamma(people.histories, start=models.gamma_gamma, fitted_at=now)
    return bg, gg


async def store_fits(
    connection: asyncpg.Connection, records: list[FitRecord], now: datetime, trigger: str
) -> list[StoredFit]:
    """Record each fit as the next version of its model (the caller holds the writers'
    lock, so versions are taken one after another)."""
    stored = []
    for record in records:
        version = await connection.fetchval(
            """INSERT INTO model_fits (model, version, outcome, fitted_at, trigger, population,
                   excluded, parameters, log_likelihood, converged, message, shortfall)
               SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6, $7::jsonb, $8,
                      $9, $10, $11::jsonb
               FROM model_fits WHERE model = $1
               RETURNING version""",
            record.model,
            record.outcome,
            now,
            trigger,
            record.population,
            record.excluded,
            None if record.parameters is None else orjson.dumps(record.parameters).decode(),
            record.log_likelihood,
            record.converged,
            record.message,
            None if record.shortfall is None else orjson.dumps(record.shortfall).decode(),
        )
        stored.append(StoredFit(version, now, trigger, record))
    return stored


def _count(records: list[FitRecord]) -> None:
    for record in records:
        metrics.MODEL_FITS.labels(record.model, record.outcome).inc()
        if record.outcome == NOT_CONVERGED:
            metrics.MODEL_FIT_FAILURES.labels(record.model).inc()


async def fit_models(
    pool: asyncpg.Pool,
    valuation: Valuation,
    converter: Converter,
    *,
    trigger: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    watermark: Callable[[], datetime | None] = lambda: None,
) -> FitReport:
    """Fit every model: the lifetime value models over everyone with a purchase, the win
    model over the closed deals; record the fits, score with the models then in use (the
    conclusions of the scores at the `watermark`'s event time, `maintenance.Watermark`)."""
    started = time.perf_counter()
    async with pool.acquire() as connection:
        rows = await connection.fetch(POPULATION)
        models = await models_in_use(connection)
    now = clock()
    people = population(summaries(rows), now)
    bg, gg = await asyncio.to_thread(_fit, people, models, now)
    records = [record_of(BG_NBD, bg, people), record_of(GAMMA_GAMMA, gg, people)]
    _count(records)
    async with pool.acquire() as connection, connection.transaction():
        await lock(connection)
        stored = await store_fits(connection, records, now, trigger)
        models = await models_in_use(connection)
        scored = await score_all(connection, models, valuation, now, at=watermark())
    win = await fit_win(pool, converter, trigger=trigger, clock=lambda: now)
    metrics.MODEL_FIT_SECONDS.observe(time.perf_counter() - started)
    return FitReport([*stored, *win.fits], scored, win.deals_scored)


async def fit_win(
    pool: asyncpg.Pool,
    converter: Converter,
    *,
    trigger: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FitReport:
    """Fit the win model over the closed deals, record the fit, and score every open
    deal with the win model then in use."""
    async with pool.acquire() as connection:
        closed, _ = await closed_deals(connection, converter)
    now = clock()
    result = await asyncio.to_thread(fit_win_model, closed, fitted_at=now)
    records = [record_of(WIN_PROBABILITY, result, None, counted=len(closed))]
    _count(records)
    async with pool.acquire() as connection, connection.transaction():
        await lock(connection)
        stored = await store_fits(connection, records, now, trigger)
        deals = await score_open_deals(connection, converter, now, every=True)
    return FitReport(stored, 0, deals)


async def fit_when_due(
    pool: asyncpg.Pool,
    valuation: Valuation,
    converter: Converter,
    interval: timedelta,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    watermark: Callable[[], datetime | None] = lambda: None,
) -> FitReport | None:
    """The scheduled fit. Every model is due when its latest fit (by any replica, or on
    request) is `interval` old; the lifetime value models also when BG/NBD found too few
    customers last time and more have bought since (a new installation gets its first
    model as soon as it has the customers); the win model also whenever a deal closed
    since its latest fit (it is refitted as deals close)."""
    if await _lifetime_due(pool, interval, clock()):
        return await fit_models(
            pool, valuation, converter, trigger=SCHEDULE, clock=clock, watermark=watermark
        )
    if await _win_due(pool, interval, clock()):
        return await fit_win(pool, converter, trigger=SCHEDULE, clock=clock)
    return None


async def _latest(pool: asyncpg.Pool, model: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        """SELECT fitted_at, outcome, population + excluded AS counted FROM model_fits
           WHERE model = $1 ORDER BY version DESC LIMIT 1""",
        model,
    )
    return row


async def _lifetime_due(pool: asyncpg.Pool, interval: timedelta, now: datetime) -> bool:
    latest = await _latest(pool, BG_NBD)
    if latest is None or now - latest["fitted_at"] >= interval:
        return True
    if latest["outcome"] != NOT_ENOUGH_DATA:
        return False
    buyers = await pool.fetchval(f"SELECT count(*) FROM ({POPULATION}) p")
    return bool(buyers > latest["counted"])


async def _win_due(pool: asyncpg.Pool, interval: timedelta, now: datetime) -> bool:
    latest = await _latest(pool, WIN_PROBABILITY)
    if latest is None or now - latest["fitted_at"] >= interval:
        return True
    closed = await pool.fetchval(f"SELECT count(*) FROM ({CLOSED_DEALS}) c")
    return bool(closed != latest["counted"])
