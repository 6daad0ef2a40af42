"""Events of the analytics service, published on `Topic.ANALYTICS`.

The analytics service folds the customer, sales and interaction topics into one profile
per customer. Its conclusions are events too:

- `analytics.segment_defined`: a dynamic segment was defined or its rule changed (a new
  version). Not about one customer: the envelope's `customer_id` is the nil UUID
  (`00000000-0000-0000-0000-000000000000`), so every definition lands on one partition,
  in order; `aggregate_id` is the segment definition.
- `analytics.segment_changed`: a customer entered or left a segment, with the rule
  version that decided it and the profile values the rule looked at.
- `analytics.churn_risk_raised` / `analytics.churn_risk_cleared`: a customer of the top
  value tiers crossed a churn threshold, or no longer does.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints

from contracts.envelope import EventPayload
from contracts.values import JSON_LINES, LINE, Line, Text

NO_CUSTOMER = UUID(int=0)
"""`customer_id` of events that are not about one customer (segment definitions)."""

SegmentKey = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)?$", min_length=2, max_length=64),
    LINE,
]


class SegmentDirection(StrEnum):
    """Whether the customer entered or left the segment."""

    ENTERED = "entered"
    LEFT = "left"


class ChurnReason(StrEnum):
    OVERDUE_PURCHASE = "overdue_purchase"
    DETRACTOR = "detractor"
    COMPLAINT_PAST_TARGET = "complaint_past_target"
    PROBABLY_INACTIVE = "probably_inactive"


class SegmentDefined(EventPayload):
    """A dynamic segment's definition, new or changed (`version` counts the changes).

    `rule` is the segment rule language (docs/analytics.md, "Segments and the rule
    language"): a JSON tree of `all`/`any`/`not` and comparisons (`eq`, `ne`, `lt`,
    `le`, `gt`, `ge`, `between`, `in`, `contains`, `exists`) over profile fields.
    """

    event_type = "analytics.segment_defined"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "segment": "unhappy_vips",
                    "name": "不满意的大客户",
                    "description": "High-value customers whose latest NPS answer is a detractor's",
                    "version": 2,
                    "rule": {
                        "all": [
                            {"field": "value_tier", "op": "in", "value": ["top", "high"]},
                            {"field": "nps_category", "op": "eq", "value": "detractor"},
                        ]
                    },
                }
            ]
        }
    )

    segment: SegmentKey
    name: Line = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=2000)
    version: int = Field(ge=1)
    rule: Annotated[dict[str, Any], JSON_LINES]


class SegmentChanged(EventPayload):
    """The customer entered or left a segment.

    `segment` is a built-in segment (`rfm.champions`, `lifecycle.at_risk`,
    `tier.top`, ...) or a defined one; `rule_version` is the version of the definition
    that decided (1 for built-in segments, whose rules are fixed in code); `values` holds
    the profile fields the rule read, as they were when it decided: amounts
    (`total_spend`, `average_spend`) as decimal strings in the reporting currency
    (`"120000.00"`), dates as `YYYY-MM-DD`.
    """

    event_type = "analytics.segment_changed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "segment": "unhappy_vips",
                    "direction": "entered",
                    "rule_version": 2,
                    "values": {"value_tier": "top", "nps_category": "detractor"},
                }
            ]
        }
    )

    segment: Line = Field(min_length=1, max_length=64)
    direction: SegmentDirection
    rule_version: int = Field(ge=1)
    values: Annotated[dict[str, Any], JSON_LINES] = Field(default_factory=dict)


class ChurnRiskRaised(EventPayload):
    """A customer of the top value tiers crossed a churn threshold (docs/analytics.md,
    "Churn warnings")."""

    event_type = "analytics.churn_risk_raised"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reasons": ["overdue_purchase", "detractor"],
                    "value_tier": "top",
                    "values": {
                        "value_tier": "top",
                        "purchase_count": 14,
                        "last_purchase_date": "2026-07-06",
                        "days_since_last_purchase": 140,
                        "nps_latest": 3,
                        "complaints_open": 0,
                    },
                }
            ]
        }
    )

    reasons: list[ChurnReason] = Field(min_length=1)
    value_tier: Line
    values: Annotated[dict[str, Any], JSON_LINES] = Field(default_factory=dict)


class ChurnRiskCleared(EventPayload):
    """The customer no longer meets any churn threshold, or left the top value tiers."""

    event_type = "analytics.churn_risk_cleared"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "value_tier": "top",
                    "values": {
                        "value_tier": "top",
                        "purchase_count": 15,
                        "last_purchase_date": "2026-11-21",
                        "days_since_last_purchase": 2,
                        "nps_latest": 9,
                        "complaints_open": 0,
                    },
                }
            ]
        }
    )

    value_tier: Line
    values: Annotated[dict[str, Any], JSON_LINES] = Field(default_factory=dict)


EVENTS: tuple[type[EventPayload], ...] = (
    SegmentDefined,
    SegmentChanged,
    ChurnRiskRaised,
    ChurnRiskCleared,
)
