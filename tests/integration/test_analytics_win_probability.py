"""The win model in the analytics tables (real PostgreSQL), on generated deals whose
chance of winning truly depends on their region: too few closed deals are said and the
stage's default stands; once enough have closed, the model learned from them gives the
open deals probabilities that, when those deals close, score a lower Brier score than
the stage's default, with the region named as the factor that moved them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from contracts.envelope import EventEnvelope
from services.analytics.domain.accuracy import brier_score
from services.analytics.domain.money import Converter
from services.analytics.domain.predictions import Valuation
from services.analytics.projections.fits import REQUEST, fit_models, fit_when_due
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.projections.maintenance import ledger_once
from tests.support.deals import Deals

NOW = datetime(2026, 11, 30, tzinfo=UTC)
CNY = Converter("CNY")


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
    deals = Deals(seed=7, now=NOW)
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

    # The ledger recorded each open deal's learned probability and its stage's default
    # when it was scored, and settled both by the deal's outcome.
    await ledger_once(pool, clock=lambda: NOW)
    rows = await pool.fetch("SELECT * FROM predictions WHERE kind = 'win'")
    by_model: dict[str, dict[uuid.UUID, asyncpg.Record]] = {}
    for row in rows:
        by_model.setdefault(row["model"], {})[row["opportunity_id"]] = row
    assert {m: len(r) for m, r in by_model.items()} == {
        "win_probability": 180,
        "stage_default": 180,
    }
    won = dict(zip(predicted, outcomes, strict=True))
    for model, said in (("win_probability", predicted), ("stage_default", dict.fromkeys(won, 0.5))):
        for deal, row in by_model[model].items():
            assert row["probability"] == said[deal] and row["stage"] == "proposal"
            assert (row["happened"], row["settled_by"]) == (
                won[deal],
                "won" if won[deal] else "lost",
            )
            assert row["held"] == ((said[deal] >= 0.5) == won[deal])
    settled = {
        model: brier_score([(r["probability"], r["happened"]) for r in deals_rows.values()])
        for model, deals_rows in by_model.items()
    }
    assert settled == pytest.approx(
        {"win_probability": learned_brier, "stage_default": default_brier}
    )
