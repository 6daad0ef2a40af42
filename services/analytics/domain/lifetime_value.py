"""Lifetime value and the probability of being active (pure): the BG/NBD model of repeat
purchases and the Gamma-Gamma model of spend per purchase, fitted by maximum likelihood.

- BG/NBD: Fader, Hardie and Lee, "'Counting Your Customers' the Easy Way: An Alternative
  to the Pareto/NBD Model", Marketing Science 24(2), 2005, pp. 275-284. While active, a
  customer buys at a steady rate (Poisson, rate lambda); after each purchase they may
  drop out for good (probability p). Across customers lambda ~ gamma(r, alpha) and
  p ~ beta(a, b). Each customer is summarised by `x` repeat purchases (purchases after
  the first), `t_x` the time of the latest of them and `T` the time observed, both
  counted from the first purchase, in periods of the fit (a week by default).
- Gamma-Gamma: Fader, Hardie and Lee, "RFM and CLV: Using Iso-Value Curves for Customer
  Base Analysis", Journal of Marketing Research 42(4), 2005, pp. 415-430, in the form of
  Fader and Hardie, "The Gamma-Gamma Model of Monetary Value" (2013). A customer's
  purchases scatter around their own mean spend (gamma(p, nu)), and that mean varies
  across customers (nu ~ gamma(q, gamma)). Fitted over the customers with at least one
  repeat purchase, from their number of repeat purchases and average repeat spend.

Numbers: scipy (optimize, special) on numpy arrays, one array operation per formula for
the whole population. The optimiser works on the logarithms of the parameters (they are
all positive), with the analytic gradient.

Honest edge cases: a population too small to fit gives `NotEnoughData`; a fit that does
not converge says so (`converged`, `message`) and the caller keeps the previous model;
customers without a repeat purchase have P(alive) = 1 (nobody has seen them drop out) and
the population's mean spend; a history that cannot be (negative, not finite, the latest
purchase after the end of observation, a spend of zero) is refused with `InvalidHistory`
at construction, naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma, expit, gammaln, hyp2f1

from services.analytics.domain.estimation import NotEnoughData, Vector, maximise

BG_NBD = "bg_nbd"
GAMMA_GAMMA = "gamma_gamma"
"""The models' names, as `NotEnoughData.model` gives them."""

DEFAULT_PERIOD_DAYS = 7.0
"""The unit of time of the models: histories, parameters and horizons are in weeks unless
a fit says otherwise (`BgNbdFit.period_days`)."""

MINIMUM_CUSTOMERS = 30
"""Fewer customers than this and BG/NBD is not fitted."""
MINIMUM_REPEAT_CUSTOMERS = 10
"""Customers with a repeat purchase needed by BG/NBD: without them nothing tells how
often customers buy again or when they drop out."""
MINIMUM_SPENDERS = 20
"""Customers with a repeat purchase and its spend needed by Gamma-Gamma."""

PURCHASE_HORIZONS_DAYS = (30, 90, 365)
VALUE_HORIZON_DAYS = 365.0
ANNUAL_DISCOUNT_RATE = 0.10
VALUE_STEP_DAYS = 30.0


class InvalidHistory(ValueError):
    """A purchase history that cannot be: the message names the field and the value."""


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidHistory(f"{name} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidHistory(f"{name} must be a finite number, not {value!r}")
    return number


@dataclass(frozen=True)
class PurchaseHistory:
    """One customer as the models read it, times in periods of the fit.

    `frequency` (x): purchases after the first one; `recency` (t_x): time from the first
    purchase to the latest one (0 without a repeat purchase); `age` (T): time from the
    first purchase to the end of observation; `average_repeat_spend`: the mean amount of
    the repeat purchases (None without a repeat purchase, or when they cost nothing)."""

    frequency: int
    recency: float
    age: float
    average_repeat_spend: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.frequency, bool) or not isinstance(self.frequency, int):
            raise InvalidHistory(f"frequency must be a whole number, not {self.frequency!r}")
        if self.frequency < 0:
            raise InvalidHistory(f"frequency must not be negative, not {self.frequency}")
        recency = _finite("recency", self.recency)
        age = _finite("age", self.age)
        if age < 0:
            raise InvalidHistory(f"age must not be negative, not {age}")
        if not 0 <= recency <= age:
            raise InvalidHistory(f"recency must be between 0 and the age {age}, not {recency}")
        if self.frequency == 0 and recency != 0:
            raise InvalidHistory(f"recency must be 0 without a repeat purchase, not {recency}")
        spend = self.average_repeat_spend
        if spend is not None:
            if self.frequency == 0:
                raise InvalidHistory("average_repeat_spend must be None without a repeat purchase")
            if _finite("average_repeat_spend", spend) <= 0:
                raise InvalidHistory(f"average_repeat_spend must be positive, not {spend}")


def history_from_summary(
    *,
    first_purchase_at: datetime,
    last_purchase_at: datetime,
    purchases: int,
    total_spend: Decimal | float,
    first_spend: Decimal | float,
    now: datetime,
    period_days: float = DEFAULT_PERIOD_DAYS,
) -> PurchaseHistory:
    """A customer's history from what a profile can keep whatever the order of events:
    the number of purchases, their total, the first purchase (time and amount) and the
    latest one. Repeat purchases are those after the first; their average spend is the
    total less the first, divided by their number (None when they cost nothing)."""
    if purchases < 1:
        raise InvalidHistory(f"a history needs at least one purchase, not {purchases}")
    period = timedelta(days=period_days)
    if last_purchase_at < first_purchase_at or now < last_purchase_at:
        raise InvalidHistory(
            "purchases must be in order first <= latest <= now, not "
            f"{first_purchase_at.isoformat()}, {last_purchase_at.isoformat()}, {now.isoformat()}"
        )
    repeats = purchases - 1
    spend: float | None = None
    if repeats:
        repeat_total = _finite("total_spend", total_spend) - _finite("first_spend", first_spend)
        if repeat_total < 0:
            raise InvalidHistory(f"the repeat purchases cannot total {repeat_total} (negative)")
        spend = repeat_total / repeats if repeat_total > 0 else None
    return PurchaseHistory(
        frequency=repeats,
        recency=(last_purchase_at - first_purchase_at) / period if repeats else 0.0,
        age=(now - first_purchase_at) / period,
        average_repeat_spend=spend,
    )


def _columns(histories: Sequence[PurchaseHistory]) -> tuple[Vector, Vector, Vector]:
    x = np.fromiter((h.frequency for h in histories), np.float64, len(histories))
    t_x = np.fromiter((h.recency for h in histories), np.float64, len(histories))
    t = np.fromiter((h.age for h in histories), np.float64, len(histories))
    return x, t_x, t


# --- BG/NBD ------------------------------------------------------------------------------


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
    return float(np.sum(_bg_nbd_terms(r, alpha, a, b, *_columns(histories))[0]))


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
    x, t_x, t = _columns(histories)
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


def _conditional_expectation(
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
    return (a + b + x - 1) / (a - 1) * bracket * _alive(fit, x, t_x, t)


def _alive(fit: BgNbdFit, x: Vector, t_x: Vector, t: Vector) -> Vector:
    _, z, repeat = _bg_nbd_terms(fit.r, fit.alpha, fit.a, fit.b, x, t_x, t)
    return np.where(repeat, expit(-z), 1.0)


def expected_purchases(
    fit: BgNbdFit, histories: Sequence[PurchaseHistory], periods: float
) -> Vector:
    """Each customer's expected number of purchases in the next `periods` periods given
    their history (equation 10 of the paper)."""
    return _conditional_expectation(fit, *_columns(histories), periods)


def probability_alive(fit: BgNbdFit, histories: Sequence[PurchaseHistory]) -> Vector:
    """P(alive | x, t_x, T): the probability that each customer has not dropped out
    (Fader, Hardie and Lee, "Computing P(alive) Using the BG/NBD Model", 2008):

        1 / (1 + delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))

    1 for a customer without a repeat purchase: in this model a customer can only drop
    out right after a purchase, and nobody has seen them make one since the first."""
    return _alive(fit, *_columns(histories))


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


# --- Gamma-Gamma -------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaGammaFit:
    """A Gamma-Gamma fit: each purchase ~ gamma(p, nu), nu ~ gamma(q, gamma); the
    maximised log-likelihood, the customers it was fitted on (those with a repeat
    purchase and its spend), and whether it converged. With q <= 1 the population's mean
    spend is infinite, and the fit says it did not converge."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int
    converged: bool
    message: str = ""
    fitted_at: datetime | None = None

    @property
    def mean_spend(self) -> float:
        """The population's mean spend per purchase, p gamma / (q - 1) (q > 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else math.inf


GAMMA_GAMMA_PARAMETERS = ("p", "q", "gamma")


def _spenders(histories: Sequence[PurchaseHistory]) -> tuple[Vector, Vector]:
    chosen = [h for h in histories if h.average_repeat_spend is not None]
    x = np.fromiter((h.frequency for h in chosen), np.float64, len(chosen))
    spend = np.fromiter((h.average_repeat_spend or 0.0 for h in chosen), np.float64, len(chosen))
    return x, spend


def _gamma_gamma_terms(p: float, q: float, gamma: float, x: Vector, spend: Vector) -> Vector:
    """The log of the marginal density of a customer's average spend z given x purchases
    (Fader and Hardie 2013, the distribution of z-bar after integrating nu out):

        f(z | p, q, gamma; x) = G(px+q) / (G(px) G(q)) * gamma^q z^(px-1) x^(px)
                                / (gamma + x z)^(px+q)
    """
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(spend)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * spend)
    )


def gamma_gamma_log_likelihood(
    p: float, q: float, gamma: float, histories: Sequence[PurchaseHistory]
) -> float:
    """The sample log-likelihood over the customers with a repeat spend."""
    return float(np.sum(_gamma_gamma_terms(p, q, gamma, *_spenders(histories))))


def _gamma_gamma_total(theta: Vector, x: Vector, spend: Vector) -> float:
    p, q, gamma = np.exp(theta)
    return float(np.sum(_gamma_gamma_terms(p, q, gamma, x, spend)))


def _gamma_gamma_objective(theta: Vector, x: Vector, spend: Vector) -> tuple[float, Vector]:
    p, q, gamma = np.exp(theta)
    px = p * x
    terms = _gamma_gamma_terms(p, q, gamma, x, spend)
    total = np.log(gamma + x * spend)
    d_p = x * (digamma(px + q) - digamma(px) + np.log(spend) + np.log(x) - total)
    d_q = digamma(px + q) - digamma(q) + np.log(gamma) - total
    d_gamma = q / gamma - (px + q) / (gamma + x * spend)
    gradient = np.array([d_p.mean() * p, d_q.mean() * q, d_gamma.mean() * gamma])
    return -float(terms.mean()), -gradient


def fit_gamma_gamma(
    histories: Sequence[PurchaseHistory],
    *,
    minimum_customers: int = MINIMUM_SPENDERS,
    start: GammaGammaFit | None = None,
    fitted_at: datetime | None = None,
) -> GammaGammaFit | NotEnoughData:
    """Maximum-likelihood Gamma-Gamma parameters over the customers with a repeat
    purchase and its spend (the others tell nothing about spend per repeat purchase and
    are left out). The model assumes spend does not depend on how often a customer buys;
    `NotEnoughData` below `minimum_customers` such customers."""
    x, spend = _spenders(histories)
    if len(x) < minimum_customers:
        return NotEnoughData(
            GAMMA_GAMMA, "customers with a repeat spend", len(x), minimum_customers
        )
    if start is not None and start.converged:
        initial = np.log([start.p, start.q, start.gamma])
    else:
        initial = np.array([0.0, 0.0, math.log(float(spend.mean()))])
    optimum = maximise(
        lambda theta: _gamma_gamma_objective(theta, x, spend),
        initial,
        log_likelihood=lambda theta: _gamma_gamma_total(theta, x, spend),
        names=GAMMA_GAMMA_PARAMETERS,
    )
    p, q, gamma = (float(v) for v in np.exp(optimum.parameters))
    converged, message = optimum.converged, optimum.message
    if converged and q <= 1:
        converged = False
        message = f"q = {q:.3f} <= 1: the population's mean spend would be infinite"
    return GammaGammaFit(
        p=p,
        q=q,
        gamma=gamma,
        log_likelihood=optimum.log_likelihood,
        customers=len(x),
        converged=converged,
        message=message,
        fitted_at=fitted_at,
    )


def expected_average_spend(fit: GammaGammaFit, histories: Sequence[PurchaseHistory]) -> Vector:
    """Each customer's expected spend per purchase given their repeat purchases (the
    conditional expectation of the Gamma-Gamma model):

        E[Z | p, q, gamma; z, x] = p (gamma + x z) / (p x + q - 1)
          = (q-1)/(px+q-1) * p gamma/(q-1) + px/(px+q-1) * z

    a weighted mean of the population's mean and the customer's own average, the more
    purchases the more weight on their own. A customer without a repeat spend gets the
    population's mean p gamma / (q - 1)."""
    x, spend = _spenders(histories)
    own = fit.p * (fit.gamma + x * spend) / (fit.p * x + fit.q - 1)
    out = np.full(len(histories), fit.mean_spend, dtype=np.float64)
    out[[h.average_repeat_spend is not None for h in histories]] = own
    return out


# --- lifetime value and scores -----------------------------------------------------------


def lifetime_value(
    bg: BgNbdFit,
    gg: GammaGammaFit,
    histories: Sequence[PurchaseHistory],
    *,
    horizon_days: float = VALUE_HORIZON_DAYS,
    annual_discount_rate: float = ANNUAL_DISCOUNT_RATE,
    step_days: float = VALUE_STEP_DAYS,
) -> Vector:
    """Each customer's discounted expected revenue over the next `horizon_days`:

        CLV = E[Z | z, x] * sum over k = 1..K of
              (E[Y(t_k) | x, t_x, T] - E[Y(t_(k-1)) | x, t_x, T]) / (1 + d)^(t_k / 365)

    with t_k = min(k * step_days, horizon_days) (t_0 = 0, K steps to reach the horizon):
    the purchases expected in each step (BG/NBD, equation 10) times the expected spend
    per purchase (Gamma-Gamma), discounted at the annual rate d from the end of the step.
    It is revenue, not margin."""
    if not horizon_days > 0 or not step_days > 0:
        raise ValueError(f"horizon and step must be positive days, not {horizon_days}, {step_days}")
    if not annual_discount_rate > -1 or not math.isfinite(annual_discount_rate):
        raise ValueError(f"the discount rate must be above -100 %, not {annual_discount_rate}")
    x, t_x, t = _columns(histories)
    steps = math.ceil(horizon_days / step_days - 1e-9)
    ends = np.minimum(np.arange(1, steps + 1) * step_days, horizon_days)
    cumulative = np.stack(
        [_conditional_expectation(bg, x, t_x, t, bg.periods(end)) for end in ends]
    )
    per_step = np.diff(cumulative, axis=0, prepend=0.0)
    discount = (1 + annual_discount_rate) ** (-ends / 365.0)
    purchases = (per_step * discount[:, None]).sum(axis=0)
    return np.asarray(purchases * expected_average_spend(gg, histories), dtype=np.float64)


@dataclass(frozen=True)
class CustomerScore:
    """What the models say about one customer: expected purchases by horizon in days,
    the probability of being active, the expected spend per purchase and the lifetime
    value (None without a usable Gamma-Gamma fit)."""

    expected_purchases: Mapping[int, float]
    probability_active: float
    expected_spend: float | None
    lifetime_value: float | None


def score(
    bg: BgNbdFit,
    gg: GammaGammaFit | None,
    histories: Sequence[PurchaseHistory],
    *,
    purchase_horizons_days: Sequence[int] = PURCHASE_HORIZONS_DAYS,
    value_horizon_days: float = VALUE_HORIZON_DAYS,
    annual_discount_rate: float = ANNUAL_DISCOUNT_RATE,
    step_days: float = VALUE_STEP_DAYS,
) -> list[CustomerScore]:
    """Every customer's scores, in the order of `histories` (in the fit's periods). A
    BG/NBD fit that did not converge is refused (keep the previous one); a Gamma-Gamma
    fit that is missing or did not converge leaves spend and lifetime value None."""
    if not bg.converged:
        raise ValueError(f"a BG/NBD fit that did not converge scores nobody: {bg.message}")
    x, t_x, t = _columns(histories)
    expected = {
        days: _conditional_expectation(bg, x, t_x, t, bg.periods(days))
        for days in purchase_horizons_days
    }
    alive = _alive(bg, x, t_x, t)
    spend: Vector | None = None
    value: Vector | None = None
    if gg is not None and gg.converged:
        spend = expected_average_spend(gg, histories)
        value = lifetime_value(
            bg,
            gg,
            histories,
            horizon_days=value_horizon_days,
            annual_discount_rate=annual_discount_rate,
            step_days=step_days,
        )
    return [
        CustomerScore(
            expected_purchases={days: float(values[i]) for days, values in expected.items()},
            probability_active=float(alive[i]),
            expected_spend=float(spend[i]) if spend is not None else None,
            lifetime_value=float(value[i]) if value is not None else None,
        )
        for i in range(len(histories))
    ]
