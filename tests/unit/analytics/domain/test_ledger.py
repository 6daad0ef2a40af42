"""The ledger's pure part (`services.analytics.domain.ledger`): the probability of a
purchase within a window checked against a direct integration over the BG/NBD model,
the population's weekly expectations adding up to the customers' own, how each kind of
prediction is settled, and when an open deal is predicted again."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from scipy import integrate, stats

from services.analytics.domain import accuracy, bg_nbd, ledger
from services.analytics.domain.purchase_history import PurchaseHistory

FIT = bg_nbd.BgNbdFit(
    r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=math.nan, customers=2357,
    converged=True,
)  # fmt: skip
"""The parameters Fader, Hardie and Lee published for the CDNOW sample (weeks)."""


def direct_probability(history: PurchaseHistory, weeks: float) -> float:
    """P(a purchase within `weeks` | x, t_x, T) from the model's assumptions directly:
    the likelihood of the history is lambda^x (1-p)^x e^(-lambda T) while alive, plus
    lambda^x p (1-p)^(x-1) e^(-lambda t_x) having dropped out after the latest purchase;
    alive, a customer buys within the window with probability 1 - e^(-lambda t), having
    dropped out never. Integrated over lambda ~ gamma(r, alpha) (in closed form:
    E[lambda^x e^(-lambda s)] = G(r+x) alpha^r / (G(r) (alpha+s)^(r+x))) and over
    p ~ beta(a, b) numerically."""
    x, t_x, t = history.frequency, history.recency, history.age
    drop = stats.beta(FIT.a, FIT.b)

    def rate_moment(s: float) -> float:
        return math.exp(
            math.lgamma(FIT.r + x) - math.lgamma(FIT.r) + FIT.r * math.log(FIT.alpha)
            - (FIT.r + x) * math.log(FIT.alpha + s)
        )  # fmt: skip

    def over_p(f: Callable[[float], float]) -> float:
        value, _ = integrate.quad(lambda p: f(p) * drop.pdf(p), 0, 1, epsabs=1e-13, limit=200)
        return float(value)

    alive = over_p(lambda p: (1 - p) ** x) * rate_moment(t)
    dead = over_p(lambda p: p * (1 - p) ** (x - 1)) * rate_moment(t_x) if x else 0.0
    buys = over_p(lambda p: (1 - p) ** x) * (rate_moment(t) - rate_moment(t + weeks))
    return buys / (alive + dead)


@pytest.mark.parametrize(
    "history",
    [
        PurchaseHistory(0, 0.0, 30.0),
        PurchaseHistory(2, 30.4, 38.9),
        PurchaseHistory(5, 10.0, 38.0),  # bought often, then went quiet
    ],
)
def test_the_probability_of_a_purchase_in_the_window_is_the_models(
    history: PurchaseHistory,
) -> None:
    (computed,) = ledger.active_probability(FIT, [history], days=90)
    assert computed == pytest.approx(direct_probability(history, 90 / 7), rel=1e-4)
    (alive,) = bg_nbd.probability_alive(FIT, [history])
    assert 0 < computed < alive  # an active customer may still not buy in the window
    (longer,) = ledger.active_probability(FIT, [history], days=3650)
    assert computed < longer < alive
    assert ledger.active_probability(FIT, []) == []


def test_the_weeks_of_the_population_add_up_to_its_customers_expectations() -> None:
    people = [PurchaseHistory(x, min(x * 3.0, 30.0), 30.0) for x in range(6)]
    weeks = ledger.population_weeks(FIT, people, weeks=4)
    assert len(weeks) == 4 and all(w > 0 for w in weeks)
    four_weeks = bg_nbd.expected_purchases(FIT, people, 4.0).sum()
    assert sum(weeks) == pytest.approx(float(four_weeks))
    assert weeks == sorted(weeks, reverse=True)  # drop-outs make each week a little quieter
    assert ledger.population_weeks(FIT, [], weeks=2) == [0.0, 0.0]


def test_each_kind_is_settled_by_what_happened() -> None:
    assert ledger.count_settled(2.4, 2) == ledger.Settlement(held=True, actual=2.0)
    assert ledger.count_settled(2.4, 4).held is False
    assert ledger.count_settled(0.2, 0).held is True
    assert ledger.probability_settled(0.7, True) == ledger.Settlement(held=True, happened=True)
    assert ledger.probability_settled(0.7, False).held is False
    assert ledger.probability_settled(0.2, False).held is True
    assert ledger.probability_settled(0.5, True).held is True  # one half says "yes"
    assert ledger.said_settled(False) == ledger.Settlement(held=False, happened=False)
    with pytest.raises(ValueError, match="between 0 and 1"):
        ledger.probability_settled(1.2, True)


NOW = datetime(2026, 11, 23, tzinfo=UTC)
DAYS_2, HOURS_2 = timedelta(days=2), timedelta(hours=2)


@pytest.mark.parametrize(
    ("previous", "probability", "stage", "due"),
    [
        (None, 0.4, "proposal", True),
        (ledger.OpenDealPrediction(0.4, "qualified", NOW), 0.4, "proposal", True),
        (ledger.OpenDealPrediction(0.4, "proposal", NOW - DAYS_2), 0.42, "proposal", False),
        (ledger.OpenDealPrediction(0.4, "proposal", NOW - DAYS_2), 0.45, "proposal", True),
        (ledger.OpenDealPrediction(0.4, "proposal", NOW - HOURS_2), 0.8, "proposal", False),
    ],
)  # fmt: skip
def test_an_open_deal_is_predicted_again_when_its_stage_or_probability_moved(
    previous: ledger.OpenDealPrediction | None, probability: float, stage: str, due: bool
) -> None:
    assert ledger.deal_due(previous, probability, stage, NOW) is due


def test_the_error_of_an_aggregated_table_is_the_calibration_error() -> None:
    settled = [(0.9, True), (0.9, False), (0.15, False), (0.12, True), (0.55, True)]
    table = accuracy.calibration(settled)
    assert accuracy.table_error(table) == accuracy.calibration_error(settled)
    assert accuracy.table_error([b for b in table if b.count]) == accuracy.calibration_error(
        settled
    )
    assert accuracy.table_error([]) is None
