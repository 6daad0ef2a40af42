"""A customer's purchase history as the lifetime value models read it (pure): the number
of repeat purchases, the time of the latest, the time observed and the average repeat
spend, in periods of the fit (a week by default), built from what a profile keeps.

A history that cannot be (negative, not finite, the latest purchase after the end of
observation, a spend of zero) is refused with `InvalidHistory` at construction, naming
the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from services.analytics.domain.estimation import Vector

DEFAULT_PERIOD_DAYS = 7.0
"""The unit of time of the models: histories, parameters and horizons are in weeks unless
a fit says otherwise (`BgNbdFit.period_days`)."""


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


def columns(histories: Sequence[PurchaseHistory]) -> tuple[Vector, Vector, Vector]:
    """The histories as the arrays x, t_x and T the models compute on, one value a customer."""
    x = np.fromiter((h.frequency for h in histories), np.float64, len(histories))
    t_x = np.fromiter((h.recency for h in histories), np.float64, len(histories))
    t = np.fromiter((h.age for h in histories), np.float64, len(histories))
    return x, t_x, t
