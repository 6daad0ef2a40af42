"""How well probabilities held (`services.analytics.domain.accuracy`): Brier score,
calibration by bucket, calibration error, hit rate."""

from __future__ import annotations

import math

import pytest

from services.analytics.domain import accuracy


def test_brier_score() -> None:
    assert accuracy.brier_score([(1.0, True), (0.0, False)]) == 0.0
    assert accuracy.brier_score([(0.5, True), (0.5, False)]) == 0.25
    assert accuracy.brier_score([(0.8, True), (0.3, True)]) == pytest.approx((0.04 + 0.49) / 2)
    assert accuracy.brier_score([]) is None


def test_calibration_buckets_every_probability_once() -> None:
    settled = [(0.05, False), (0.12, False), (0.18, True), (0.95, True), (1.0, True), (0.5, False)]
    table = accuracy.calibration(settled, buckets=10)
    assert [(b.lower, b.upper) for b in table][:2] == [(0.0, 0.1), (0.1, 0.2)]
    assert len(table) == 10 and sum(b.count for b in table) == len(settled)
    second = table[1]
    assert (second.count, second.observed_rate) == (2, 0.5)
    assert second.mean_probability == pytest.approx(0.15)
    assert table[9].count == 2  # 1.0 belongs to the last bucket
    assert table[3].count == 0 and table[3].mean_probability is None
    assert table[3].observed_rate is None


def test_calibration_error_weights_the_gaps() -> None:
    perfect = [(0.25, True)] + [(0.25, False)] * 3
    assert accuracy.calibration_error(perfect) == 0.0
    overconfident = [(0.9, True), (0.9, False), (0.1, False), (0.1, False)]
    # bucket 0.9: said 0.9, happened 0.5; bucket 0.1: said 0.1, happened 0
    assert accuracy.calibration_error(overconfident) == pytest.approx((2 * 0.4 + 2 * 0.1) / 4)
    assert accuracy.calibration_error([]) is None


def test_hit_rate() -> None:
    settled = [(0.9, True), (0.6, False), (0.2, False), (0.5, True)]
    assert accuracy.hit_rate(settled) == 0.75
    assert accuracy.hit_rate(settled, threshold=0.95) == 0.5
    assert accuracy.hit_rate([]) is None


@pytest.mark.parametrize("probability", [-0.1, 1.01, math.nan, math.inf])
def test_a_probability_outside_0_to_1_is_refused(probability: float) -> None:
    for measure in (accuracy.brier_score, accuracy.calibration, accuracy.hit_rate):
        with pytest.raises(ValueError, match="between 0 and 1"):
            measure([(probability, True)])
