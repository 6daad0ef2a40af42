"""Conclusions (`services.analytics.domain.segments`): segment changes with their values,
and churn warnings raised and cleared."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.analytics.domain.profile import Profile
from services.analytics.domain.rules import FIELDS as RULE_FIELDS
from services.analytics.domain.segments import FIELDS, SegmentRule, conclude, field_values

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


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


def test_every_field_of_the_rule_language_is_a_value_of_the_profile() -> None:
    profile = Profile(uuid.uuid4(), registered=True, kind="business")
    profile.purchase_count, profile.total_spend = 2, Decimal("300.00")
    profile.first_purchase_at = profile.previous_purchase_at = NOW - timedelta(days=40)
    profile.last_purchase_at = NOW - timedelta(days=10)
    values = field_values(profile, NOW)
    assert list(values) == list(FIELDS)
    assert set(values) == set(RULE_FIELDS) | {"churn_risk"}
    assert values["average_spend"] == Decimal("150.00")
    assert values["days_between_last_purchases"] == 30


def test_a_conclusion_keeps_the_values_of_its_moment_when_the_profile_changes() -> None:
    """A defined rule may read any field: each is computed as of the conclusion, and the
    values a raised churn warning records stay those of the moment it was raised."""
    profile = Profile(uuid.uuid4(), registered=True)
    profile.purchase_count, profile.total_spend = 1, Decimal("50000")
    profile.first_purchase_at = profile.last_purchase_at = NOW - timedelta(days=20)
    profile.recency_score, profile.frequency_score, profile.monetary_score = 4, 1, 5
    profile.nps_latest = 3
    busy = SegmentRule.of("busy", 1, "Busy", {"field": "interactions_90d", "op": "ge", "value": 1})
    outcome = conclude(profile, NOW, [busy])
    assert "busy" not in outcome.memberships
    assert outcome.churn_event == "raised"
    profile.purchase_count += 1
    profile.nps_latest = 9
    assert outcome.values["purchase_count"] == 1
    assert outcome.values["nps_latest"] == 3
    assert outcome.values["days_since_last_purchase"] == 20
