"""The analytics service's composition: what it stores, folds, publishes and serves."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from contracts.topics import Topic
from services.analytics import commands, views
from services.analytics.application import AnalyticsApplication
from services.analytics.dependencies import analytics_settings
from services.analytics.metrics import refresh_gauges
from services.analytics.migrations import MIGRATIONS
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.projections.maintenance import (
    Sweep,
    fit_once,
    ledger_once,
    live_watermark,
    rescore_once,
    score_once,
)
from services.analytics.projections.tables import OUTBOX_TABLE
from services.analytics.publishing import to_contract
from services.analytics.settings import AnalyticsSettings
from services.runtime.messaging.outbox import TableSource
from services.runtime.periodic import every
from services.runtime.service import BackgroundTask, ServiceDefinition, ServiceRuntime


def fold() -> AnalyticsFold:
    settings = AnalyticsSettings()
    return AnalyticsFold(
        settings.converter(),
        cache_capacity=settings.analytics_profile_cache_size,
        max_records=settings.analytics_fold_max_records,
    )


FOLD_NAME = AnalyticsFold.name
SWEEP_CHECK_SECONDS = 2.0
"""How often the sweep checks whether the fold has caught up with a backlog (`Sweep`)."""
FIT_CHECK_SECONDS = 300.0
"""How often, at most, the scheduled fit checks whether a fit is due (`fit_when_due`)."""


def background(runtime: ServiceRuntime) -> Sequence[BackgroundTask]:
    settings = analytics_settings(runtime)
    assert runtime.pool is not None
    pool = runtime.pool
    watermark = live_watermark(
        lambda: all(c.caught_up for c in runtime.consumers if c.name == FOLD_NAME),
        quiet_seconds=settings.analytics_history_quiet_seconds,
    )
    sweep = Sweep(pool, watermark, settings.analytics_sweep_interval_seconds)

    async def rescore() -> None:
        await rescore_once(pool, watermark)

    valuation = settings.valuation()
    converter = settings.converter()

    async def score() -> None:
        await score_once(pool, valuation, converter, watermark)

    async def fit() -> None:
        await fit_once(pool, valuation, converter, settings.fit_interval, watermark)

    async def settle() -> None:
        await ledger_once(pool)

    return [
        partial(every, settings.analytics_rescore_interval_seconds, rescore, "RFM re-scoring"),
        # checks often, sweeps at most every CRM_ANALYTICS_SWEEP_INTERVAL_SECONDS (`Sweep`)
        partial(
            every,
            min(settings.analytics_sweep_interval_seconds, SWEEP_CHECK_SECONDS),
            sweep,
            "time-based sweep",
        ),
        partial(every, settings.analytics_rescore_interval_seconds, score, "model scoring"),
        partial(
            every,
            min(settings.analytics_fit_interval_seconds / 10, FIT_CHECK_SECONDS),
            fit,
            "model fitting",
        ),
        partial(every, settings.analytics_ledger_interval_seconds, settle, "prediction ledger"),
    ]


DEFINITION = ServiceDefinition(
    name="analytics",
    title="CRM analytics service",
    description=(
        f"Folds `{Topic.CUSTOMER}`, `{Topic.SALES}` and `{Topic.INTERACTION}` into one "
        "analytic profile per customer: RFM scores by quintile, lifecycle stage, value tier, "
        "satisfaction, built-in and defined segments with their history, churn warnings, "
        "satisfaction views and overviews; fits the lifetime value models (BG/NBD, "
        "Gamma-Gamma) on a schedule and on request and scores every customer with them; "
        "keeps a ledger of its predictions and settles each against what happened. "
        "Segment changes, churn warnings, predictions and their settlement are published "
        f"on `{Topic.ANALYTICS}`."
    ),
    topic=Topic.ANALYTICS,
    application_class=AnalyticsApplication,
    translate=to_contract,
    projections=lambda: [fold()],
    routers=[commands.router, views.router],
    outboxes=lambda: [TableSource(OUTBOX_TABLE, name=f"{Topic.ANALYTICS}:conclusions")],
    migrations=(MIGRATIONS,),
    background=background,
    gauges=[refresh_gauges],
)
