"""The request bodies of the interaction commands."""

from __future__ import annotations

from uuid import UUID

from pydantic import ConfigDict, Field

from contracts.interaction_values import (
    CONSENT_OVERRIDE_FIELD,
    ConsentOverride,
    Csat,
    Direction,
    FeedbackKind,
    InteractionChannel,
    LongText,
    Nps,
    Participant,
    Severity,
    ShortText,
    TicketKind,
)
from contracts.timestamps import PastDatetime, PlannedMoment
from services.runtime.http.commands import StrictBody


class LogInteraction(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "0b6f5c1e-3d2a-4c1b-9e8f-7a6b5c4d3e2f",
                    "channel": "meeting",
                    "direction": "outbound",
                    "started_at": "2026-11-20T14:00:00+08:00",
                    "duration_seconds": 3600,
                    "participants": [
                        {"role": "staff", "name": "李娜"},
                        {"role": "contact", "name": "张伟", "contact_id": "primary"},
                    ],
                    "subject": "年度合同续签洽谈",
                    "notes": "客户希望增加华南区的配送服务。下周提交报价。",
                }
            ]
        },
    )

    customer_id: UUID
    channel: InteractionChannel
    direction: Direction
    started_at: PastDatetime | None = Field(
        default=None, description="When the contact began; now when absent. Not in the future."
    )
    duration_seconds: int | None = Field(default=None, ge=0, le=7 * 86_400)
    participants: list[Participant] = Field(default_factory=list, max_length=50)
    subject: ShortText
    notes: LongText = ""
    opportunity_id: UUID | None = None
    ticket_id: UUID | None = None
    consent_override: ConsentOverride | None = Field(
        default=None, description=CONSENT_OVERRIDE_FIELD
    )


class CorrectInteraction(StrictBody):
    """Only the fields present are corrected; `reason` says why (kept in the history)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"duration_seconds": 1800, "reason": "the call was logged as an hour"}]
        },
    )

    channel: InteractionChannel | None = None
    direction: Direction | None = None
    started_at: PastDatetime | None = None
    duration_seconds: int | None = Field(default=None, ge=0, le=7 * 86_400)
    participants: list[Participant] | None = Field(default=None, max_length=50)
    subject: ShortText | None = None
    notes: LongText | None = None
    opportunity_id: UUID | None = None
    ticket_id: UUID | None = None
    consent_override: ConsentOverride | None = Field(
        default=None,
        description="Needed when the correction makes the contact an outbound one on a "
        "channel the customer opted out of; given alone, it states the reason for a contact "
        "recorded as a consent breach.",
    )
    reason: ShortText


class OpenTicket(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "0b6f5c1e-3d2a-4c1b-9e8f-7a6b5c4d3e2f",
                    "kind": "complaint",
                    "channel": "phone",
                    "category": "delivery",
                    "severity": "high",
                    "subject": "货物延迟三天未送达",
                    "description": "订单 SO-1029 承诺 11 月 18 日送达。至今未收到。",
                }
            ]
        },
    )

    customer_id: UUID
    kind: TicketKind
    channel: InteractionChannel
    category: ShortText = Field(description="What it is about, e.g. delivery, billing, quality.")
    severity: Severity
    subject: ShortText
    description: LongText = ""
    opened_at: PastDatetime | None = Field(
        default=None,
        description="When the customer raised it, if earlier than now (the service-level "
        "clocks run from this moment). Not in the future.",
    )


class AssignTicket(StrictBody):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"assignee": "王芳"}]}
    )

    assignee: ShortText


class EscalateTicket(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"severity": "critical", "reason": "客户威胁退货"}]},
    )

    severity: Severity | None = Field(
        default=None, description="The higher severity; absent to raise only the level."
    )
    reason: ShortText


class RespondToTicket(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"responder": "王芳", "message": "已联系物流。今日送达"}]},
    )

    responder: ShortText
    message: LongText = ""
    responded_at: PastDatetime | None = Field(default=None, description="Now when absent.")


class ResolveTicket(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"resolution": "货物已送达。补偿优惠券 50 元"}]},
    )

    resolution: ShortText
    resolved_at: PastDatetime | None = Field(default=None, description="Now when absent.")


class ReopenTicket(StrictBody):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "客户反馈货物破损"}]}
    )

    reason: ShortText


class AnswerSurvey(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "0b6f5c1e-3d2a-4c1b-9e8f-7a6b5c4d3e2f",
                    "survey": "post-ticket",
                    "csat": 4,
                    "nps": 8,
                    "comment": "响应很快",
                    "channel": "phone",
                }
            ]
        },
    )

    customer_id: UUID
    survey: ShortText
    csat: Csat | None = None
    nps: Nps | None = None
    comment: LongText = ""
    channel: InteractionChannel | None = None
    interaction_id: UUID | None = None
    ticket_id: UUID | None = None
    answered_at: PastDatetime | None = Field(default=None, description="Now when absent.")


class GiveFeedback(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "0b6f5c1e-3d2a-4c1b-9e8f-7a6b5c4d3e2f",
                    "kind": "suggestion",
                    "text": "希望增加微信下单功能",
                    "channel": "wechat",
                }
            ]
        },
    )

    customer_id: UUID
    kind: FeedbackKind
    text: LongText = Field(min_length=1)
    channel: InteractionChannel | None = None
    interaction_id: UUID | None = None
    given_at: PastDatetime | None = Field(default=None, description="Now when absent.")


class SetContactPlan(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"channel": "phone", "every_days": 30, "owner": "李娜", "note": "季度回访"}
            ]
        },
    )

    channel: InteractionChannel
    every_days: int = Field(ge=1, le=3660, description="Contact at least this often.")
    owner: ShortText | None = None
    note: LongText = ""
    starts_at: PlannedMoment | None = Field(
        default=None, description="When the first contact is due if none happened; now if absent."
    )


class EndContactPlan(StrictBody):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "客户要求暂停回访"}]}
    )

    reason: LongText = ""
