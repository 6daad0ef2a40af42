"""Lifetime value and the probability of being active (pure): the BG/NBD model of repeat
purchases (`bg_nbd`) and the Gamma-Gamma model of spend per purchase (`gamma_gamma`),
each fitted by maximum likelihood on the customers' purchase histories
(`purchase_history`), put together here into each customer's scores: expected purchases
by horizon, the probability of being active, the expected spend per purchase and the
discounted lifetime value.

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

import numpy as np

from services.analytics.domain.bg_nbd import BgNbdFit, conditional_expectation, p_alive
from services.analytics.domain.estimation import Vector
from services.analytics.domain.gamma_gamma import GammaGammaFit, expected_average_spend
from services.analytics.domain.purchase_history import PurchaseHistory, columns

PURCHASE_HORIZONS_DAYS = (30, 90, 365)
VALUE_HORIZON_DAYS = 365.0
ANNUAL_DISCOUNT_RATE = 0.10
VALUE_STEP_DAYS = 30.0


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
    x, t_x, t = columns(histories)
    steps = math.ceil(horizon_days / step_days - 1e-9)
    ends = np.minimum(np.arange(1, steps + 1) * step_days, horizon_days)
    cumulative = np.stack([conditional_expectation(bg, x, t_x, t, bg.periods(end)) for end in ends])
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
    x, t_x, t = columns(histories)
    expected = {
        days: conditional_expectation(bg, x, t_x, t, bg.periods(days))
        for days in purchase_horizons_days
    }
    alive = p_alive(bg, x, t_x, t)
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
