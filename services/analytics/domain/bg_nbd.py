"""The BG/NBD model of repeat purchases (pure), fitted by maximum likelihood.

Fader, Hardie and Lee, "'Counting Your Customers' the Easy Way: An Alternative to the
Pareto/NBD Model", Marketing Science 24(2), 2005, pp. 275-284. While active, a customer
buys at a steady rate (Poisson, rate lambda); after each purchase they may drop out for
good (probability p). Across customers lambda ~ gamma(r, alpha) and p ~ beta(a, b). Each
customer is summarised by `x` repeat purchases (purchases after the first), `t_x` the
time of the latest of them and `T` the time observed, both counted from the first
purchase, in periods of the fit (a week by default; `purchase_history`).

Numbers: scipy (optimize, special) on numpy arrays, one array operation per formula for
the whole population. The optimiser works on the logarithms of the parameters (they are
all positive), with the analytic gradient. A population too small to fit gives
`NotEnoughData`; a fit that does not converge says so (`converged`, `message`) and the
caller keeps the previous model; customers without a repeat purchase have P(alive) = 1
(nobody has seen them drop out).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma, expit, gammaln, hyp2f1

from services.analytics.domain.estimation import NotEnoughData, Vector, maximise
from services.analytics.domain.purchase_history import DEFAULT_PERIOD_DAYS, PurchaseHistory, columns

BG_NBD = "bg_nbd"
"""The model's name, as `NotEnoughData.model` gives it."""
MINIMUM_CUSTOMERS = 30
"""Fewer customers than this and BG/NBD is not fitted."""
MINIMUM_REPEAT_CUSTOMERS = 10
"""Customers with a repeat purchase needed by BG/NBD: without them nothing tells how
often customers buy again or when they drop out."""


@dataclass(frozen=True)
class BgNbdFit:
    """A BG/NBD fit: lambda ~ gamma(r, alpha) (alpha in periods of `period_days` days),
    p ~ beta(a, b); the maximised log-likelihood, the customers it was fitted on, and
    whether the optimiser converged (when not, `message` says why and the parameters are
    where it stopped: keep the previous model)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool
    message: str = ""
    period_days: float = DEFAULT_PERIOD_DAYS
    fitted_at: datetime | None = None

    def periods(self, days: float) -> float:
        """Days in this fit's periods."""
        return days / self.period_days


BG_NBD_PARAMETERS = ("r", "alpha", "a", "b")


def _bg_nbd_terms(
    r: float, alpha: float, a: float, b: float, x: Vector, t_x: Vector, t: Vector
) -> tuple[Vector, Vector, NDArray[np.bool_]]:
    """The log-likelihood of each customer (equation 6 of the paper; A1 + A2 +
    ln(A3 + delta(x>0) A4) in Fader and Hardie's note "Implementing the BG/NBD Model for
    Customer Base Analysis in Excel"), the log of the ratio of the two terms (`z`, for
    P(alive) and the gradient), and x > 0.

        L(r, alpha, a, b | x, t_x, T) = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
            + delta(x>0) B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))

    and, since B(a+1, b+x-1) = B(a, b+x) a/(b+x-1), the second term is the first times
    exp(z), z = ln(a/(b+x-1)) + (r+x) ln((alpha+T)/(alpha+t_x)); so
    ln L = first + ln(1 + delta(x>0) exp(z)), computed as logaddexp(0, z) (no overflow)."""
    repeat = x > 0
    first = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x)
        - gammaln(b)
        - gammaln(a + b + x)
        - (r + x) * np.log(alpha + t)
    )
    z = (
        np.log(a)
        - np.log(b + np.maximum(x, 1) - 1)
        + (r + x) * (np.log(alpha + t) - np.log(alpha + t_x))
    )
    return first + np.where(repeat, np.logaddexp(0.0, z), 0.0), z, repeat


def bg_nbd_log_likelihood(
    r: float, alpha: float, a: float, b: float, histories: Sequence[PurchaseHistory]
) -> float:
    """The sample log-likelihood, equation 7 of the paper: the sum over customers of the
    log of equation 6."""
    return float(np.sum(_bg_nbd_terms(r, alpha, a, b, *columns(histories))[0]))


def _bg_nbd_total(theta: Vector, x: Vector, t_x: Vector, t: Vector) -> float:
    r, alpha, a, b = np.exp(theta)
    return float(np.sum(_bg_nbd_terms(r, alpha, a, b, x, t_x, t)[0]))


def _bg_nbd_objective(theta: Vector, x: Vector, t_x: Vector, t: Vector) -> tuple[float, Vector]:
    """The negative mean log-likelihood over log-parameters, and its gradient (the
    derivatives of A1 + A2 + ln(A3 + delta A4) through digamma; s is the share of the
    second term, delta * A4 / (A3 + A4))."""
    r, alpha, a, b = np.exp(theta)
    terms, z, repeat = _bg_nbd_terms(r, alpha, a, b, x, t_x, t)
    s = np.where(repeat, expit(z), 0.0)
    log_ratio = np.log(alpha + t) - np.log(alpha + t_x)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - np.log(alpha + t) + s * log_ratio
    d_alpha = (
        r / alpha - (r + x) / (alpha + t) + s * (r + x) * (1 / (alpha + t) - 1 / (alpha + t_x))
    )
    d_a = digamma(a + b) - digamma(a + b + x) + s / a
    d_b = (
        digamma(a + b)
        + digamma(b + x)
        - digamma(b)
        - digamma(a + b + x)
        - s / (b + np.maximum(x, 1) - 1)
    )
    scale = np.array([r, alpha, a, b])
    gradient = np.array([d_r.mean(), d_alpha.mean(), d_a.mean(), d_b.mean()]) * scale
    return -float(terms.mean()), -gradient


def fit_bg_nbd(
    histories: Sequence[PurchaseHistory],
    *,
    period_days: float = DEFAULT_PERIOD_DAYS,
    minimum_customers: int = MINIMUM_CUSTOMERS,
    minimum_repeat_customers: int = MINIMUM_REPEAT_CUSTOMERS,
    start: BgNbdFit | None = None,
    fitted_at: datetime | None = None,
) -> BgNbdFit | NotEnoughData:
    """Maximum-likelihood BG/NBD parameters of a population (equation 7 of the paper),
    from `start` (the previous fit) when given. `NotEnoughData` below the minimum number
    of customers or of customers with a repeat purchase: no parameters are made up."""
    if len(histories) < minimum_customers:
        return NotEnoughData(BG_NBD, "customers", len(histories), minimum_customers)
    x, t_x, t = columns(histories)
    repeaters = int(np.count_nonzero(x))
    if repeaters < minimum_repeat_customers:
        return NotEnoughData(
            BG_NBD, "customers with a repeat purchase", repeaters, minimum_repeat_customers
        )
    if start is not None and start.converged:
        alpha = start.alpha * start.period_days / period_days  # lambda's rate, per period
        initial = np.log([start.r, alpha, start.a, start.b])
    else:
        initial = np.array([0.0, math.log(max(float(t.mean()), 1.0)), 0.0, 0.0])
    optimum = maximise(
        lambda theta: _bg_nbd_objective(theta, x, t_x, t),
        initial,
        log_likelihood=lambda theta: _bg_nbd_total(theta, x, t_x, t),
        names=BG_NBD_PARAMETERS,
    )
    r, alpha, a, b = (float(v) for v in np.exp(optimum.parameters))
    return BgNbdFit(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=optimum.log_likelihood,
        customers=len(histories),
        converged=optimum.converged,
        message=optimum.message,
        period_days=period_days,
        fitted_at=fitted_at,
    )


def conditional_expectation(
    fit: BgNbdFit, x: Vector, t_x: Vector, t: Vector, periods: float
) -> Vector:
    """Equation 10 of the paper, E[Y(t) | x, t_x, T]:

        (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
                               * 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
        / (1 + delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))

    The hypergeometric function is taken through Euler's transformation,
    2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z), which turns the bracket into
    1 - ((alpha+T)/(alpha+T+t))^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; t/(alpha+T+t)):
    the same value, but its series stays small for customers with many purchases, where
    the direct form overflows (Fader and Hardie's note on the BG/NBD "#NUM!" error). The
    denominator is 1/P(alive)."""
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    horizon = np.asarray(periods, dtype=np.float64)
    share = (alpha + t) / (alpha + t + horizon)
    bracket = 1 - share ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, 1 - share)
    return (a + b + x - 1) / (a - 1) * bracket * p_alive(fit, x, t_x, t)


def p_alive(fit: BgNbdFit, x: Vector, t_x: Vector, t: Vector) -> Vector:
    """`probability_alive` on the arrays of `columns()`, computed once for several scores."""
    _, z, repeat = _bg_nbd_terms(fit.r, fit.alpha, fit.a, fit.b, x, t_x, t)
    return np.where(repeat, expit(-z), 1.0)


def expected_purchases(
    fit: BgNbdFit, histories: Sequence[PurchaseHistory], periods: float
) -> Vector:
    """Each customer's expected number of purchases in the next `periods` periods given
    their history (equation 10 of the paper)."""
    return conditional_expectation(fit, *columns(histories), periods)


def probability_alive(fit: BgNbdFit, histories: Sequence[PurchaseHistory]) -> Vector:
    """P(alive | x, t_x, T): the probability that each customer has not dropped out
    (Fader, Hardie and Lee, "Computing P(alive) Using the BG/NBD Model", 2008):

        1 / (1 + delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))

    1 for a customer without a repeat purchase: in this model a customer can only drop
    out right after a purchase, and nobody has seen them make one since the first."""
    return p_alive(fit, *columns(histories))


def expected_cumulative_purchases(fit: BgNbdFit, periods: Sequence[float] | Vector) -> Vector:
    """E[X(t)], the expected number of repeat purchases of a new customer in their first
    t periods (equation 9 of the paper):

        (a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))]

    through the same Euler transformation as equation 10 (it is equation 10 for x = 0,
    T = 0). Negative t (before the first purchase) counts 0."""
    r, alpha, a, b = fit.r, fit.alpha, fit.a, fit.b
    t = np.maximum(np.asarray(periods, dtype=np.float64), 0.0)
    share = alpha / (alpha + t)
    bracket = 1 - share ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b - 1, 1 - share)
    return (a + b - 1) / (a - 1) * bracket


def population_expected_purchases(
    fit: BgNbdFit, starts: Sequence[float] | Vector, ends: Sequence[float] | Vector
) -> Vector:
    """The population's expected cumulative repeat purchases at each of `ends`: the sum
    over customers of E[X(end - start)], `starts` being when each customer first bought
    (all on one time axis, in periods). Differences of consecutive values are the
    expected repeat purchases per period, to set against the actual ones (the paper's
    weekly "expected against actual" repeat purchases)."""
    first, customers = np.unique(np.asarray(starts, dtype=np.float64), return_counts=True)
    until = np.asarray(ends, dtype=np.float64)
    return np.array(
        [float(customers @ expected_cumulative_purchases(fit, end - first)) for end in until],
        dtype=np.float64,
    )
