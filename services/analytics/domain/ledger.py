"""The ledger of predictions (pure): what the CRM and its people predicted, each with its
horizon, and how each is settled against what happened.

What is predicted (`kind`), by what (`model`), and how it is settled:

- `purchases` (BG/NBD): the purchases a customer is expected to make within a window
  (30, 90 and 365 days, the profile's `expected_purchases_*`). Settled when the window
  ends, with the purchases counted in it; it held when the count is within one purchase
  of the expectation.
- `active` (BG/NBD): the probability that the customer is seen active, i.e. buys at
  least once within the next `ACTIVE_DAYS`. Being active cannot be observed, buying
  can: for BG/NBD a customer buys in the next t periods only if still active, and then
  with probability 1 - ((alpha+T)/(alpha+T+t))^(r+x) (their purchase rate, given x
  purchases in T, is gamma(r+x, alpha+T)), so

      P(a purchase within t) = P(alive) * (1 - ((alpha+T)/(alpha+T+t))^(r+x)).

  It is recorded with the probability of being active itself, and settled as "yes" at
  the customer's first purchase in the window, as "no" when the window ends.
- `population_week` (BG/NBD): the purchases the whole population of a fit is expected
  to make in each of the next `POPULATION_WEEKS` weeks (the sum over its customers of
  E[Y(k weeks)] - E[Y(k-1 weeks)], equation 10 of the paper): settled at the end of each
  week with the purchases those customers made in it. Set side by side, these are the
  expected against the actual purchases per week.
- `win` (`win_probability`, the model learned from closed deals, and `stage_default`,
  the stage's default probability, recorded beside it so that both are judged on the
  same deals): the probability that an open deal is won; settled when it is won or lost.
- `churn` (`churn_rules`): a churn warning, a yes/no prediction that the customer will
  not buy within `CHURN_DAYS` of it; it missed at a purchase in that time, and held
  when the time passed without one.
- `activity` (`person`): what an activity's owner predicted would come of it; settled
  when the activity's actual result is recorded, held or missed as its owner says.

A yes/no prediction with a probability held when it was on the right side of one half.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from contracts.analytics import PredictionKind
from services.analytics.domain.bg_nbd import BgNbdFit, expected_purchases, probability_alive
from services.analytics.domain.lifetime_value import PURCHASE_HORIZONS_DAYS
from services.analytics.domain.purchase_history import PurchaseHistory

PURCHASES = PredictionKind.PURCHASES.value
ACTIVE = PredictionKind.ACTIVE.value
POPULATION_WEEK = PredictionKind.POPULATION_WEEK.value
WIN = PredictionKind.WIN.value
CHURN = PredictionKind.CHURN.value
ACTIVITY = PredictionKind.ACTIVITY.value
KINDS = tuple(k.value for k in PredictionKind)

WIN_MODEL = "win_probability"
STAGE_DEFAULT = "stage_default"
CHURN_RULES = "churn_rules"
PERSON = "person"
"""The makers of predictions besides the BG/NBD model (`lifetime_value.BG_NBD`)."""

PURCHASE_WINDOWS_DAYS = PURCHASE_HORIZONS_DAYS
ACTIVE_DAYS = 90
CHURN_DAYS = 90
POPULATION_WEEKS = 4
WEEK_DAYS = 7

HALF = 0.5
"""A probability of at least one half says "yes"."""
PROBABILITY_MOVE = 0.05
"""An open deal is predicted again when its learned probability moved this far..."""
DEAL_INTERVAL = timedelta(days=1)
"""...and the previous prediction is at least this old (or at once when its stage
changed), so that a deal rescored many times does not flood the ledger."""


def active_probability(
    fit: BgNbdFit, histories: Sequence[PurchaseHistory], days: float = ACTIVE_DAYS
) -> list[float]:
    """Each customer's probability of at least one purchase within `days` (see `active`
    in the module's description)."""
    if not histories:
        return []
    x = np.fromiter((h.frequency for h in histories), np.float64, len(histories))
    age = np.fromiter((h.age for h in histories), np.float64, len(histories))
    t = fit.periods(days)
    silent = ((fit.alpha + age) / (fit.alpha + age + t)) ** (fit.r + x)
    return [float(p) for p in probability_alive(fit, histories) * (1 - silent)]


def population_weeks(
    fit: BgNbdFit, histories: Sequence[PurchaseHistory], weeks: int = POPULATION_WEEKS
) -> list[float]:
    """The purchases the customers of `histories` together are expected to make in each
    of the next `weeks` weeks."""
    if not histories:
        return [0.0] * weeks
    cumulative = [0.0] + [
        float(expected_purchases(fit, histories, fit.periods(k * WEEK_DAYS)).sum())
        for k in range(1, weeks + 1)
    ]
    return [max(cumulative[k] - cumulative[k - 1], 0.0) for k in range(1, weeks + 1)]


@dataclass(frozen=True)
class Settlement:
    """What happened and whether the prediction held: `happened` for a yes/no prediction
    (did the predicted thing happen), `actual` for a count."""

    held: bool
    happened: bool | None = None
    actual: float | None = None


def count_settled(expected: float, actual: int) -> Settlement:
    """A count held when the actual count is within one of the expected count."""
    return Settlement(held=abs(actual - expected) < 1, actual=float(actual))


def probability_settled(probability: float, happened: bool) -> Settlement:
    """A probability held when it was on the side of one half that happened."""
    if not (math.isfinite(probability) and 0 <= probability <= 1):
        raise ValueError(f"a probability must be between 0 and 1, not {probability!r}")
    return Settlement(held=(probability >= HALF) == happened, happened=happened)


def said_settled(happened: bool) -> Settlement:
    """A plain "this will happen" (a churn warning, a person's predicted result) held
    when it happened."""
    return Settlement(held=happened, happened=happened)


@dataclass(frozen=True)
class OpenDealPrediction:
    """The latest unsettled learned prediction of a deal."""

    probability: float
    stage: str
    made_at: datetime


def deal_due(
    previous: OpenDealPrediction | None, probability: float, stage: str, now: datetime
) -> bool:
    """Whether a deal scored now gets a new prediction: when it has none open, when its
    stage changed since, or when its probability moved by `PROBABILITY_MOVE` or more and
    the previous one is at least `DEAL_INTERVAL` old."""
    if previous is None or previous.stage != stage:
        return True
    moved = abs(probability - previous.probability) >= PROBABILITY_MOVE - 1e-12
    return moved and now - previous.made_at >= DEAL_INTERVAL
