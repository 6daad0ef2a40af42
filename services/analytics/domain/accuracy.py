"""How well probabilities held (pure): the Brier score, calibration by probability bucket,
the calibration error and the hit rate of yes/no predictions, each over settled
predictions given as (probability said, whether it happened).

- Brier score: the mean of (probability - outcome)^2, outcome 1 or 0. 0 is perfect;
  always saying 50 % scores 0.25; lower is better.
- Calibration: the predictions grouped by probability (0-10 %, 10-20 %, ...); in a
  well-calibrated model, of the deals given about 30 % about 30 % were won.
- Calibration error: the buckets' gaps between the mean probability said and the share
  that happened, weighted by the number of predictions in each (expected calibration
  error).
- Hit rate: the share of predictions on the right side of the threshold (a probability
  of at least the threshold counts as "yes").

Empty input answers None: no settled prediction, no score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Settled = tuple[float, bool]
"""A settled prediction: the probability said, and whether it happened."""

CALIBRATION_BUCKETS = 10


def _checked(predictions: Sequence[Settled]) -> list[Settled]:
    for probability, _ in predictions:
        if not (math.isfinite(probability) and 0 <= probability <= 1):
            raise ValueError(f"a probability must be between 0 and 1, not {probability!r}")
    return list(predictions)


def brier_score(predictions: Sequence[Settled]) -> float | None:
    settled = _checked(predictions)
    if not settled:
        return None
    return sum((p - float(happened)) ** 2 for p, happened in settled) / len(settled)


@dataclass(frozen=True)
class CalibrationBucket:
    """Predictions whose probability is in [lower, upper) (the last bucket includes 1):
    how many, their mean probability, and the share that happened (None when empty)."""

    lower: float
    upper: float
    count: int
    mean_probability: float | None
    observed_rate: float | None


def calibration(
    predictions: Sequence[Settled], buckets: int = CALIBRATION_BUCKETS
) -> list[CalibrationBucket]:
    """Every bucket from 0 to 1, empty ones included, so that tables line up."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, not {buckets}")
    grouped: list[list[Settled]] = [[] for _ in range(buckets)]
    for probability, happened in _checked(predictions):
        grouped[min(int(probability * buckets), buckets - 1)].append((probability, happened))
    return [
        CalibrationBucket(
            lower=k / buckets,
            upper=(k + 1) / buckets,
            count=len(group),
            mean_probability=sum(p for p, _ in group) / len(group) if group else None,
            observed_rate=sum(1 for _, h in group if h) / len(group) if group else None,
        )
        for k, group in enumerate(grouped)
    ]


def calibration_error(
    predictions: Sequence[Settled], buckets: int = CALIBRATION_BUCKETS
) -> float | None:
    return table_error(calibration(predictions, buckets))


def table_error(table: Sequence[CalibrationBucket]) -> float | None:
    """The calibration error of a calibration table (also one a database aggregated)."""
    total = sum(b.count for b in table)
    if not total:
        return None
    return (
        sum(
            b.count * abs(b.mean_probability - b.observed_rate)
            for b in table
            if b.mean_probability is not None and b.observed_rate is not None
        )
        / total
    )


def hit_rate(predictions: Sequence[Settled], threshold: float = 0.5) -> float | None:
    settled = _checked(predictions)
    if not settled:
        return None
    return sum(1 for p, happened in settled if (p >= threshold) == happened) / len(settled)
