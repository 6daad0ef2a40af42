"""The built-in segments' rules (`services.analytics.domain.builtin`) say what the code
decides: over every RFM score, every monetary score and a grid of purchase dates, exactly
one rule of each family holds, and it is the one of the segment the customer is in."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.analytics.domain import builtin
from services.analytics.domain.profile import Profile
from services.analytics.domain.rules import compile_rule, explain
from services.analytics.domain.segments import BUILTIN_SEGMENTS, builtin_memberships, field_values

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
DAYS = (None, 0, 1, 89, 90, 91, 179, 180, 181, 200, 364, 365, 366, 400, 800)


def _holding(values: dict[str, object], family: str) -> list[str]:
    return [
        segment
        for segment, rule in builtin.RULES.items()
        if segment.startswith(f"{family}.") and compile_rule(rule)(values)
    ]


def _profile(first: int | None, previous: int | None, last: int | None) -> Profile:
    profile = Profile(uuid.uuid4(), registered=True)
    profile.purchase_count = (last is not None) + (previous is not None)
    profile.total_spend = Decimal(100 * profile.purchase_count)
    profile.first_purchase_at = NOW - timedelta(days=first) if first is not None else None
    profile.previous_purchase_at = NOW - timedelta(days=previous) if previous is not None else None
    profile.last_purchase_at = NOW - timedelta(days=last) if last is not None else None
    return profile


def test_every_builtin_segment_has_a_rule() -> None:
    assert set(builtin.RULES) == set(BUILTIN_SEGMENTS)


@pytest.mark.parametrize("r,f,m", itertools.product(range(1, 6), repeat=3))
def test_rfm_and_tier_rules_hold_exactly_for_the_segment_of_the_scores(
    r: int, f: int, m: int
) -> None:
    profile = _profile(10, None, 10)
    profile.recency_score, profile.frequency_score, profile.monetary_score = r, f, m
    values = field_values(profile, NOW)
    decided = builtin_memberships(values)
    assert _holding(values, "rfm") == [s for s in decided if s.startswith("rfm.")]
    assert _holding(values, "tier") == [s for s in decided if s.startswith("tier.")]


def _histories() -> list[tuple[int | None, int | None, int | None]]:
    """(days since the first, the previous and the latest purchase): none, one, several."""
    days = [d for d in DAYS if d is not None]
    found: list[tuple[int | None, int | None, int | None]] = [(None, None, None)]
    found += [(d, None, d) for d in days]
    found += [
        (first, previous, last)
        for first, previous, last in itertools.product(days, repeat=3)
        if first >= previous >= last
    ]
    return found


def test_lifecycle_rules_hold_exactly_for_the_stage_of_the_dates() -> None:
    histories = _histories()
    for first, previous, last in histories:
        values = field_values(_profile(first, previous, last), NOW)
        expected = [f"lifecycle.{values['lifecycle_stage']}"]
        assert _holding(values, "lifecycle") == expected, (first, previous, last)
    assert len(histories) > 100


def test_a_builtin_segment_states_its_conditions_in_words() -> None:
    assert builtin.explanation("rfm.champions").startswith(
        "recency_score ≥ 4 and frequency_monetary_score ≥ 4"
    )
    assert "days_since_last_purchase between 181 and 365" in builtin.explanation(
        "lifecycle.at_risk"
    )


def test_the_failed_conditions_of_a_rule_are_named_with_the_values() -> None:
    rule = {
        "all": [
            {"field": "region", "op": "eq", "value": "华东"},
            {"field": "total_spend", "op": "gt", "value": 450},
            {"not": {"field": "tags", "op": "contains", "value": "internal"}},
        ]
    }
    values = {"region": "华东", "total_spend": Decimal("300.00"), "tags": ["internal"]}
    held, checks = explain(rule, values)
    assert not held
    assert [c.text for c in checks] == [
        "total_spend is 300.00; the rule needs total_spend > 450",
        "tags is internal; the rule needs not tags contains internal",
    ]
    held, checks = explain({"any": rule["all"][:2]}, {"region": "华北", "total_spend": None})
    assert not held and [c.field for c in checks] == ["region", "total_spend"]
    assert checks[1].text == "total_spend is no value; the rule needs total_spend > 450"
