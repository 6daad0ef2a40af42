"""Win probability learned from closed deals (`services.analytics.domain.win_probability`):
on generated deals whose win rate truly depends on the region, the learned probabilities
beat the stage defaults on held-out deals, the factors name the region, and too little
history is said, not guessed."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from services.analytics.domain import accuracy
from services.analytics.domain import win_probability as wp
from services.analytics.domain.estimation import NotEnoughData

STAGE_RATE = {"qualification": 0.15, "proposal": 0.35, "negotiation": 0.60}
REGION_ODDS = {"north": 3.0, "east": 1.0, "west": 1.0, "south": 1 / 3}
"""The true model: the stage's rate, its odds multiplied by the region's factor."""


def true_probability(stage: str, region: str) -> float:
    odds = STAGE_RATE[stage] / (1 - STAGE_RATE[stage]) * REGION_ODDS[region]
    return odds / (1 + odds)


def generated(seed: int, count: int) -> list[wp.ClosedDeal]:
    """Deals whose amount, age, activities, product and owner are noise."""
    rng = random.Random(seed)
    deals = []
    for _ in range(count):
        stage, region = rng.choice(list(STAGE_RATE)), rng.choice(list(REGION_ODDS))
        deal = wp.Deal(
            stage=stage,
            amount=round(rng.lognormvariate(9, 1), 2),
            age_days=rng.uniform(5, 120),
            activities=rng.randint(0, 20),
            product=rng.choice(["licence", "service"]),
            region=region,
            owner=rng.choice(["ann", "bo", "cy"]),
        )
        deals.append(wp.ClosedDeal(deal, rng.random() < true_probability(stage, region)))
    return deals


@pytest.fixture(scope="module")
def history() -> list[wp.ClosedDeal]:
    return generated(seed=20, count=600)


@pytest.fixture(scope="module")
def model(history: list[wp.ClosedDeal]) -> wp.WinModel:
    fitted = wp.fit_win_model(history)
    assert isinstance(fitted, wp.WinModel)
    return fitted


def test_learned_probabilities_beat_the_stage_defaults_on_held_out_deals(
    history: list[wp.ClosedDeal], model: wp.WinModel
) -> None:
    """The stage default here is the best a stage alone can say: each stage's win rate
    over the same closed deals the model learned from."""
    assert model.converged, model.message
    assert (model.deals, model.won) == (600, sum(c.won for c in history))
    default = {
        stage: sum(c.won for c in history if c.deal.stage == stage)
        / sum(1 for c in history if c.deal.stage == stage)
        for stage in STAGE_RATE
    }
    held_out = generated(seed=21, count=1000)
    learned = wp.win_probabilities(model, [c.deal for c in held_out])
    learned_brier = accuracy.brier_score(
        [(p, c.won) for p, c in zip(learned, held_out, strict=True)]
    )
    default_brier = accuracy.brier_score([(default[c.deal.stage], c.won) for c in held_out])
    truth_brier = accuracy.brier_score(
        [(true_probability(c.deal.stage, c.deal.region or ""), c.won) for c in held_out]
    )
    assert learned_brier is not None and default_brier is not None and truth_brier is not None
    assert learned_brier < default_brier - 0.01
    assert learned_brier < truth_brier + 0.01  # close to what the true probabilities score
    learned_error = accuracy.calibration_error(
        [(p, c.won) for p, c in zip(learned, held_out, strict=True)], buckets=5
    )
    assert learned_error is not None and learned_error < 0.06


def test_the_factors_say_what_moved_a_deal(model: wp.WinModel) -> None:
    north = wp.Deal("proposal", 8000.0, 40.0, 8, "licence", "north", "ann")
    south = replace(north, region="south")
    up, down = wp.win_probability(model, north), wp.win_probability(model, south)
    assert up.probability > down.probability
    assert up.baseline == down.baseline
    region_up = next(f for f in up.factors if f.feature == "region")
    region_down = next(f for f in down.factors if f.feature == "region")
    assert (region_up.value, region_down.value) == ("north", "south")
    assert region_up.contribution > 0 > region_down.contribution
    # the region moves these deals more than the features that are noise
    noise = {"amount", "age_days", "activities", "product", "owner"}
    assert all(
        abs(f.contribution) < abs(region_up.contribution) for f in up.factors if f.feature in noise
    )
    # the log-odds is the baseline plus the factors
    for answer in (up, down):
        log_odds = math.log(answer.baseline / (1 - answer.baseline)) + sum(
            f.contribution for f in answer.factors
        )
        assert answer.probability == pytest.approx(1 / (1 + math.exp(-log_odds)))
    assert [abs(f.contribution) for f in up.factors] == sorted(
        (abs(f.contribution) for f in up.factors), reverse=True
    )
    assert wp.win_probabilities(model, [north])[0] == pytest.approx(up.probability)


def test_unseen_and_rare_values_fall_back_to_none(history: list[wp.ClosedDeal]) -> None:
    rare = wp.ClosedDeal(replace(history[0].deal, owner="dee"), won=True)
    fitted = wp.fit_win_model([*history, rare])
    assert isinstance(fitted, wp.WinModel)
    assert all(c.level != "dee" for c in fitted.columns)  # seen once: below the minimum
    unseen = replace(history[0].deal, owner="zed")
    nobody = replace(history[0].deal, owner=None)
    assert wp.win_probability(fitted, unseen).probability == pytest.approx(
        wp.win_probability(fitted, nobody).probability
    )
    owner = next(f for f in wp.win_probability(fitted, nobody).factors if f.feature == "owner")
    assert owner.value == "none"


def test_the_penalty_keeps_weights_near_the_baseline(history: list[wp.ClosedDeal]) -> None:
    loose = wp.fit_win_model(history, regularisation=0.0)
    tight = wp.fit_win_model(history, regularisation=200.0)
    assert isinstance(loose, wp.WinModel) and isinstance(tight, wp.WinModel)
    assert np.linalg.norm(tight.weights) < np.linalg.norm(loose.weights) / 2
    assert loose.log_likelihood > tight.log_likelihood  # the unpenalised optimum fits best
    with pytest.raises(ValueError, match="regularisation"):
        wp.fit_win_model(history, regularisation=-1.0)


def test_too_few_closed_deals_are_said(history: list[wp.ClosedDeal]) -> None:
    assert wp.fit_win_model(history[:29]) == NotEnoughData(
        "win_probability", "closed deals", 29, 30
    )
    assert isinstance(wp.fit_win_model(history[:29], minimum_deals=20), wp.WinModel)
    lost = [replace(c, won=False) for c in history[:40]]
    answer = wp.fit_win_model(lost)
    assert answer == NotEnoughData("win_probability", "won deals", 0, 5)
    assert isinstance(answer, NotEnoughData)
    assert answer.message == "win_probability: 0 won deals, at least 5 needed"
    won = [replace(c, won=True) for c in history[:40]]
    assert wp.fit_win_model(won) == NotEnoughData("win_probability", "lost deals", 0, 5)


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"stage": ""}, "stage must be a stage name"),
        ({"amount": -1.0}, "amount must be a finite number >= 0"),
        ({"amount": math.nan}, "amount must be a finite number >= 0"),
        ({"amount": math.inf}, "amount must be a finite number >= 0"),
        ({"amount": "100"}, "amount must be a number"),
        ({"age_days": -0.5}, "age_days must be a finite number >= 0"),
        ({"activities": -1}, "activities must not be negative"),
        ({"activities": 2.5}, "activities must be a whole number"),
        ({"region": 7}, "region must be text or None"),
    ],
)
def test_impossible_deals_are_refused(fields: dict[str, object], refusal: str) -> None:
    valid: dict[str, object] = {
        "stage": "proposal",
        "amount": 100.0,
        "age_days": 3.0,
        "activities": 1,
    }
    with pytest.raises(wp.InvalidDeal, match=refusal):
        wp.Deal(**{**valid, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize("feature", ["amount", "age_days"])
def test_a_feature_the_closed_deals_barely_vary_in_does_not_decide_an_open_deal(
    history: list[wp.ClosedDeal], feature: str
) -> None:
    """Deals closed within seconds of being opened (all of one age, to a few seconds):
    an open deal a minute old is not "thousands of spreads" away from them, and a deal
    far outside what the closed deals span moves its log-odds by a bounded amount."""
    rng = random.Random(5)

    def with_value(deal: wp.Deal, value: float) -> wp.Deal:
        values: dict[str, Any] = {feature: value}
        return replace(deal, **values)

    alike = [replace(c, deal=with_value(c.deal, 0.0001 + rng.uniform(0, 1e-5))) for c in history]
    model = wp.fit_win_model(alike)
    assert isinstance(model, wp.WinModel)
    moved = {
        f.feature: f.contribution
        for f in wp.win_probability(model, with_value(alike[0].deal, 0.001)).factors
    }
    assert abs(moved[feature]) < 0.5, moved
    (column,) = [c for c in model.columns if c.feature == feature]
    (weight,) = [w for c, w in zip(model.columns, model.weights, strict=True) if c == column]
    far = with_value(alike[0].deal, 1e9)
    moved = {f.feature: f.contribution for f in wp.win_probability(model, far).factors}
    assert abs(moved[feature]) <= abs(weight) * wp.NUMERIC_LIMIT + 1e-9
