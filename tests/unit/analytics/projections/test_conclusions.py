"""The fold's conclusions as contract envelopes (`services.analytics.projections.conclusions`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from contracts.registry import parse_event
from services.analytics.projections.conclusions import envelope

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


def test_the_fold_writes_conclusions_as_contract_envelopes() -> None:
    raw = envelope(
        "analytics.segment_changed",
        uuid.uuid4(),
        {"segment": "rfm.champions", "direction": "entered", "rule_version": 1,
         "values": {"recency_score": 5}},
        NOW.isoformat(),
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
            NOW.isoformat(),
        )
    )
    assert churned.payload.reasons == ["detractor"]
