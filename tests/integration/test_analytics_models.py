"""The lifetime value models in the analytics tables (real PostgreSQL): every fit kept as
a version of its model, a population too small said so, a fit that does not converge
leaving the previous model in use, every customer with a purchase scored after a fit and
a customer whose purchases changed scored again without one; scores equal to those of
the domain functions on the same purchases, and read by the churn rules."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest
from prometheus_client import REGISTRY

from contracts import customer_merges
from services.analytics.domain import lifetime_value as lv
from services.analytics.domain.money import Converter
from services.analytics.domain.predictions import PURCHASE_FIELDS, Valuation
from services.analytics.projections.fits import REQUEST, fit_models, fit_when_due
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.projections.scoring import score_stale
from services.analytics.projections.writers import lock
from tests.support import cdnow
from tests.support import purchases as purchases_support
from tests.support.events import envelope

NOW = datetime(2026, 11, 30, tzinfo=UTC)
"""The end of the calibration period, and the moment of every fit."""
CNY = Converter("CNY")
RELATIVE = 1e-4
"""How close the stored parameters and scores are to a direct fit on the same purchases."""


@pytest.fixture
def pool(analytics_pool: asyncpg.Pool) -> asyncpg.Pool:
    return analytics_pool


async def fold(pool: asyncpg.Pool, purchases: Sequence[cdnow.Purchase]) -> None:
    await purchases_support.fold(pool, purchases, NOW)


async def fit(pool: asyncpg.Pool) -> dict[str, dict[str, Any]]:
    report = await fit_models(pool, Valuation(), CNY, trigger=REQUEST, clock=lambda: NOW)
    return {f.record.model: {"version": f.version, **vars(f.record)} for f in report.fits}


def close(stored: float | Decimal | None, direct: float) -> bool:
    return stored is not None and math.isclose(
        float(stored), direct, rel_tol=RELATIVE, abs_tol=0.01
    )


async def scores(pool: asyncpg.Pool) -> dict[uuid.UUID, asyncpg.Record]:
    rows = await pool.fetch(
        """SELECT customer_id, expected_purchases_30d, expected_purchases_90d,
                  expected_purchases_365d, probability_active, expected_spend, lifetime_value,
                  bg_nbd_version, gamma_gamma_version, scored_at, scores_stale, value_tier
           FROM profiles"""
    )
    return {r["customer_id"]: r for r in rows}


async def test_fits_are_versions_and_every_customer_is_scored(pool: asyncpg.Pool) -> None:
    # Nobody bought yet: both models say so, with the count and the minimum.
    empty = await fit(pool)
    assert empty["bg_nbd"]["outcome"] == empty["gamma_gamma"]["outcome"] == "not_enough_data"
    assert empty["bg_nbd"]["parameters"] is None and empty["bg_nbd"]["version"] == 1
    assert empty["bg_nbd"]["shortfall"] == {"subject": "customers", "count": 0, "minimum": 30}
    assert empty["gamma_gamma"]["shortfall"]["minimum"] == 20

    purchases = cdnow.all_purchases(NOW)
    await fold(pool, purchases)
    stored = await scores(pool)
    assert len(stored) == 2357 and all(r["scores_stale"] for r in stored.values())
    async with pool.acquire() as connection, connection.transaction():
        await lock(connection)
        assert await score_stale(connection, Valuation(), NOW) == 0  # no model to score with

    fits = await fit(pool)
    bg, gg = fits["bg_nbd"], fits["gamma_gamma"]
    assert (bg["outcome"], bg["version"], bg["population"]) == ("fitted", 2, 2357)
    assert (gg["outcome"], gg["version"]) == ("fitted", 2)
    direct = cdnow.direct_fit(purchases, NOW)
    direct.assert_same_parameters(bg["parameters"], gg["parameters"], RELATIVE)
    # the published parameters of the CDNOW sample (Fader, Hardie and Lee 2005)
    for name, published in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert math.isclose(bg["parameters"][name], published, rel_tol=0.01), name
    assert math.isclose(bg["log_likelihood"], direct.bg.log_likelihood, rel_tol=1e-6)

    stored = await scores(pool)
    for customer, score in direct.scores().items():
        row = stored[customer]
        assert not row["scores_stale"] and row["scored_at"] == NOW
        assert (row["bg_nbd_version"], row["gamma_gamma_version"]) == (2, 2)
        for days, field in PURCHASE_FIELDS.items():
            assert close(row[field], score.expected_purchases[days]), (customer, field)
        assert close(row["probability_active"], score.probability_active)
        assert score.expected_spend is not None and score.lifetime_value is not None
        assert close(row["expected_spend"], score.expected_spend)
        assert close(row["lifetime_value"], score.lifetime_value)

    # The churn rules read the probability of being active (top and high tiers only).
    warned = {
        r["customer_id"]
        for r in await pool.fetch(
            "SELECT customer_id FROM churn_warnings WHERE 'probably_inactive' = ANY(reasons)"
        )
    }
    unlikely = {
        c
        for c, r in stored.items()
        if r["value_tier"] in ("top", "high") and r["probability_active"] < 0.5
    }
    assert warned == unlikely and warned

    # A new purchase: only that customer is scored again, without a fit.
    buyer = next(iter(direct.histories))
    before = stored[buyer]
    later = cdnow.Purchase(buyer, "CD-later", NOW - timedelta(hours=1), Decimal("40.00"))
    await fold(pool, [later])
    assert [c for c, r in (await scores(pool)).items() if r["scores_stale"]] == [buyer]
    async with pool.acquire() as connection, connection.transaction():
        await lock(connection)
        assert await score_stale(connection, Valuation(), NOW) == 1
    after = (await scores(pool))[buyer]
    assert not after["scores_stale"]
    again = lv.score(direct.bg, direct.gg, [cdnow.histories([*purchases, later], NOW)[buyer]])[0]
    assert close(after["expected_purchases_30d"], again.expected_purchases[30])
    assert after["expected_purchases_30d"] != before["expected_purchases_30d"]


async def test_a_fit_that_does_not_converge_leaves_the_model_in_use(pool: asyncpg.Pool) -> None:
    """Customers who all bought every week up to now: nobody was seen dropping out, the
    dropout parameters are not identified, and the fit says so."""
    await fold(pool, cdnow.all_purchases(NOW, limit=60))
    first = await fit(pool)
    assert first["bg_nbd"]["outcome"] == "fitted"
    failures = REGISTRY.get_sample_value("crm_model_fit_failures_total", {"model": "bg_nbd"}) or 0.0
    loyal = [
        cdnow.Purchase(customer, f"LOYAL-{n}-{week}", NOW - timedelta(weeks=week), Decimal("9.90"))
        for n in range(500)
        for customer in [uuid.uuid5(cdnow.NAMESPACE, f"loyal-{n}")]
        for week in range(1 + (n * 7) % 39)
    ]
    await fold(pool, loyal)
    second = await fit(pool)
    bg = second["bg_nbd"]
    assert (bg["outcome"], bg["version"], bg["converged"]) == ("not_converged", 2, False)
    assert "ran to the limit" in bg["message"]
    assert (
        REGISTRY.get_sample_value("crm_model_fit_failures_total", {"model": "bg_nbd"})
        == failures + 1
    )
    # every customer, the new ones too, scored with the model in use: version 1
    versions = {r["bg_nbd_version"] for r in (await scores(pool)).values()}
    assert versions == {1}
    stored = await pool.fetchrow(
        "SELECT parameters::text AS p FROM model_fits WHERE model = 'bg_nbd' AND version = 2"
    )
    assert set(orjson.loads(stored["p"])) == {"r", "alpha", "a", "b", "period_days"}


async def test_the_scheduled_fit_runs_when_due(pool: asyncpg.Pool) -> None:
    """Once an interval after the latest fit, and sooner while the population was too
    small and more customers have bought since."""
    day = timedelta(days=1)

    async def scheduled(at: datetime) -> list[str] | None:
        report = await fit_when_due(pool, Valuation(), CNY, day, clock=lambda: at)
        return None if report is None else [f.record.outcome for f in report.fits]

    assert await scheduled(NOW) == ["not_enough_data"] * 3  # the win model too
    assert await scheduled(NOW + timedelta(hours=1)) is None  # nobody new bought
    await fold(pool, cdnow.all_purchases(NOW, limit=60))
    assert await scheduled(NOW + timedelta(hours=2)) == ["fitted", "fitted", "not_enough_data"]
    assert await scheduled(NOW + timedelta(hours=3)) is None
    assert await scheduled(NOW + timedelta(hours=2) + day) == [
        "fitted",
        "fitted",
        "not_enough_data",
    ]
    trigger = await pool.fetch("SELECT DISTINCT trigger FROM model_fits")
    assert [r["trigger"] for r in trigger] == ["schedule"]


async def merge_event(
    pool: asyncpg.Pool,
    kind: type[customer_merges.CustomerMerged | customer_merges.CustomerUnmerged],
    absorbed: uuid.UUID,
    survivor: uuid.UUID,
    merge_id: uuid.UUID,
    version: int,
) -> None:
    payload = kind(merge_id=merge_id, survivor_id=survivor)
    event = envelope(absorbed, version, payload, occurred_at=NOW, recorded_at=NOW)
    async with pool.acquire() as connection, connection.transaction():
        await AnalyticsFold(CNY, lambda: NOW).apply(connection, [event])


async def rescored(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as connection, connection.transaction():
        await lock(connection)
        return await score_stale(connection, Valuation(), NOW)


async def stale(pool: asyncpg.Pool) -> set[uuid.UUID]:
    return {
        r["customer_id"]
        for r in await pool.fetch("SELECT customer_id FROM profiles WHERE scores_stale")
    }


async def test_a_survivor_of_merges_is_scored_on_the_purchases_of_its_group(
    pool: asyncpg.Pool,
) -> None:
    """While a merge holds, the survivor's lifetime value and probability of being active
    count what the customer merged into it bought; undoing it scores it on its own."""
    purchases = cdnow.all_purchases(NOW)
    await fold(pool, purchases)
    await fit(pool)
    direct = cdnow.direct_fit(purchases, NOW)
    buyers = [c for c, h in direct.histories.items() if h.frequency >= 2]
    survivor, absorbed = buyers[0], buyers[1]
    merge_id = uuid.uuid4()

    await merge_event(pool, customer_merges.CustomerMerged, absorbed, survivor, merge_id, 2)
    assert survivor in await stale(pool)  # its group's purchases are more than its own
    await rescored(pool)
    assert not await stale(pool)
    together = [
        dataclasses.replace(p, customer_id=survivor) if p.customer_id == absorbed else p
        for p in purchases
    ]
    group = lv.score(direct.bg, direct.gg, [cdnow.histories(together, NOW)[survivor]])[0]
    own = direct.scores()[survivor]
    assert group.expected_purchases[365] != own.expected_purchases[365]
    row = (await scores(pool))[survivor]
    for days, field in PURCHASE_FIELDS.items():
        assert close(row[field], group.expected_purchases[days]), field
    assert group.lifetime_value is not None
    assert close(row["lifetime_value"], float(group.lifetime_value))
    listed = await pool.fetch("SELECT customer_id FROM profiles WHERE lifetime_value IS NOT NULL")
    assert absorbed in {r["customer_id"] for r in listed}  # still scored on its own, unlisted

    # A fit while the merge holds counts the group once, by its combined purchases.
    fits = await fit(pool)
    assert fits["bg_nbd"]["population"] == len(direct.histories) - 1
    # (the likelihood surface is flat: a fit started from the last one stops at parameters
    # a few tenths of a percent away, with the same likelihood to a millionth)
    grouped = cdnow.direct_fit(together, NOW)
    assert math.isclose(fits["bg_nbd"]["log_likelihood"], grouped.bg.log_likelihood, rel_tol=1e-6)
    gg = fits["gamma_gamma"]
    assert gg["parameters"]["customers"] == grouped.gg.customers
    assert math.isclose(gg["log_likelihood"], grouped.gg.log_likelihood, rel_tol=1e-6)

    await merge_event(pool, customer_merges.CustomerUnmerged, absorbed, survivor, merge_id, 3)
    assert survivor in await stale(pool)
    await rescored(pool)
    row = (await scores(pool))[survivor]
    for days, field in PURCHASE_FIELDS.items():
        assert close(row[field], own.expected_purchases[days]), field
