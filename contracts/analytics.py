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
- `analytics.prediction_made` / `analytics.prediction_settled`: a prediction of the
  CRM's models (or a person's, on an activity) entered the ledger with its horizon, and
  was later settled against what happened (docs/analytics.md, "The ledger of
  predictions"). A prediction about the whole population has the nil UUID as
  `customer_id`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints

from contracts.envelope import EventPayload
from contracts.values import JSON_LINES, LINE, Line, Moment, Text

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
    (`"120000.00"`), dates as `YYYY-MM-DD`. A customer merged into another leaves its
    segments with `values` `{"merged_into": <survivor>, "merge_id": ...}`; undoing the
    merge adds `"merge_undone": <merge id>` to the values of the changes it makes.
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


class PredictionKind(StrEnum):
    """What is predicted."""

    PURCHASES = "purchases"
    """The number of purchases a customer makes within `window_days` (`expected`)."""
    ACTIVE = "active"
    """The customer buys at least once within `window_days` (`probability`)."""
    POPULATION_WEEK = "population_week"
    """The number of purchases the customers of a fit make in one week (`expected`)."""
    WIN = "win"
    """The deal is won (`probability`)."""
    CHURN = "churn"
    """A churn warning: the customer does not buy within `window_days`."""
    ACTIVITY = "activity"
    """What the activity's owner predicted comes of it."""


class SettledBy(StrEnum):
    """What settled a prediction."""

    WINDOW_ENDED = "window_ended"
    BOUGHT = "bought"
    WON = "won"
    LOST = "lost"
    OWNER_SAID = "owner_said"


Probability = Annotated[float, Field(ge=0, le=1)]
ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class PredictionMade(EventPayload):
    """A prediction entered the ledger, with its horizon.

    `model` made it (`bg_nbd`, `win_probability` with their `model_version`;
    `stage_default`, the stage's default win probability; `churn_rules`; `person`, the
    activity's owner in `made_by`). A yes/no prediction carries its `probability` (none
    for a churn warning or a person's prediction: they say "yes"); a count, its
    `expected` value. `horizon_at` is the end of the window (for a deal, its expected
    close date; for an activity, its scheduled day). A person's predicted result itself
    stays with the activity in the sales service (`sales.activity_planned`).
    """

    event_type = "analytics.prediction_made"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prediction_id": "0f8e2b6c-3d1a-4c5e-9b7f-6a2d1e0c9b8a",
                    "kind": "active",
                    "model": "bg_nbd",
                    "model_version": 3,
                    "made_at": "2026-11-23T02:00:00+00:00",
                    "horizon_at": "2027-02-21T02:00:00+00:00",
                    "window_days": 90,
                    "probability": 0.62,
                    "probability_active": 0.81,
                },
                {
                    "prediction_id": "7c4d9e1a-2b3f-4a6c-8d5e-1f0a9b8c7d6e",
                    "kind": "win",
                    "model": "win_probability",
                    "model_version": 5,
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "made_at": "2026-11-23T02:00:00+00:00",
                    "horizon_at": "2026-12-31T00:00:00+00:00",
                    "probability": 0.71,
                    "stage": "proposal",
                },
            ]
        }
    )

    prediction_id: UUID
    kind: PredictionKind
    model: ModelName
    model_version: int | None = Field(default=None, ge=1)
    made_by: Line | None = Field(default=None, max_length=200)
    opportunity_id: UUID | None = None
    activity_id: Line | None = Field(default=None, max_length=200)
    made_at: Moment
    horizon_at: Moment | None = None
    window_days: int | None = Field(default=None, ge=1)
    probability: Probability | None = None
    expected: float | None = Field(default=None, ge=0)
    probability_active: Probability | None = None
    stage: Line | None = Field(default=None, max_length=64)
    reasons: list[ChurnReason] = Field(default_factory=list)


class PredictionSettled(EventPayload):
    """A prediction of the ledger was settled against what happened: `held` says whether
    it held; `happened` whether the predicted thing happened (yes/no predictions), or
    `actual` the count (purchases); `settled_by` what settled it."""

    event_type = "analytics.prediction_settled"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prediction_id": "7c4d9e1a-2b3f-4a6c-8d5e-1f0a9b8c7d6e",
                    "kind": "win",
                    "model": "win_probability",
                    "model_version": 5,
                    "opportunity_id": "5a1f0c2e-8b7d-4e6a-9c3b-2d1e0f9a8b7c",
                    "made_at": "2026-11-23T02:00:00+00:00",
                    "settled_at": "2026-12-18T09:30:00+00:00",
                    "settled_by": "won",
                    "held": True,
                    "happened": True,
                }
            ]
        }
    )

    prediction_id: UUID
    kind: PredictionKind
    model: ModelName
    model_version: int | None = Field(default=None, ge=1)
    opportunity_id: UUID | None = None
    made_at: Moment
    settled_at: Moment
    settled_by: SettledBy
    held: bool
    happened: bool | None = None
    actual: float | None = Field(default=None, ge=0)


EVENTS: tuple[type[EventPayload], ...] = (
    SegmentDefined,
    SegmentChanged,
    ChurnRiskRaised,
    ChurnRiskCleared,
    PredictionMade,
    PredictionSettled,
)
