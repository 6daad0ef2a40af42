"""The lifetime value models as the service keeps them (`services.analytics.domain.
predictions`): the population read from profile summaries, fits as records (fitted, not
converged, not enough data: never made-up parameters), and scores as profile fields that
the rule language reads."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.analytics.domain.bg_nbd import BG_NBD, BgNbdFit
from services.analytics.domain.estimation import NotEnoughData
from services.analytics.domain.lifetime_value import CustomerScore
from services.analytics.domain.predictions import (
    SCORE_FIELDS,
    SCORE_MONEY_FIELDS,
    Summary,
    bg_nbd_of,
    population,
    record_of,
    score_fields,
)
from services.analytics.domain.profile import Profile
from services.analytics.domain.purchase_history import PurchaseHistory
from services.analytics.domain.rules import FIELDS, MONEY_FIELDS, NUMBER
from services.analytics.domain.segments import field_values

NOW = datetime(2026, 6, 30, tzinfo=UTC)


def summary(**changes: object) -> Summary:
    fields: dict[str, object] = {
        "customer_id": uuid.uuid4(),
        "purchase_count": 3,
        "total_spend": Decimal("70.00"),
        "first_spend": Decimal("10.00"),
        "first_purchase_at": NOW - timedelta(weeks=10),
        "last_purchase_at": NOW - timedelta(weeks=2),
    }
    return Summary(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_population_reads_the_summaries_and_leaves_out_what_cannot_be() -> None:
    usual = summary()
    future = summary(last_purchase_at=NOW + timedelta(days=3))  # a contract signed ahead
    old = summary(first_spend=None)  # stored before the first amount was kept
    people = population([usual, future, old], NOW)
    assert people.customers == [usual.customer_id, old.customer_id]
    assert people.excluded == [future.customer_id]
    assert people.histories[0] == PurchaseHistory(2, 8.0, 10.0, 30.0)
    assert people.histories[1].average_repeat_spend is None  # unknown, not guessed


def test_fits_are_recorded_as_they_concluded() -> None:
    people = population([summary()], NOW)
    short = record_of(BG_NBD, NotEnoughData(BG_NBD, "customers", 1, 30), people)
    assert (short.outcome, short.parameters, short.converged) == ("not_enough_data", None, False)
    assert short.shortfall == {"subject": "customers", "count": 1, "minimum": 30}
    assert short.message == "bg_nbd: 1 customers, at least 30 needed"
    stuck = BgNbdFit(0.2, 4.0, 3e-7, 2.0, -100.0, 1, False, "a ran to the limit")
    failed = record_of(BG_NBD, stuck, people)
    assert (failed.outcome, failed.usable, failed.message) == (
        "not_converged",
        False,
        "a ran to the limit",
    )
    fitted = record_of(BG_NBD, BgNbdFit(0.2, 4.0, 0.8, 2.4, -9.5, 1, True), people)
    assert fitted.usable and fitted.parameters == {
        "r": 0.2,
        "alpha": 4.0,
        "a": 0.8,
        "b": 2.4,
        "period_days": 7.0,
    }
    assert bg_nbd_of(fitted.parameters, customers=1, fitted_at=NOW).periods(14) == 2.0


def test_scores_are_profile_fields_in_cents_and_never_not_finite() -> None:
    fields = score_fields(CustomerScore({30: 0.25, 90: math.inf, 365: 1.5}, 0.8, 12.345, math.nan))
    assert fields == {
        "expected_purchases_30d": 0.25,
        "expected_purchases_90d": None,
        "expected_purchases_365d": 1.5,
        "probability_active": 0.8,
        "expected_spend": Decimal("12.35"),
        "lifetime_value": None,
    }


def test_every_score_is_a_numeric_rule_field_of_the_profile() -> None:
    profile = Profile(uuid.uuid4(), expected_spend=Decimal("12.30"), probability_active=0.4)
    values = field_values(profile, NOW)
    for name in SCORE_FIELDS:
        assert FIELDS[name][0] == NUMBER and name in values
    assert set(SCORE_MONEY_FIELDS) <= set(MONEY_FIELDS)
    assert values["expected_spend"] == Decimal("12.30") and values["probability_active"] == 0.4
    assert set(values) == set(FIELDS)
