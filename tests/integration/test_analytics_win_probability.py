"""The win model in the analytics tables (real PostgreSQL), on generated deals whose
chance of winning truly depends on their region: too few closed deals are said and the
stage's default stands; once enough have closed, the model learned from them gives the
open deals probabilities that, when those deals close, score a lower Brier score than
the stage's default, with the region named as the factor that moved them."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from contracts import sales
from contracts.envelope import EventEnvelope, payload_example
from services.analytics.domain.accuracy import brier_score
from services.analytics.domain.money import Converter
from services.analytics.domain.predictions import Valuation
from services.analytics.projections.fits import REQUEST, fit_models, fit_when_due
from services.analytics.projections.fold import AnalyticsFold
from tests.support.events import envelope

NOW = datetime(2026, 11, 30, tzinfo=UTC)
CNY = Converter("CNY")
WIN_RATE = {"华东": 0.8, "华北": 0.15}
"""The true chance of winning a deal at the proposal stage, by region."""
OPENED = payload_example(sales.OpportunityOpened)
MOVED = payload_example(sales.OpportunityStageChanged)
PLANNED = payload_example(sales.ActivityPlanned)


class Deals:
    """Events of generated deals: opened as leads, moved to proposal, some activities."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.open: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
        self.region: dict[uuid.UUID, str] = {}

    def event(
        self, customer: uuid.UUID, deal: uuid.UUID, version: int, payload: Any, at: datetime
    ) -> EventEnvelope[Any]:
        return envelope(
            customer, version, payload, aggregate_id=deal, event_id=uuid.uuid4(), occurred_at=at
        )

    def opened(self, count: int) -> list[EventEnvelope[Any]]:
        events = []
        for n in range(count):
            customer, deal = uuid.uuid4(), uuid.uuid4()
            region = self.rng.choice(list(WIN_RATE))
            at = NOW - timedelta(days=self.rng.randint(40, 120))
            opened = sales.OpportunityOpened.model_validate(
                {**OPENED, "opportunity_id": str(deal), "region": region, "owner": f"销售{n % 3}"}
            )
            moved = sales.OpportunityStageChanged.model_validate(
                {**MOVED, "opportunity_id": str(deal), "from_stage": "lead", "to_stage": "proposal"}
            )
            events += [
                self.event(customer, deal, 1, opened, at),
                self.event(customer, deal, 2, moved, at + timedelta(days=10)),
            ]
            for a in range(self.rng.randint(0, 3)):
                activity = sales.ActivityPlanned.model_validate(
                    {**PLANNED, "opportunity_id": str(deal), "activity_id": f"A-{a}"}
                )
                events.append(self.event(customer, deal, 3 + a, activity, at))
            self.open[deal] = (customer, region)
            self.region[deal] = region
        return events

    def closed(self, deals: Sequence[uuid.UUID]) -> tuple[list[EventEnvelope[Any]], list[bool]]:
        """The deals closed from proposal, won at their region's rate."""
        events, outcomes = [], []
        for deal in deals:
            customer, region = self.open.pop(deal)
            won = self.rng.random() < WIN_RATE[region]
            moved = sales.OpportunityStageChanged.model_validate(
                {
                    **MOVED,
                    "opportunity_id": str(deal),
                    "from_stage": "proposal",
                    "to_stage": "won" if won else "lost",
                    "probability": 100 if won else 0,
                    "lost_reason": None if won else "价格",
                }
            )
            events.append(self.event(customer, deal, 10, moved, NOW - timedelta(days=1)))
            outcomes.append(won)
        return events, outcomes


async def fold(pool: asyncpg.Pool, events: list[EventEnvelope[Any]]) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await AnalyticsFold(CNY, lambda: NOW).apply(connection, events)


async def fit(pool: asyncpg.Pool) -> dict[str, Any]:
    report = await fit_models(pool, Valuation(), CNY, trigger=REQUEST, clock=lambda: NOW)
    (win,) = [f.record for f in report.fits if f.record.model == "win_probability"]
    return {**vars(win), "deals_scored": report.deals_scored}


async def open_deals(pool: asyncpg.Pool) -> dict[uuid.UUID, asyncpg.Record]:
    rows = await pool.fetch(
        """SELECT opportunity_id, stage, win_probability, win_baseline,
                  win_factors::text AS factors, win_model_version
           FROM opportunities WHERE stage NOT IN ('won', 'lost')"""
    )
    return {r["opportunity_id"]: r for r in rows}


async def test_the_learned_win_probability_beats_the_stage_default(
    analytics_pool: asyncpg.Pool,
) -> None:
    pool = analytics_pool
    deals = Deals(seed=7)
    await fold(pool, deals.opened(400))
    events, _ = deals.closed(list(deals.open)[:20])
    await fold(pool, events)

    # 20 closed deals: too few; the open deals keep their stage's default alone.
    few = await fit(pool)
    assert (few["outcome"], few["shortfall"]) == (
        "not_enough_data",
        {"subject": "closed deals", "count": 20, "minimum": 30},
    )
    assert {r["win_probability"] for r in (await open_deals(pool)).values()} == {None}

    # 220 closed deals: the model learns that the region matters.
    events, _ = deals.closed(list(deals.open)[:200])
    await fold(pool, events)
    assert await fit_when_due(pool, Valuation(), CNY, timedelta(days=1), clock=lambda: NOW)
    learned = await pool.fetchrow(
        """SELECT outcome, population, parameters::text AS parameters FROM model_fits
           WHERE model = 'win_probability' ORDER BY version DESC LIMIT 1"""
    )
    assert (learned["outcome"], learned["population"]) == ("fitted", 220)
    scored = await open_deals(pool)
    assert len(scored) == 180 and all(r["win_model_version"] == 2 for r in scored.values())
    # the region moved every deal most, towards winning in 华东 and away from it in 华北
    for deal, row in scored.items():
        top = orjson.loads(row["factors"])[0]
        assert (top["feature"], top["level"]) == ("region", deals.region[deal])
        assert (top["contribution"] > 0) == (deals.region[deal] == "华东")

    # The open deals close: the learned probabilities held better than the default.
    predicted = {deal: scored[deal]["win_probability"] for deal in deals.open}
    events, outcomes = deals.closed(list(predicted))
    await fold(pool, events)
    learned_brier = brier_score(list(zip(predicted.values(), outcomes, strict=True)))
    default_brier = brier_score([(0.5, won) for won in outcomes])  # proposal: 50 %
    assert learned_brier is not None and default_brier is not None
    assert learned_brier < default_brier - 0.05, (learned_brier, default_brier)
    east = [p for deal, p in predicted.items() if deals.region[deal] == "华东"]
    north = [p for deal, p in predicted.items() if deals.region[deal] == "华北"]
    assert min(east) > max(north)
