"""The ledger of predictions in the analytics tables (real PostgreSQL), on a population
that buys as the BG/NBD model says customers buy: a fit records each customer's
predictions once per window however often it runs, and the population's purchases per
week; when the windows end, each prediction is settled with exactly the purchases made
in its window (counted here again from the generated purchases), and the expectations
come close to what happened. A churn warning is a prediction settled by whether the
customer bought again; a person's prediction on an activity is settled as its owner
says. Each prediction and settlement is an event in the outbox."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest

from contracts import sales
from contracts.analytics import NO_CUSTOMER
from contracts.envelope import payload_example
from contracts.registry import parse_event
from services.analytics.domain.money import Converter
from services.analytics.domain.predictions import Valuation
from services.analytics.projections.fits import REQUEST, fit_models
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.projections.maintenance import ledger_once
from tests.support import purchases as purchases_support
from tests.support.cdnow import Purchase
from tests.support.events import envelope

NOW = datetime(2026, 6, 1, tzinfo=UTC)
"""The moment of the first fit: the end of the calibration period."""
CNY = Converter("CNY")
TRUE = {"r": 0.6, "alpha": 8.0, "a": 0.7, "b": 3.0}
"""The BG/NBD parameters the population buys by (rate per week)."""
CUSTOMERS = 800


def generated(seed: int = 11) -> list[Purchase]:
    """Customers who first bought in the year before `NOW` and then buy at their own
    Poisson rate, dropping out after a repeat purchase with their own probability, for
    70 weeks from `NOW`."""
    rng = random.Random(seed)
    end = NOW + timedelta(weeks=70)
    found = []
    for n in range(CUSTOMERS):
        customer = uuid.uuid5(NO_CUSTOMER, f"ledger-{n}")
        rate = rng.gammavariate(TRUE["r"], 1 / TRUE["alpha"])
        drop = rng.betavariate(TRUE["a"], TRUE["b"])
        moment = NOW - timedelta(weeks=rng.uniform(1, 52))
        k = 0
        while moment < end:
            amount = Decimal(rng.randint(50, 500))
            found.append(Purchase(customer, f"L-{n}-{k}", moment, amount))
            if k > 0 and rng.random() < drop:
                break
            k += 1
            moment += timedelta(weeks=min(rng.expovariate(rate), 1000.0))
    return found


async def fit(pool: asyncpg.Pool, at: datetime) -> None:
    await fit_models(pool, Valuation(), CNY, trigger=REQUEST, clock=lambda: at)


async def settle(pool: asyncpg.Pool, at: datetime) -> None:
    await ledger_once(pool, clock=lambda: at)


async def ledger(pool: asyncpg.Pool, **where: Any) -> list[asyncpg.Record]:
    condition = " AND ".join(f"{k} = ${i + 1}" for i, k in enumerate(where)) or "TRUE"
    rows: list[asyncpg.Record] = await pool.fetch(
        f"SELECT * FROM predictions WHERE {condition}", *where.values()
    )
    return rows


async def published(pool: asyncpg.Pool) -> Counter[str]:
    """The prediction events in the outbox, each read as the contracts read it."""
    kinds: Counter[str] = Counter()
    for row in await pool.fetch("SELECT envelope FROM outbox ORDER BY position"):
        event = parse_event(bytes(row["envelope"]))
        if event.event_type.startswith("analytics.prediction_"):
            kinds[event.event_type] += 1
    return kinds


def counted(purchases: list[Purchase], customer: uuid.UUID, start: datetime, end: datetime) -> int:
    return sum(1 for p in purchases if p.customer_id == customer and start < p.occurred_at <= end)


@pytest.fixture
def pool(analytics_pool: asyncpg.Pool) -> asyncpg.Pool:
    return analytics_pool


async def test_model_predictions_are_recorded_once_per_window_and_settled_by_what_was_bought(
    pool: asyncpg.Pool,
) -> None:
    purchases = generated()
    before = [p for p in purchases if p.occurred_at <= NOW]
    first_month = [p for p in purchases if NOW < p.occurred_at <= NOW + timedelta(days=30)]
    later = [p for p in purchases if p.occurred_at > NOW + timedelta(days=30)]
    buyers = {p.customer_id for p in before}
    await purchases_support.fold(pool, before, NOW)
    await fit(pool, NOW)

    made = await ledger(pool)
    kinds = Counter((r["kind"], r["window_days"]) for r in made)
    assert kinds == {
        ("purchases", 30): len(buyers),
        ("purchases", 90): len(buyers),
        ("purchases", 365): len(buyers),
        ("active", 90): len(buyers),
        ("population_week", 7): 4,
    }
    assert {r["model"] for r in made} == {"bg_nbd"} and {r["model_version"] for r in made} == {1}
    assert all(r["made_at"] == NOW and r["settled_at"] is None for r in made)
    active = [r for r in made if r["kind"] == "active"]
    assert all(0 <= r["probability"] <= r["probability_active"] <= 1 for r in active)

    # Fitted again the next day: every window is still open, nothing is recorded twice.
    await fit(pool, NOW + timedelta(days=1))
    assert len(await ledger(pool)) == len(made)

    # A month on: the 30-day windows and the first four weeks have ended.
    await purchases_support.fold(pool, first_month, NOW + timedelta(days=30))
    month = NOW + timedelta(days=30)
    await settle(pool, month)
    for row in await ledger(pool, kind="purchases", window_days=30):
        actual = counted(purchases, row["customer_id"], NOW, NOW + timedelta(days=30))
        assert row["settled_at"] == month and row["actual"] == actual
        assert row["held"] == (abs(actual - row["expected"]) < 1)
        assert row["settled_by"] == "window_ended"
    weeks = sorted(await ledger(pool, kind="population_week"), key=lambda r: r["horizon_at"])
    for k, row in enumerate(weeks):
        start, end = NOW + timedelta(weeks=k), NOW + timedelta(weeks=k + 1)
        actual = sum(counted(purchases, c, start, end) for c in buyers)
        assert row["actual"] == actual and row["customer_id"] == NO_CUSTOMER
    # who bought in the month is settled as active before the 90 days end, as "yes"
    early = {r["customer_id"]: r for r in await ledger(pool, kind="active") if r["settled_at"]}
    assert set(early) == {p.customer_id for p in first_month}
    assert all(r["happened"] and r["settled_by"] == "bought" for r in early.values())

    # the month's expectations, together, came close to what the population bought
    month_rows = await ledger(pool, kind="purchases", window_days=30)
    expected = sum(r["expected"] for r in month_rows)
    actual = sum(r["actual"] for r in month_rows)
    assert abs(expected - actual) < 0.2 * actual, (expected, actual)
    week_expected = sum(r["expected"] for r in weeks)
    assert abs(week_expected - expected) < 0.15 * expected  # four weeks: about a month

    # A fit after the month records the next 30-day window; the 90-day ones stay as they are.
    await fit(pool, month)
    assert len(await ledger(pool, kind="purchases", window_days=30)) == 2 * len(buyers)
    assert len(await ledger(pool, kind="purchases", window_days=90)) == len(buyers)
    assert len(await ledger(pool, kind="population_week")) == 8

    # After a year and more: every window of the first fit ended and was settled.
    await purchases_support.fold(pool, later, NOW + timedelta(weeks=70))
    await settle(pool, NOW + timedelta(days=400))
    first = [r for r in await ledger(pool) if r["made_at"] == NOW]
    assert all(r["settled_at"] is not None for r in first)
    for row in first:
        if row["kind"] not in ("purchases", "active"):
            continue
        horizon = NOW + timedelta(days=row["window_days"])
        actual = counted(purchases, row["customer_id"], NOW, horizon)
        if row["kind"] == "purchases":
            assert row["actual"] == actual, row
        else:
            assert row["happened"] == (actual > 0), row
            assert row["held"] == ((row["probability"] >= 0.5) == (actual > 0))
    settled = [r for r in await ledger(pool) if r["settled_at"] is not None]
    assert await published(pool) == {
        "analytics.prediction_made": len(await ledger(pool)),
        "analytics.prediction_settled": len(settled),
    }


OPENED = payload_example(sales.OpportunityOpened)
PLANNED = payload_example(sales.ActivityPlanned)
COMPLETED = payload_example(sales.ActivityCompleted)


async def test_a_persons_prediction_on_an_activity_is_settled_as_its_owner_says(
    pool: asyncpg.Pool,
) -> None:
    customer, deal = uuid.uuid4(), uuid.uuid4()
    at = NOW - timedelta(days=3)

    def activity(activity_id: str, predicted: str | None) -> sales.ActivityPlanned:
        return sales.ActivityPlanned.model_validate(
            {**PLANNED, "opportunity_id": str(deal), "activity_id": activity_id,
             "predicted_result": predicted, "scheduled_on": "2026-06-02"}
        )  # fmt: skip

    def completed(activity_id: str, held: bool | None) -> sales.ActivityCompleted:
        return sales.ActivityCompleted.model_validate(
            {**COMPLETED, "opportunity_id": str(deal), "activity_id": activity_id,
             "predicted_result": None if held is None else "客户同意进入报价",
             "prediction_held": held}
        )  # fmt: skip

    opened = sales.OpportunityOpened.model_validate({**OPENED, "opportunity_id": str(deal)})
    payloads = [
        opened,
        activity("held", "客户同意进入报价"),
        activity("missed", "客户同意进入报价"),
        activity("pending", "客户同意进入报价"),
        activity("nothing", None),
        completed("held", True),
        completed("missed", False),
        completed("nothing", None),
    ]
    events = [
        envelope(customer, v + 1, p, aggregate_id=deal, event_id=uuid.uuid4(), occurred_at=at)
        for v, p in enumerate(payloads)
    ]
    async with pool.acquire() as connection, connection.transaction():
        await AnalyticsFold(CNY, lambda: NOW).apply(connection, events)
    await settle(pool, NOW)
    await settle(pool, NOW)  # a second step records and settles nothing again

    rows = {r["activity_id"]: r for r in await ledger(pool, kind="activity")}
    assert set(rows) == {"held", "missed", "pending"}
    assert {r["made_by"] for r in rows.values()} == {PLANNED["owner"]}
    assert all(r["model"] == "person" and r["made_at"] == at for r in rows.values())
    assert rows["pending"]["horizon_at"] == datetime(2026, 6, 3, tzinfo=UTC)
    assert (rows["held"]["held"], rows["missed"]["held"], rows["pending"]["held"]) == (
        True,
        False,
        None,
    )
    assert rows["held"]["settled_by"] == "owner_said"
    assert await published(pool) == {
        "analytics.prediction_made": 3,
        "analytics.prediction_settled": 2,
    }


async def test_a_churn_warning_is_a_prediction_settled_by_whether_the_customer_bought(
    pool: asyncpg.Pool,
) -> None:
    # Ten big buyers who bought twice a week apart, two months ago (overdue for three
    # weeks, top tier), and forty small ones who keep buying. The warnings carry the
    # moment they became true (event time), so their 90 days are not over yet.
    big = [uuid.uuid4() for _ in range(10)]
    small = [uuid.uuid4() for _ in range(40)]
    history = [
        Purchase(c, f"B-{n}-{k}", NOW - timedelta(days=60 - 7 * k), Decimal(50_000))
        for n, c in enumerate(big)
        for k in range(2)
    ]
    history += [
        Purchase(c, f"S-{n}-{k}", NOW - timedelta(days=30 * k + 1), Decimal(100))
        for n, c in enumerate(small)
        for k in range(3)
    ]
    await purchases_support.fold(pool, history, NOW)
    warnings = {r["customer_id"]: r for r in await pool.fetch("SELECT * FROM churn_warnings")}
    assert set(warnings) == set(big)

    await settle(pool, NOW)
    rows = {r["customer_id"]: r for r in await ledger(pool, kind="churn")}
    assert set(rows) == set(big)
    for customer, row in rows.items():
        assert row["made_at"] == warnings[customer]["raised_at"]
        assert row["horizon_at"] == row["made_at"] + timedelta(days=90)
        assert row["model"] == "churn_rules" and "overdue_purchase" in row["reasons"]

    # Three of them come back within the 90 days: their warnings missed, at once.
    back = big[:3]
    returned = [Purchase(c, f"R-{c}", NOW + timedelta(days=10), Decimal(900)) for c in back]
    await purchases_support.fold(pool, returned, NOW + timedelta(days=10))
    await settle(pool, NOW + timedelta(days=11))
    rows = {r["customer_id"]: r for r in await ledger(pool, kind="churn")}
    assert {c for c, r in rows.items() if r["settled_at"]} == set(back)
    assert all(rows[c]["held"] is False and rows[c]["settled_by"] == "bought" for c in back)

    # The others stay away until the warning's horizon: it held.
    await settle(pool, NOW + timedelta(days=91))
    rows = {r["customer_id"]: r for r in await ledger(pool, kind="churn")}
    assert all(rows[c]["held"] and rows[c]["settled_by"] == "window_ended" for c in big[3:])
    # a warning still open records no second prediction
    assert len(await ledger(pool, kind="churn")) == len(big)
    payloads = [
        orjson.loads(bytes(r["envelope"]))["payload"]
        for r in await pool.fetch("SELECT envelope FROM outbox ORDER BY position")
    ]
    settled = [p for p in payloads if p.get("kind") == "churn" and "settled_by" in p]
    assert len(settled) == len(big)
