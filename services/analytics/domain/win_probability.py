"""Win probability learned from closed deals (pure): a logistic regression with a ridge
(L2) penalty, fitted by maximum likelihood with scipy.

Features of a deal: its stage (for a closed deal, the last open stage it reached before
it closed; for an open one, its stage now), product, region and owner (one column per
value seen on at least `minimum_category_count` closed deals; rarer and unseen values
fall together with "none"), and the logarithms of its amount, age in days and number of
activities, standardised (by at least `MINIMUM_SCALE`, and kept within `NUMERIC_LIMIT`
spreads of the closed deals' mean, so that a deal unlike any closed one is not
extrapolated to certainty). Every column is centred on its mean over the closed deals, so
the intercept is the log-odds of an average deal (the baseline) and each feature's
weight times its centred value is how far it moves one deal's log-odds from that
baseline: the factors shown beside the probability.

The penalty (`regularisation`, on the weights, not the intercept) keeps rare values
and features that tell little close to the baseline instead of letting a handful of
deals swing the probability.

With fewer closed deals than the minimum, or too few of either outcome, the answer is
`NotEnoughData` and the stage's default probability stands.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy.special import expit, log_expit

from services.analytics.domain.estimation import NotEnoughData, Vector, maximise

WIN_PROBABILITY = "win_probability"
"""The model's name, as `NotEnoughData.model` gives it."""

MINIMUM_DEALS = 30
MINIMUM_PER_OUTCOME = 5
"""Won and lost deals needed each: with one outcome only there is nothing to learn."""
MINIMUM_CATEGORY_COUNT = 5
REGULARISATION = 1.0
MINIMUM_SCALE = 0.1
"""The least spread a numeric feature is standardised by (of log1p(value), so a tenth is
about 10 %): closed deals that barely differ in it (all closed within seconds of being
opened) would otherwise make an open deal a minute old thousands of spreads away."""
NUMERIC_LIMIT = 4.0
"""A numeric feature counts at most this many spreads from the closed deals' mean: a deal
far outside what they span is taken as one at their edge, not extrapolated."""

CATEGORICAL = ("stage", "product", "region", "owner")
NUMERIC = ("amount", "age_days", "activities")


class InvalidDeal(ValueError):
    """A deal record that cannot be: the message names the field and the value."""


@dataclass(frozen=True)
class Deal:
    """What the model reads of a deal, open or closed. `amount` in the reporting currency;
    `age_days` from creation to closing (closed) or to now (open)."""

    stage: str
    amount: float
    age_days: float
    activities: int
    product: str | None = None
    region: str | None = None
    owner: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.stage, str) or not self.stage:
            raise InvalidDeal(f"stage must be a stage name, not {self.stage!r}")
        for name in ("amount", "age_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidDeal(f"{name} must be a number, not {value!r}")
            if not math.isfinite(value) or value < 0:
                raise InvalidDeal(f"{name} must be a finite number >= 0, not {value!r}")
        if isinstance(self.activities, bool) or not isinstance(self.activities, int):
            raise InvalidDeal(f"activities must be a whole number, not {self.activities!r}")
        if self.activities < 0:
            raise InvalidDeal(f"activities must not be negative, not {self.activities}")
        for name in ("product", "region", "owner"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidDeal(f"{name} must be text or None, not {value!r}")

    def value(self, feature: str) -> str | float | None:
        value: str | float | None = getattr(self, feature)
        return value


@dataclass(frozen=True)
class ClosedDeal:
    deal: Deal
    won: bool


@dataclass(frozen=True)
class Column:
    """One column of the design: a categorical `feature` equal to `level`, or a numeric
    one (`level` None) as (log1p(value) - centre) / scale, kept within `NUMERIC_LIMIT`;
    `mean` is its mean over the closed deals, subtracted so that weights act relative to
    the average deal."""

    feature: str
    level: str | None
    mean: float
    centre: float = 0.0
    scale: float = 1.0

    def encode(self, deal: Deal) -> float:
        value = deal.value(self.feature)
        if self.level is not None:
            return (1.0 if value == self.level else 0.0) - self.mean
        spreads = (math.log1p(float(value or 0.0)) - self.centre) / self.scale
        return min(max(spreads, -NUMERIC_LIMIT), NUMERIC_LIMIT) - self.mean


@dataclass(frozen=True)
class WinModel:
    """A fitted win model: the baseline log-odds (`intercept`), a weight per column, the
    closed deals it learned from (how many, how many won), the maximised log-likelihood
    (without the penalty) and whether the optimiser converged (when not, keep the
    previous model)."""

    intercept: float
    weights: tuple[float, ...]
    columns: tuple[Column, ...]
    deals: int
    won: int
    log_likelihood: float
    regularisation: float
    converged: bool
    message: str = ""
    fitted_at: datetime | None = None


@dataclass(frozen=True)
class Factor:
    """How much one feature moved a deal's log-odds from the baseline (positive: towards
    winning). `value` is the deal's value as shown."""

    feature: str
    value: str
    contribution: float


@dataclass(frozen=True)
class WinProbability:
    """A deal's learned probability of winning, the baseline probability (an average
    closed deal) and the factors, largest effect first."""

    probability: float
    baseline: float
    factors: tuple[Factor, ...]


def _columns(deals: Sequence[Deal], minimum_category_count: int) -> list[Column]:
    columns: list[Column] = []
    n = len(deals)
    for feature in CATEGORICAL:
        counts = Counter(d.value(feature) for d in deals)
        for level, count in sorted(counts.items(), key=lambda kv: str(kv[0])):
            if level is not None and count >= minimum_category_count:
                columns.append(Column(feature, str(level), mean=count / n))
    for feature in NUMERIC:
        logs = np.log1p([float(d.value(feature) or 0.0) for d in deals])
        spread = float(logs.std())
        columns.append(
            Column(
                feature,
                None,
                mean=0.0,
                centre=float(logs.mean()),
                scale=max(spread, MINIMUM_SCALE),
            )
        )
    return columns


def _design(deals: Sequence[Deal], columns: Sequence[Column]) -> Vector:
    return np.array([[c.encode(d) for c in columns] for d in deals], dtype=np.float64).reshape(
        len(deals), len(columns)
    )


def _objective(
    theta: Vector, design: Vector, won: Vector, regularisation: float
) -> tuple[float, Vector]:
    """The penalised negative mean log-likelihood of a logistic regression and its
    gradient: theta = (intercept, weights); ln L = sum y ln s(eta) + (1-y) ln s(-eta)."""
    eta = theta[0] + design @ theta[1:]
    log_likelihood = won * log_expit(eta) + (1 - won) * log_expit(-eta)
    residual = expit(eta) - won
    n = len(won)
    weights = theta[1:]
    value = -float(log_likelihood.sum()) + regularisation / 2 * float(weights @ weights)
    gradient = np.concatenate([[residual.sum()], design.T @ residual + regularisation * weights])
    return value / n, gradient / n


def fit_win_model(
    closed: Sequence[ClosedDeal],
    *,
    minimum_deals: int = MINIMUM_DEALS,
    minimum_per_outcome: int = MINIMUM_PER_OUTCOME,
    minimum_category_count: int = MINIMUM_CATEGORY_COUNT,
    regularisation: float = REGULARISATION,
    fitted_at: datetime | None = None,
) -> WinModel | NotEnoughData:
    """Learn the win probability from closed deals, or say there are too few."""
    if len(closed) < minimum_deals:
        return NotEnoughData(WIN_PROBABILITY, "closed deals", len(closed), minimum_deals)
    won_count = sum(1 for c in closed if c.won)
    for subject, count in (("won deals", won_count), ("lost deals", len(closed) - won_count)):
        if count < minimum_per_outcome:
            return NotEnoughData(WIN_PROBABILITY, subject, count, minimum_per_outcome)
    if not regularisation >= 0 or not math.isfinite(regularisation):
        raise ValueError(f"regularisation must be a finite number >= 0, not {regularisation}")
    deals = [c.deal for c in closed]
    columns = _columns(deals, minimum_category_count)
    design = _design(deals, columns)
    won = np.array([1.0 if c.won else 0.0 for c in closed])
    rate = won.mean()
    start = np.concatenate([[math.log(rate / (1 - rate))], np.zeros(len(columns))])
    optimum = maximise(
        lambda theta: _objective(theta, design, won, regularisation),
        start,
        log_likelihood=lambda theta: -len(won) * _objective(theta, design, won, 0.0)[0],
        bounded=False,
    )
    return WinModel(
        intercept=float(optimum.parameters[0]),
        weights=tuple(float(w) for w in optimum.parameters[1:]),
        columns=tuple(columns),
        deals=len(closed),
        won=won_count,
        log_likelihood=optimum.log_likelihood,
        regularisation=regularisation,
        converged=optimum.converged,
        message=optimum.message,
        fitted_at=fitted_at,
    )


def _shown(value: str | float | None) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def win_probability(model: WinModel, deal: Deal) -> WinProbability:
    """The deal's probability of winning and the factors that moved it from the
    baseline: one per feature, the sum of its columns' weight x centred value (the
    log-odds is the intercept plus the sum of the factors)."""
    moved: dict[str, float] = {}
    for column, weight in zip(model.columns, model.weights, strict=True):
        moved[column.feature] = moved.get(column.feature, 0.0) + weight * column.encode(deal)
    factors = sorted(
        (Factor(f, _shown(deal.value(f)), c) for f, c in moved.items()),
        key=lambda factor: -abs(factor.contribution),
    )
    return WinProbability(
        probability=float(expit(model.intercept + sum(moved.values()))),
        baseline=float(expit(model.intercept)),
        factors=tuple(factors),
    )


def win_probabilities(model: WinModel, deals: Sequence[Deal]) -> list[float]:
    """The probabilities of many deals at once (no factors)."""
    design = _design(deals, model.columns)
    return [float(p) for p in expit(model.intercept + design @ np.array(model.weights))]
