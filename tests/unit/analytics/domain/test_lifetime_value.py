"""BG/NBD and Gamma-Gamma (`services.analytics.domain`: `bg_nbd`, `gamma_gamma`,
`purchase_history`, `lifetime_value`): the published parameters recovered from the CDNOW
sample of the 2005 papers, the formulas checked against their direct forms, lifetime
value, and the edge cases answered as values."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1

from services.analytics.domain.bg_nbd import (
    BgNbdFit,
    _bg_nbd_objective,
    bg_nbd_log_likelihood,
    expected_cumulative_purchases,
    expected_purchases,
    fit_bg_nbd,
    population_expected_purchases,
    probability_alive,
)
from services.analytics.domain.estimation import NotEnoughData
from services.analytics.domain.gamma_gamma import (
    GammaGammaFit,
    _gamma_gamma_objective,
    expected_average_spend,
    fit_gamma_gamma,
)
from services.analytics.domain.lifetime_value import lifetime_value, score
from services.analytics.domain.purchase_history import (
    InvalidHistory,
    PurchaseHistory,
    columns,
    history_from_summary,
)

CDNOW = Path(__file__).parents[3] / "data" / "cdnow_customers_summary.csv"
CALIBRATION_WEEKS = 38.86
"""The end of the 39-week calibration period, in weeks after 1 January 1997 (the `T` of
the customers who first bought that day)."""


def cdnow() -> list[PurchaseHistory]:
    with CDNOW.open(newline="") as file:
        return [
            PurchaseHistory(
                frequency=int(row["x"]),
                recency=float(row["t_x"]),
                age=float(row["T"]),
                average_repeat_spend=float(row["zbar"]) if int(row["x"]) else None,
            )
            for row in csv.DictReader(file)
        ]


@pytest.fixture(scope="module")
def histories() -> list[PurchaseHistory]:
    return cdnow()


@pytest.fixture(scope="module")
def bg(histories: list[PurchaseHistory]) -> BgNbdFit:
    fit = fit_bg_nbd(histories)
    assert isinstance(fit, BgNbdFit)
    return fit


@pytest.fixture(scope="module")
def gg(histories: list[PurchaseHistory]) -> GammaGammaFit:
    fit = fit_gamma_gamma(histories)
    assert isinstance(fit, GammaGammaFit)
    return fit


def within(value: float, published: float, share: float) -> bool:
    return abs(value - published) <= share * published


def test_the_sample_is_the_papers(histories: list[PurchaseHistory]) -> None:
    assert len(histories) == 2357
    assert sum(h.frequency for h in histories) == 2457  # repeat purchases in 39 weeks
    assert sum(1 for h in histories if h.frequency) == 946


def test_bg_nbd_recovers_the_published_parameters(bg: BgNbdFit) -> None:
    """Fader, Hardie and Lee (2005), section 5: r = 0.243, alpha = 4.414, a = 0.793,
    b = 2.426, log-likelihood -9582.4."""
    assert bg.converged, bg.message
    assert bg.customers == 2357
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert within(getattr(bg, name), value, 0.01), (name, getattr(bg, name))
    assert bg.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_gamma_gamma_recovers_the_published_parameters(
    gg: GammaGammaFit, histories: list[PurchaseHistory]
) -> None:
    """Fader and Hardie, "The Gamma-Gamma Model of Monetary Value" (2013), on the 946
    customers of the sample with a repeat purchase: p = 6.25, q = 3.74, gamma = 15.44."""
    assert gg.converged, gg.message
    assert gg.customers == 946
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert within(getattr(gg, name), value, 0.02), (name, getattr(gg, name))
    # the model's mean spend per purchase is close to the sample's mean repeat spend
    spends = [h.average_repeat_spend for h in histories if h.average_repeat_spend is not None]
    assert gg.mean_spend == pytest.approx(sum(spends) / len(spends), rel=0.01)


def test_the_log_likelihood_is_the_one_maximised(
    bg: BgNbdFit, histories: list[PurchaseHistory]
) -> None:
    at_fit = bg_nbd_log_likelihood(bg.r, bg.alpha, bg.a, bg.b, histories)
    assert at_fit == pytest.approx(bg.log_likelihood)
    for nudge in (0.97, 1.03):
        for name in ("r", "alpha", "a", "b"):
            moved = {
                n: getattr(bg, n) * (nudge if n == name else 1) for n in ("r", "alpha", "a", "b")
            }
            assert bg_nbd_log_likelihood(**moved, histories=histories) < at_fit


def test_the_gradients_are_those_of_the_log_likelihoods(
    histories: list[PurchaseHistory],
) -> None:
    """The optimiser is given analytic gradients: they match finite differences."""
    x, t_x, t = columns(histories)
    theta = np.log([0.3, 5.0, 0.9, 2.0])

    def bg_nbd(th: np.ndarray) -> float:
        return _bg_nbd_objective(th, x, t_x, t)[0]

    analytic = _bg_nbd_objective(theta, x, t_x, t)[1]
    numeric = approx_fprime(theta, bg_nbd, 1e-7)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-6)
    spenders = [h for h in histories if h.average_repeat_spend is not None]
    xs = np.array([h.frequency for h in spenders], dtype=float)
    zs = np.array([h.average_repeat_spend for h in spenders], dtype=float)
    theta = np.log([5.0, 3.0, 12.0])

    def gamma_gamma(th: np.ndarray) -> float:
        return _gamma_gamma_objective(th, xs, zs)[0]

    analytic = _gamma_gamma_objective(theta, xs, zs)[1]
    numeric = approx_fprime(theta, gamma_gamma, 1e-7)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-6)


def direct_conditional_expectation(
    fit: BgNbdFit, x: int, t_x: float, big_t: float, t: float
) -> float:
    """Equation 10 of the paper as printed, without the Euler transformation."""
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    head = (a + b + x - 1) / (a - 1)
    share = (alpha + big_t) / (alpha + big_t + t)
    bracket = 1 - share ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + big_t + t))
    alive = 1 + (x > 0) * a / (b + max(x, 1) - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)
    return float(head * bracket / alive)


def test_expected_purchases_follow_equation_10(bg: BgNbdFit) -> None:
    customers = [
        PurchaseHistory(0, 0.0, 38.86),
        PurchaseHistory(0, 0.0, 0.0),
        PurchaseHistory(1, 1.71, 38.86),
        PurchaseHistory(2, 30.43, 38.86),
        PurchaseHistory(7, 35.0, 36.0),
        PurchaseHistory(29, 34.1, 38.0),
        PurchaseHistory(150, 30.0, 31.0),
    ]
    for weeks in (1.0, 13.0, 39.0, 52.0):
        got = expected_purchases(bg, customers, weeks)
        want = [
            direct_conditional_expectation(bg, h.frequency, h.recency, h.age, weeks)
            for h in customers
        ]
        np.testing.assert_allclose(got, want, rtol=1e-9)
    # the sample's first customer (x = 2, t_x = 30.43, T = 38.86) over the next 39 weeks:
    # 1.226 in Fader and Hardie's worked example of the model
    assert expected_purchases(bg, [customers[3]], 39.0)[0] == pytest.approx(1.226, abs=1e-3)


def test_expected_purchases_of_very_frequent_buyers_stay_finite(bg: BgNbdFit) -> None:
    """Equation 10 as printed gives NaN from about a thousand purchases (its
    hypergeometric series overflows); the transformed one stays finite, below what the
    customer's expected rate alone would give ((r+x)/(alpha+T) a period) and, as they
    bought up to the end, not far below it."""
    for x in (1000, 3000, 10000):
        history = PurchaseHistory(x, 39.0, 39.0)
        got = expected_purchases(bg, [history], 52.0)[0]
        at_rate = (bg.r + x) / (bg.alpha + 39.0) * 52.0
        assert math.isfinite(got) and 0.5 * at_rate < got < at_rate
        with np.errstate(invalid="ignore"):
            assert math.isnan(direct_conditional_expectation(bg, x, 39.0, 39.0, 52.0))


def test_probability_alive(bg: BgNbdFit) -> None:
    recent, lapsed, never = (
        PurchaseHistory(5, 38.0, 38.86),
        PurchaseHistory(5, 10.0, 38.86),
        PurchaseHistory(0, 0.0, 38.86),
    )
    alive = probability_alive(bg, [recent, lapsed, never])
    assert alive[2] == 1.0  # nobody has seen them drop out
    assert 0.8 < alive[0] < 1.0  # bought last week
    assert alive[1] < 0.2  # bought every two weeks, then silent for seven months
    # the denominator of equation 10 is 1 / P(alive)
    want = direct_conditional_expectation(bg, 5, 10.0, 38.86, 39.0)
    head = (bg.a + bg.b + 5 - 1) / (bg.a - 1)
    share = (bg.alpha + 38.86) / (bg.alpha + 38.86 + 39.0)
    bracket = 1 - share ** (bg.r + 5) * hyp2f1(
        bg.r + 5, bg.b + 5, bg.a + bg.b + 5 - 1, 39.0 / (bg.alpha + 38.86 + 39.0)
    )
    assert want == pytest.approx(head * bracket * alive[1])


def test_expected_cumulative_purchases_follow_equation_9(bg: BgNbdFit) -> None:
    r, alpha, a, b = bg.r, bg.alpha, bg.a, bg.b
    weeks = np.array([0.0, 1.0, 39.0, 78.0, 520.0])
    direct = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + weeks)) ** r * hyp2f1(r, b, a + b - 1, weeks / (alpha + weeks)))
    )
    np.testing.assert_allclose(expected_cumulative_purchases(bg, weeks), direct, rtol=1e-9)
    assert expected_cumulative_purchases(bg, [-3.0])[0] == 0.0


def test_expected_purchases_of_the_population_match_the_calibration_period(
    bg: BgNbdFit, histories: list[PurchaseHistory]
) -> None:
    """Over the 39 weeks it was fitted on, the model expects about as many repeat
    purchases as the 2,457 made (the paper's figure 2), week by week increasing."""
    starts = [CALIBRATION_WEEKS - h.age for h in histories]
    weeks = np.arange(1, 40, dtype=float)
    cumulative = population_expected_purchases(bg, starts, np.minimum(weeks, CALIBRATION_WEEKS))
    assert abs(cumulative[-1] - 2457) / 2457 < 0.03
    assert np.all(np.diff(cumulative) >= 0)
    direct = sum(expected_cumulative_purchases(bg, [CALIBRATION_WEEKS - s])[0] for s in starts)
    assert cumulative[-1] == pytest.approx(direct)


def test_expected_spend_shrinks_towards_the_population_mean(
    gg: GammaGammaFit,
) -> None:
    few, many, none = (
        PurchaseHistory(1, 5.0, 30.0, 100.0),
        PurchaseHistory(20, 29.0, 30.0, 100.0),
        PurchaseHistory(0, 0.0, 30.0),
    )
    spend = expected_average_spend(gg, [few, many, none])
    assert gg.mean_spend < spend[0] < spend[1] < 100.0
    assert spend[2] == pytest.approx(gg.p * gg.gamma / (gg.q - 1))
    weight = gg.p / (gg.p + gg.q - 1)
    assert spend[0] == pytest.approx((1 - weight) * gg.mean_spend + weight * 100.0)


def test_lifetime_value_discounts_the_expected_purchases_times_spend(
    bg: BgNbdFit, gg: GammaGammaFit, histories: list[PurchaseHistory]
) -> None:
    sample = histories[:50]
    spend = expected_average_spend(gg, sample)
    year = expected_purchases(bg, sample, bg.periods(365))
    undiscounted = lifetime_value(bg, gg, sample, horizon_days=365, annual_discount_rate=0.0)
    np.testing.assert_allclose(undiscounted, year * spend, rtol=1e-9)
    one_step = lifetime_value(
        bg, gg, sample, horizon_days=365, annual_discount_rate=0.10, step_days=365
    )
    np.testing.assert_allclose(one_step, year * spend / 1.10, rtol=1e-9)
    monthly = lifetime_value(bg, gg, sample, horizon_days=365, annual_discount_rate=0.10)
    assert np.all(one_step < monthly) and np.all(monthly < undiscounted)
    longer = lifetime_value(bg, gg, sample, horizon_days=3 * 365, annual_discount_rate=0.10)
    assert np.all(longer > monthly)
    with pytest.raises(ValueError, match="discount rate"):
        lifetime_value(bg, gg, sample, annual_discount_rate=math.nan)
    with pytest.raises(ValueError, match="positive days"):
        lifetime_value(bg, gg, sample, horizon_days=0)


def test_scores_every_customer(
    bg: BgNbdFit, gg: GammaGammaFit, histories: list[PurchaseHistory]
) -> None:
    scores = score(bg, gg, histories)
    assert len(scores) == len(histories)
    first = scores[0]
    assert set(first.expected_purchases) == {30, 90, 365}
    assert (
        first.expected_purchases[30] < first.expected_purchases[90] < first.expected_purchases[365]
    )
    assert first.expected_purchases[365] == pytest.approx(
        expected_purchases(bg, histories[:1], 365 / 7)[0]
    )
    assert first.probability_active == pytest.approx(probability_alive(bg, histories[:1])[0])
    assert first.lifetime_value is not None and first.lifetime_value > 0
    one_purchase = next(s for s, h in zip(scores, histories, strict=True) if h.frequency == 0)
    assert one_purchase.probability_active == 1.0
    assert one_purchase.expected_spend == pytest.approx(gg.mean_spend)
    without_spend = score(bg, None, histories[:3])
    assert all(s.expected_spend is None and s.lifetime_value is None for s in without_spend)


def test_a_population_too_small_is_not_fitted() -> None:
    few = [PurchaseHistory(1, 1.0, 2.0, 10.0)] * 29
    assert fit_bg_nbd(few) == NotEnoughData("bg_nbd", "customers", 29, 30)
    assert fit_gamma_gamma(few[:19]) == NotEnoughData(
        "gamma_gamma", "customers with a repeat spend", 19, 20
    )
    nobody_came_back = [PurchaseHistory(0, 0.0, float(t)) for t in range(1, 200)]
    result = fit_bg_nbd(nobody_came_back)
    assert result == NotEnoughData("bg_nbd", "customers with a repeat purchase", 0, 10)
    assert isinstance(result, NotEnoughData)
    assert result.message == "bg_nbd: 0 customers with a repeat purchase, at least 10 needed"
    assert isinstance(fit_bg_nbd(few, minimum_customers=5), BgNbdFit)


def test_customers_without_a_repeat_spend_are_left_out_of_gamma_gamma(
    histories: list[PurchaseHistory], gg: GammaGammaFit
) -> None:
    one_purchase = [PurchaseHistory(0, 0.0, 10.0)] * 500
    free_repeats = [PurchaseHistory(2, 3.0, 10.0, None)] * 50
    fit = fit_gamma_gamma([*histories, *one_purchase, *free_repeats])
    assert isinstance(fit, GammaGammaFit)
    assert fit.customers == gg.customers
    assert (fit.p, fit.q, fit.gamma) == pytest.approx((gg.p, gg.q, gg.gamma), rel=1e-4)


def test_a_fit_that_does_not_converge_says_so() -> None:
    """Customers who all bought every week up to the end: nobody was seen dropping out,
    and the dropout parameters run off to their limit."""
    rng = np.random.default_rng(1)
    loyal = [PurchaseHistory(int(t), float(t), float(t)) for t in rng.integers(1, 40, 100)]
    fit = fit_bg_nbd(loyal)
    assert isinstance(fit, BgNbdFit)
    assert not fit.converged
    assert "ran to the limit" in fit.message
    with pytest.raises(ValueError, match="did not converge"):
        score(fit, None, loyal)


def test_gamma_gamma_with_an_infinite_mean_spend_does_not_converge() -> None:
    rng = np.random.default_rng(1)
    heavy = [
        PurchaseHistory(int(x), 1.0, 2.0, float(z) + 0.01)
        for x, z in zip(rng.integers(1, 5, 200), rng.pareto(0.5, 200), strict=True)
    ]
    fit = fit_gamma_gamma(heavy)
    assert isinstance(fit, GammaGammaFit)
    assert not fit.converged and fit.q <= 1
    assert "mean spend would be infinite" in fit.message
    assert fit.mean_spend == math.inf


def test_a_refit_can_start_from_the_previous_model(
    bg: BgNbdFit, histories: list[PurchaseHistory]
) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    again = fit_bg_nbd(histories, start=bg, fitted_at=at)
    assert isinstance(again, BgNbdFit) and again.converged
    assert again.fitted_at == at
    assert (again.r, again.alpha, again.a, again.b) == pytest.approx(
        (bg.r, bg.alpha, bg.a, bg.b), rel=1e-3
    )


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"frequency": -1}, "frequency must not be negative"),
        ({"frequency": 1.5}, "frequency must be a whole number"),
        ({"frequency": True}, "frequency must be a whole number"),
        ({"recency": math.nan}, "recency must be a finite number"),
        ({"recency": -1.0}, "recency must be between 0 and the age"),
        ({"recency": 11.0}, "recency must be between 0 and the age"),
        ({"recency": "3"}, "recency must be a number"),
        ({"age": math.inf}, "age must be a finite number"),
        ({"age": -2.0, "recency": 0.0}, "age must not be negative"),
        ({"average_repeat_spend": 0.0}, "average_repeat_spend must be positive"),
        ({"average_repeat_spend": -5.0}, "average_repeat_spend must be positive"),
        ({"average_repeat_spend": math.nan}, "average_repeat_spend must be a finite number"),
        ({"frequency": 0}, "recency must be 0 without a repeat purchase"),
        (
            {"frequency": 0, "recency": 0.0},
            "average_repeat_spend must be None without a repeat purchase",
        ),
    ],
)
def test_impossible_histories_are_refused(fields: dict[str, object], refusal: str) -> None:
    valid: dict[str, object] = {
        "frequency": 2,
        "recency": 4.0,
        "age": 10.0,
        "average_repeat_spend": 20.0,
    }
    with pytest.raises(InvalidHistory, match=refusal):
        PurchaseHistory(**{**valid, **fields})  # type: ignore[arg-type]


FIRST = datetime(2025, 1, 1, tzinfo=UTC)


def summarised(
    *, last: int, purchases: int, total: float | Decimal, first: float | Decimal, now: int
) -> PurchaseHistory:
    """A history from a summary whose purchases and end are days after `FIRST`."""
    return history_from_summary(
        first_purchase_at=FIRST,
        last_purchase_at=FIRST + timedelta(days=last),
        purchases=purchases,
        total_spend=total,
        first_spend=first,
        now=FIRST + timedelta(days=now),
    )


def test_a_history_from_a_profile_summary() -> None:
    four = summarised(last=21, purchases=4, total=Decimal("130.00"), first=Decimal("40.00"), now=70)
    assert four == PurchaseHistory(3, 3.0, 10.0, 30.0)
    daily = history_from_summary(
        first_purchase_at=FIRST,
        last_purchase_at=FIRST,
        purchases=1,
        total_spend=40.0,
        first_spend=40.0,
        now=FIRST + timedelta(days=3),
        period_days=1.0,
    )
    assert daily == PurchaseHistory(0, 0.0, 3.0, None)
    free = summarised(last=7, purchases=2, total=40.0, first=40.0, now=14)
    assert free.average_repeat_spend is None  # no repeat spend: left out of Gamma-Gamma


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"last": 7, "purchases": 2, "total": 30.0, "first": 40.0, "now": 14}, "negative"),
        ({"last": 7, "purchases": 2, "total": 80.0, "first": 40.0, "now": 3}, "in order"),
        ({"last": -1, "purchases": 2, "total": 80.0, "first": 40.0, "now": 3}, "in order"),
        ({"last": 0, "purchases": 0, "total": 0.0, "first": 0.0, "now": 0}, "at least one"),
        ({"last": 7, "purchases": 2, "total": math.nan, "first": 40.0, "now": 14}, "finite"),
    ],
)
def test_an_impossible_summary_is_refused(fields: dict[str, Any], refusal: str) -> None:
    with pytest.raises(InvalidHistory, match=refusal):
        summarised(**fields)
