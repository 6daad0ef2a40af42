"""Churn warnings (`services.analytics.domain.churn`): thresholds for the top value tiers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.analytics.domain import churn

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
TODAY = NOW.date()


def days(n: int) -> date:
    return TODAY - timedelta(days=n)


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


def test_a_customer_the_model_thinks_gone_is_at_risk() -> None:
    common: dict[str, Any] = {
        "today": TODAY, "first": days(100), "last": days(10), "purchase_count": 3,
        "nps_latest": None, "complaints_past_target": 0,
    }  # fmt: skip
    assert churn.reasons(tier="top", **common, probability_active=0.49) == ["probably_inactive"]
    assert churn.reasons(tier="top", **common, probability_active=0.5) == []
    assert churn.reasons(tier="top", **common, probability_active=None) == []  # not scored
    assert churn.reasons(tier="medium", **common, probability_active=0.01) == []
