"""The analytics service's pure domain: RFM quintiles and their tie rule, named segments,
the rule language, lifecycle stages, churn thresholds, the value x satisfaction matrix,
currency conversion and the order-independent profile fold."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from contracts.registry import parse_event
from local.synthetic_history import history
from services.analytics.domain import churn, lifecycle, matrix, rfm
from services.analytics.domain.definition import SegmentDefinition
from services.analytics.domain.money import Converter
from services.analytics.domain.profile import Profile, apply
from services.analytics.domain.rules import RuleError, compile_rule, fields_of
from services.analytics.domain.segments import SegmentRule, conclude
from services.analytics.projections.conclusions import envelope

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
TODAY = NOW.date()


# RFM ----------------------------------------------------------------------------------


def test_quintile_boundaries_are_percentile_disc() -> None:
    assert rfm.boundaries(list(range(1, 11))) == [2, 4, 6, 8]
    assert rfm.boundaries([5]) == [5, 5, 5, 5]
    assert rfm.boundaries([]) is None


def test_scores_split_a_population_into_fifths() -> None:
    values = list(range(1, 101))
    bounds = rfm.boundaries(values)
    scores = [rfm.score(v, bounds) for v in values]
    assert [scores.count(s) for s in range(1, 6)] == [20, 20, 20, 20, 20]


def test_ties_get_the_same_and_lower_score() -> None:
    values = [1] * 70 + [2, 3, 4, 5, 6, 7, 8, 9, 10, 11] * 3
    bounds = rfm.boundaries(values)
    assert bounds is not None and bounds[:3] == [1, 1, 1]
    assert {rfm.score(v, bounds) for v in values if v == 1} == {1}
    assert rfm.score(bounds[3], bounds) == 4  # equal to a boundary: the lower score
    assert rfm.score(None, bounds) is None


def test_every_score_combination_has_exactly_one_named_segment() -> None:
    seen = {
        rfm.named_segment(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)
    }
    assert seen == set(rfm.NAMED_SEGMENTS)
    assert rfm.named_segment(5, 5, 5) == "champions"
    assert rfm.named_segment(5, 1, 1) == "new"
    assert rfm.named_segment(4, 1, 1) == "promising"
    assert rfm.named_segment(4, 2, 2) == "potential_loyalist"
    assert rfm.named_segment(3, 3, 3) == "loyal"
    assert rfm.named_segment(3, 2, 2) == "need_attention"
    assert rfm.named_segment(3, 1, 1) == "about_to_sleep"
    assert rfm.named_segment(1, 5, 5) == "cannot_lose"
    assert rfm.named_segment(2, 4, 3) == "at_risk"
    assert rfm.named_segment(2, 1, 2) == "hibernating"
    assert rfm.named_segment(1, 1, 1) == "lost"
    assert rfm.named_segment(None, 1, 1) is None


def test_value_tiers_follow_the_monetary_score() -> None:
    assert [rfm.value_tier(m) for m in (5, 4, 3, 2, 1, None)] == [
        "top", "high", "medium", "low", "low", "none"
    ]  # fmt: skip


# Lifecycle, churn, matrix ---------------------------------------------------------------


def days(n: int) -> date:
    return TODAY - timedelta(days=n)


@pytest.mark.parametrize(
    ("first", "last", "previous", "stage"),
    [
        (None, None, None, "prospect"),
        (days(800), days(400), None, "lapsed"),
        (days(800), days(200), None, "at_risk"),
        (days(800), days(10), days(300), "reactivated"),
        (days(30), days(5), days(30), "new"),
        (days(200), days(5), days(100), "growing"),
        (days(700), days(5), days(60), "retained"),
    ],
)
def test_lifecycle_stages(
    first: date | None, last: date | None, previous: date | None, stage: str
) -> None:
    assert lifecycle.stage(TODAY, first, last, previous) == stage


def test_churn_thresholds_apply_to_the_top_tiers_only() -> None:
    common: dict[str, Any] = {
        "today": TODAY, "first": days(100), "last": days(100), "purchase_count": 1,
        "nps_latest": None, "complaints_past_target": 0,
    }  # fmt: skip
    assert churn.reasons(tier="top", **common) == []
    # every 10 days for 100 days, then nothing for 40: more than 3 x 10 and 30 days
    overdue = {**common, "first": days(140), "last": days(40), "purchase_count": 11}
    assert churn.reasons(tier="top", **overdue) == ["overdue_purchase"]
    assert churn.reasons(tier="high", **{**overdue, "last": days(29)}) == []
    assert churn.reasons(tier="medium", **overdue) == []
    assert churn.reasons(tier="high", **{**common, "nps_latest": 6}) == ["detractor"]
    assert churn.reasons(tier="high", **{**common, "nps_latest": 7}) == []
    assert churn.reasons(tier="top", **{**common, "complaints_past_target": 1}) == [
        "complaint_past_target"
    ]


def test_value_satisfaction_quadrants() -> None:
    assert matrix.nps_category(9) == "promoter"
    assert matrix.nps_category(7) == "passive"
    assert matrix.nps_category(6) == "detractor"
    assert matrix.satisfaction(4.0, 0) == "high"  # CSAT decides when present
    assert matrix.satisfaction(None, 6) == "low"
    assert matrix.satisfaction(None, None) == "unknown"
    assert matrix.quadrant("top", "high") == "focus_and_consolidate"
    assert matrix.quadrant("high", "low") == "win_back"
    assert matrix.quadrant("medium", "high") == "maintain"
    assert matrix.quadrant("low", "low") == "let_go"
    assert matrix.quadrant("none", "high") is None
    assert matrix.quadrant("top", "unknown") is None


# Rule language ------------------------------------------------------------------------


def test_rules_combine_comparisons() -> None:
    rule = {
        "all": [
            {"field": "total_spend", "op": "between", "value": [100, 1000]},
            {"any": [
                {"field": "region", "op": "in", "value": ["华东"]},
                {"field": "tags", "op": "contains", "value": "vip"},
            ]},
            {"not": {"field": "nps_latest", "op": "le", "value": 6}},
            {"field": "last_purchase_date", "op": "ge", "value": "2026-01-01"},
        ]
    }  # fmt: skip
    check = compile_rule(rule)
    base = {"total_spend": 500.0, "region": "华北", "tags": ["vip"], "nps_latest": 9,
            "last_purchase_date": date(2026, 3, 1)}  # fmt: skip
    assert check(base)
    assert not check({**base, "total_spend": 1000.01})
    assert not check({**base, "tags": []})
    assert check({**base, "tags": [], "region": "华东"})
    assert not check({**base, "nps_latest": 3})
    assert check({**base, "nps_latest": None})  # a missing value makes the comparison false
    assert not check({**base, "last_purchase_date": date(2025, 12, 31)})
    assert fields_of(rule) == ["total_spend", "region", "tags", "nps_latest", "last_purchase_date"]
    assert compile_rule({"field": "nps_latest", "op": "exists", "value": False})({})


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"field": "shoe_size", "op": "eq", "value": 1}, "unknown field 'shoe_size'"),
        ({"field": "region", "op": "like", "value": "x"}, "unknown operator 'like'"),
        ({"field": "tags", "op": "lt", "value": "x"}, "operator 'lt' does not apply to 'tags'"),
        ({"field": "total_spend", "op": "gt", "value": "1"}, "'total_spend' is a number"),
        ({"field": "total_spend", "op": "gt", "value": True}, "'total_spend' is a number"),
        ({"field": "last_purchase_date", "op": "gt", "value": "soon"}, "is a date"),
        ({"field": "region", "op": "in", "value": []}, "non-empty list"),
        ({"field": "region", "op": "eq"}, "needs a value"),
        ({"any": []}, "non-empty list"),
        ({"all": [{"field": "x", "op": "eq", "value": 1}]}, "rule.all[0]: unknown field"),
        ({"not": {}, "all": []}, "only key"),
        ([], "JSON object"),
        ({"field": "region", "op": "eq", "value": "a", "extra": 1}, "unknown key"),
    ],
)
def test_invalid_rules_are_refused_naming_the_problem(rule: Any, message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        compile_rule(rule)


def test_a_segment_definition_refuses_an_invalid_rule_and_versions_changes() -> None:
    with pytest.raises(RuleError):
        SegmentDefinition(key="x", name="x", description="", rule={"field": "nope"})
    rule = {"field": "region", "op": "eq", "value": "华东"}
    definition = SegmentDefinition(key="east", name="华东", description="", rule=rule)
    assert definition.version == 1
    assert definition.change(name="华东", description="", rule=rule) is False
    assert definition.change(name="华东", description="", rule={**rule, "value": "华北"})
    assert definition.version == 2


# Conversion and the fold ---------------------------------------------------------------


def test_amounts_are_converted_with_the_fixed_table() -> None:
    cny = Converter("CNY")
    assert cny.convert(Decimal("100"), "USD") == Decimal("720.00")
    eur = Converter("EUR")
    assert eur.convert(Decimal("780"), "CNY") == Decimal("100.00")
    assert Converter("CNY", {"USD": Decimal("7")}).convert(Decimal("1"), "USD") == Decimal("7.00")
    with pytest.raises(ValueError, match="XYZ"):
        Converter("XYZ")


def fold(documents: list[bytes]) -> Profile:
    profile = Profile(uuid.uuid4())
    for raw in documents:
        apply(profile, parse_event(raw), Converter("CNY"), NOW)
    return profile


def test_the_fold_does_not_depend_on_the_order_of_events() -> None:
    events = history(30, now=NOW)
    by_customer: dict[str, list[bytes]] = {}
    for event in events:
        by_customer.setdefault(str(event.customer_id), []).append(event.message()[2])
    rng = random.Random(5)
    for documents in by_customer.values():
        reference = fold(documents).to_state()
        shuffled = list(documents)
        rng.shuffle(shuffled)
        state = fold(shuffled).to_state()
        state["recent_contacts"] = sorted(state["recent_contacts"])
        reference["recent_contacts"] = sorted(reference["recent_contacts"])
        assert orjson.dumps(state, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            reference, option=orjson.OPT_SORT_KEYS
        )


def test_conclusions_name_the_changes_and_their_values() -> None:
    profile = Profile(uuid.uuid4(), registered=True, region="华东")
    profile.purchase_count = 3
    profile.total_spend = Decimal("9000")
    profile.first_purchase_at = NOW - timedelta(days=300)
    profile.last_purchase_at = NOW - timedelta(days=200)
    profile.recency_score, profile.frequency_score, profile.monetary_score = 2, 5, 5
    profile.nps_latest = 2
    rule = SegmentRule.of("east", 3, "华东", {"field": "region", "op": "eq", "value": "华东"})
    outcome = conclude(profile, NOW, [rule])
    entered = {c.segment: c for c in outcome.changes}
    assert set(entered) == {"rfm.cannot_lose", "tier.top", "lifecycle.at_risk", "east"}
    assert entered["east"].rule_version == 3
    assert entered["east"].values == {"region": "华东"}
    assert entered["rfm.cannot_lose"].values == {
        "recency_score": 2, "frequency_score": 5, "monetary_score": 5
    }  # fmt: skip
    assert outcome.churn_event == "raised"
    assert outcome.churn_reasons == ["overdue_purchase", "detractor"]
    profile.region = "华北"
    profile.nps_latest = 10
    profile.last_purchase_at = NOW - timedelta(days=1)
    again = conclude(profile, NOW, [rule])
    moved = {(c.segment, c.direction) for c in again.changes}
    assert ("east", "left") in moved and ("lifecycle.at_risk", "left") in moved
    assert again.churn_event == "cleared"
    assert conclude(profile, NOW, [rule]).changes == []


def test_the_fold_writes_conclusions_as_contract_envelopes() -> None:
    raw = envelope(
        "analytics.segment_changed",
        uuid.uuid4(),
        {"segment": "rfm.champions", "direction": "entered", "rule_version": 1,
         "values": {"recency_score": 5}},
        NOW.isoformat(),
    )  # fmt: skip
    event: Any = parse_event(raw)
    assert event.payload.segment == "rfm.champions"
    churned: Any = parse_event(
        envelope(
            "analytics.churn_risk_raised",
            uuid.uuid4(),
            {"reasons": ["detractor"], "value_tier": "top", "values": {}},
            NOW.isoformat(),
        )
    )
    assert churned.payload.reasons == ["detractor"]
