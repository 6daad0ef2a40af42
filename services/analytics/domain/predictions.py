"""The lifetime value models as the analytics service keeps them (pure): the population
read from the profiles, a fit as a record to store and serve, a stored fit read back,
and each customer's scores as profile fields.

The models themselves (likelihoods, fits, scores) are `bg_nbd`, `gamma_gamma` and
`lifetime_value`; this module only says what goes in and what is kept:

- the population is every customer with a purchase, each summarised as the profile
  keeps them (`Summary`); a summary that cannot be a history (a purchase dated after the
  moment of the fit, e.g. a contract signed on a future day) is left out and counted;
- every fit, whatever it concluded, is a record (`FitRecord`): `fitted`, `not_converged`
  (its parameters kept to show where the optimiser stopped, never used) or
  `not_enough_data` (no parameters at all, the count and the minimum instead);
- scores are the profile fields of `SCORE_FIELDS`; amounts are rounded half-up to cents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from services.analytics.domain.bg_nbd import BG_NBD, BgNbdFit
from services.analytics.domain.estimation import NotEnoughData
from services.analytics.domain.gamma_gamma import GAMMA_GAMMA, GammaGammaFit
from services.analytics.domain.lifetime_value import (
    ANNUAL_DISCOUNT_RATE,
    PURCHASE_HORIZONS_DAYS,
    VALUE_HORIZON_DAYS,
    CustomerScore,
)
from services.analytics.domain.money import cents
from services.analytics.domain.purchase_history import (
    DEFAULT_PERIOD_DAYS,
    InvalidHistory,
    PurchaseHistory,
    history_from_summary,
)
from services.analytics.domain.win_probability import WIN_PROBABILITY, Column, WinModel

MODELS = (BG_NBD, GAMMA_GAMMA, WIN_PROBABILITY)

PURCHASE_FIELDS: dict[int, str] = {
    days: f"expected_purchases_{days}d" for days in PURCHASE_HORIZONS_DAYS
}
"""Horizon in days -> the profile field of the purchases expected within it."""
SCORE_FIELDS = (
    *PURCHASE_FIELDS.values(),
    "probability_active",
    "expected_spend",
    "lifetime_value",
)
"""The scores each customer with a purchase gets, as profile fields."""
SCORE_MONEY_FIELDS = ("expected_spend", "lifetime_value")


@dataclass(frozen=True)
class Valuation:
    """How lifetime value is counted: over `horizon_days`, discounted at the annual rate
    (`CRM_ANALYTICS_VALUE_HORIZON_DAYS`, `CRM_ANALYTICS_ANNUAL_DISCOUNT_RATE`)."""

    horizon_days: float = VALUE_HORIZON_DAYS
    annual_discount_rate: float = ANNUAL_DISCOUNT_RATE


FITTED = "fitted"
NOT_CONVERGED = "not_converged"
NOT_ENOUGH_DATA = "not_enough_data"


@dataclass(frozen=True)
class Summary:
    """A customer with a purchase, as the profile keeps them (amounts in the reporting
    currency). `first_spend` is None only in a profile stored before it was kept."""

    customer_id: UUID
    purchase_count: int
    total_spend: Decimal
    first_spend: Decimal | None
    first_purchase_at: datetime
    last_purchase_at: datetime


@dataclass(frozen=True)
class Population:
    """The histories of the customers with a purchase as of `now`, in the order of
    `customers`, and the customers left out because their summary cannot be a history."""

    customers: list[UUID]
    histories: list[PurchaseHistory]
    excluded: list[UUID]
    now: datetime


def population(
    summaries: Sequence[Summary], now: datetime, period_days: float = DEFAULT_PERIOD_DAYS
) -> Population:
    """The histories of `summaries` as of `now`. Without the first purchase's amount the
    repeat purchases' spend is unknown (the history has none), never guessed."""
    customers: list[UUID] = []
    histories: list[PurchaseHistory] = []
    excluded: list[UUID] = []
    for s in summaries:
        try:
            history = history_from_summary(
                first_purchase_at=s.first_purchase_at,
                last_purchase_at=s.last_purchase_at,
                purchases=s.purchase_count,
                total_spend=s.total_spend,
                first_spend=s.total_spend if s.first_spend is None else s.first_spend,
                now=now,
                period_days=period_days,
            )
        except InvalidHistory:
            excluded.append(s.customer_id)
            continue
        customers.append(s.customer_id)
        histories.append(history)
    return Population(customers, histories, excluded, now)


@dataclass(frozen=True)
class FitRecord:
    """One fit of one model as it is stored and served."""

    model: str
    outcome: str
    population: int
    excluded: int
    parameters: dict[str, Any] | None
    log_likelihood: float | None
    converged: bool
    message: str
    shortfall: dict[str, Any] | None

    @property
    def usable(self) -> bool:
        return self.outcome == FITTED


def record_of(
    model: str,
    result: BgNbdFit | GammaGammaFit | WinModel | NotEnoughData,
    people: Population | None,
    *,
    counted: int | None = None,
) -> FitRecord:
    """The record of a fit over `people` (the lifetime value models) or over `counted`
    closed deals (the win model)."""
    excluded = len(people.excluded) if people is not None else 0
    if counted is None:
        assert people is not None
        counted = len(people.histories)
    if isinstance(result, NotEnoughData):
        return FitRecord(
            model=model,
            outcome=NOT_ENOUGH_DATA,
            population=counted,
            excluded=excluded,
            parameters=None,
            log_likelihood=None,
            converged=False,
            message=result.message,
            shortfall={
                "subject": result.subject,
                "count": result.count,
                "minimum": result.minimum,
            },
        )
    parameters: dict[str, Any]
    if isinstance(result, WinModel):
        parameters = win_parameters(result)
    elif isinstance(result, BgNbdFit):
        parameters = {
            "r": result.r,
            "alpha": result.alpha,
            "a": result.a,
            "b": result.b,
            "period_days": result.period_days,
        }
    else:
        parameters = {
            "p": result.p,
            "q": result.q,
            "gamma": result.gamma,
            "customers": float(result.customers),
        }
    return FitRecord(
        model=model,
        outcome=FITTED if result.converged else NOT_CONVERGED,
        population=counted,
        excluded=excluded,
        parameters=parameters,
        log_likelihood=result.log_likelihood,
        converged=result.converged,
        message=result.message or ("converged" if result.converged else ""),
        shortfall=None,
    )


def bg_nbd_of(parameters: Mapping[str, float], *, customers: int, fitted_at: datetime) -> BgNbdFit:
    """A stored converged BG/NBD fit, to score with or to start the next fit from."""
    return BgNbdFit(
        r=parameters["r"],
        alpha=parameters["alpha"],
        a=parameters["a"],
        b=parameters["b"],
        log_likelihood=math.nan,
        customers=customers,
        converged=True,
        period_days=parameters.get("period_days", DEFAULT_PERIOD_DAYS),
        fitted_at=fitted_at,
    )


def gamma_gamma_of(
    parameters: Mapping[str, float], *, customers: int, fitted_at: datetime
) -> GammaGammaFit:
    """A stored converged Gamma-Gamma fit."""
    return GammaGammaFit(
        p=parameters["p"],
        q=parameters["q"],
        gamma=parameters["gamma"],
        log_likelihood=math.nan,
        customers=customers,
        converged=True,
        fitted_at=fitted_at,
    )


def _amount(value: float | None) -> Decimal | None:
    if value is None or not math.isfinite(value):
        return None
    return cents(Decimal(repr(value)))


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def score_fields(score: CustomerScore) -> dict[str, Any]:
    """A customer's scores as profile fields (`SCORE_FIELDS`): amounts in cents, and no
    value where the model gives none (or none that is finite)."""
    return {
        **{
            field: _number(score.expected_purchases.get(days))
            for days, field in PURCHASE_FIELDS.items()
        },
        "probability_active": _number(score.probability_active),
        "expected_spend": _amount(score.expected_spend),
        "lifetime_value": _amount(score.lifetime_value),
    }


def win_parameters(model: WinModel) -> dict[str, Any]:
    """A win model as stored: the baseline log-odds, and each column with its weight."""
    return {
        "intercept": model.intercept,
        "columns": [
            {
                "feature": c.feature,
                "level": c.level,
                "mean": c.mean,
                "centre": c.centre,
                "scale": c.scale,
                "weight": w,
            }
            for c, w in zip(model.columns, model.weights, strict=True)
        ],
        "deals": model.deals,
        "won": model.won,
        "regularisation": model.regularisation,
    }


def win_model_of(parameters: Mapping[str, Any], *, fitted_at: datetime) -> WinModel:
    """A stored converged win model, to score open deals with."""
    columns = parameters["columns"]
    return WinModel(
        intercept=parameters["intercept"],
        weights=tuple(c["weight"] for c in columns),
        columns=tuple(
            Column(c["feature"], c["level"], c["mean"], c["centre"], c["scale"]) for c in columns
        ),
        deals=parameters["deals"],
        won=parameters["won"],
        log_likelihood=math.nan,
        regularisation=parameters["regularisation"],
        converged=True,
        fitted_at=fitted_at,
    )
