"""Events of the interaction service, published on `Topic.INTERACTION`.

The value types and enumerations (`Severity`, `InteractionChannel`...) are in
`contracts.interaction_values`; the documents other systems publish to the service
(`CallLog`, `InboundMessage`, `SurveyAnswer` on `Topic.CALL_LOGS_INBOUND`,
`Topic.MESSAGES_INBOUND`, `Topic.SURVEY_ANSWERS_INBOUND`) are in
`contracts.inbound.interactions`; those three stay importable from here.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.envelope import EventPayload
from contracts.inbound.interactions import CallLog, InboundMessage, SurveyAnswer
from contracts.interaction_values import (
    CONSENT_OVERRIDE_FIELD,
    ConsentOverride,
    Direction,
    FeedbackKind,
    InteractionChannel,
    Participant,
    PersonalLine,
    PersonalText,
    Severity,
    TicketKind,
)
from contracts.references import CustomerHint, CustomerReference
from contracts.topics import Topic
from contracts.values import Line, Moment, Text


class ReferencedCustomer(BaseModel):
    """Set when the fact came from another system naming the customer by its own id."""

    customer_reference: CustomerReference | None = Field(
        default=None, description="How the sending system named the customer."
    )
    customer_hint: CustomerHint | None = Field(
        default=None, description="What the sending system knew of the customer."
    )


# Events ------------------------------------------------------------------------------


class InteractionLogged(EventPayload, ReferencedCustomer):
    """A contact with a customer happened. The envelope's `occurred_at` is `started_at`."""

    event_type = "interaction.logged"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "channel": "phone",
                    "direction": "inbound",
                    "started_at": "2026-11-23T09:15:00+08:00",
                    "duration_seconds": 312,
                    "participants": [
                        {"role": "staff", "name": "王芳", "contact_id": None},
                        {"role": "contact", "name": "张伟", "contact_id": None},
                    ],
                    "subject": "咨询发票开具",
                    "notes": "客户询问增值税专用发票的开具时间。",
                    "opportunity_id": None,
                    "ticket_id": None,
                    "source": "callcentre",
                    "source_id": "C-20261123-0042",
                    "customer_reference": {
                        "source": "callcentre",
                        "source_customer_id": "86-13800138000",
                    },
                    "customer_hint": {"name": "张伟", "phone": "+86 138 0013 8000"},
                }
            ]
        }
    )

    channel: InteractionChannel
    direction: Direction
    started_at: Moment
    duration_seconds: int | None = Field(default=None, ge=0)
    participants: list[Participant] = Field(default_factory=list)
    subject: PersonalLine = Field(max_length=200)
    notes: PersonalText = Field(default="", max_length=20_000)
    opportunity_id: UUID | None = None
    ticket_id: UUID | None = None
    source: Line | None = Field(default=None, description="The system that reported it, if any.")
    source_id: Line | None = Field(default=None, description="Its id in that system.")
    consent_override: ConsentOverride | None = Field(
        default=None, description=CONSENT_OVERRIDE_FIELD
    )
    consent_breach: bool = Field(
        default=False,
        description="An outbound contact on a channel the customer had opted out of, "
        "reported by another system after the fact with no reason stated.",
    )


class InteractionCorrected(EventPayload):
    """Fields of a logged interaction corrected; only those in `changed` are meaningful."""

    event_type = "interaction.corrected"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "duration_seconds": 5400,
                    "changed": ["duration_seconds"],
                    "reason": "会议时长记录有误",
                }
            ]
        }
    )

    channel: InteractionChannel | None = None
    direction: Direction | None = None
    started_at: Moment | None = None
    duration_seconds: int | None = None
    participants: list[Participant] | None = None
    subject: PersonalLine | None = None
    notes: PersonalText | None = None
    opportunity_id: UUID | None = None
    ticket_id: UUID | None = None
    consent_override: ConsentOverride | None = None
    consent_breach: bool | None = Field(
        default=None,
        description="Whether the contact, as corrected, still went against an opt-out "
        "with no reason stated.",
    )
    changed: list[Line] = Field(description="Names of the corrected fields.")
    reason: PersonalText = Field(description="Why it was corrected.")


class TicketOpened(EventPayload, ReferencedCustomer):
    """A service request or complaint; due times follow the severity's service level."""

    event_type = "interaction.ticket_opened"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "complaint",
                    "channel": "phone",
                    "category": "delivery",
                    "severity": "high",
                    "subject": "发货延迟",
                    "description": "订单 SO-20261115-0007 超过承诺时间未发货",
                    "opened_at": "2026-11-23T09:20:00+08:00",
                    "response_due_at": "2026-11-23T09:50:00+08:00",
                    "resolution_due_at": "2026-11-23T17:20:00+08:00",
                }
            ]
        }
    )

    kind: TicketKind
    channel: InteractionChannel
    category: Line
    severity: Severity
    subject: PersonalLine
    description: PersonalText = ""
    opened_at: Moment
    response_due_at: Moment
    resolution_due_at: Moment


class TicketAssigned(EventPayload):
    event_type = "interaction.ticket_assigned"
    model_config = ConfigDict(json_schema_extra={"examples": [{"assignee": "王芳"}]})

    assignee: Line


class TicketEscalated(EventPayload):
    """Raised in severity (or to a higher support level); due times may become earlier."""

    event_type = "interaction.ticket_escalated"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "severity": "critical",
                    "level": 2,
                    "reason": "客户再次来电投诉",
                    "response_due_at": "2026-11-23T10:15:00+08:00",
                    "resolution_due_at": "2026-11-23T13:00:00+08:00",
                }
            ]
        }
    )

    severity: Severity
    level: int = Field(ge=1, description="Escalation level after this escalation.")
    reason: PersonalText
    response_due_at: Moment
    resolution_due_at: Moment


class TicketResponded(EventPayload):
    """The customer got an answer. The first one stops the response clock."""

    event_type = "interaction.ticket_responded"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "responded_at": "2026-11-23T09:40:00+08:00",
                    "responder": "王芳",
                    "message": "已联系仓库加急处理",
                }
            ]
        }
    )

    responded_at: Moment
    responder: Line
    message: PersonalText = ""


class TicketResolved(EventPayload):
    event_type = "interaction.ticket_resolved"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"resolved_at": "2026-11-23T12:30:00+08:00", "resolution": "已通过顺丰加急补发"}
            ]
        }
    )

    resolved_at: Moment
    resolution: PersonalText


class TicketReopened(EventPayload):
    """The resolution did not hold: the resolution clock restarts from `reopened_at`."""

    event_type = "interaction.ticket_reopened"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reopened_at": "2026-11-25T09:00:00+08:00",
                    "reason": "客户仍未收到货物",
                    "resolution_due_at": "2026-11-25T17:00:00+08:00",
                }
            ]
        }
    )

    reopened_at: Moment
    reason: PersonalText
    resolution_due_at: Moment


class TicketClosed(EventPayload):
    event_type = "interaction.ticket_closed"
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"closed_at": "2026-11-26T18:00:00+08:00"}]}
    )

    closed_at: Moment


class SurveyAnswered(EventPayload, ReferencedCustomer):
    """A satisfaction survey answer: CSAT, NPS or both."""

    event_type = "interaction.survey_answered"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "survey": "post-ticket",
                    "csat": 4,
                    "nps": 9,
                    "comment": "处理很及时。谢谢",
                    "channel": "phone",
                    "interaction_id": None,
                    "ticket_id": None,
                    "answered_at": "2026-11-23T12:00:00+08:00",
                    "source": "survey-tool",
                    "source_id": "S-77812",
                    "customer_reference": {
                        "source": "callcentre",
                        "source_customer_id": "86-13800138000",
                    },
                    "customer_hint": None,
                }
            ]
        }
    )

    survey: Line
    csat: int | None = Field(default=None, ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    comment: PersonalText = ""
    channel: InteractionChannel | None = None
    interaction_id: UUID | None = None
    ticket_id: UUID | None = None
    answered_at: Moment
    source: Line | None = None
    source_id: Line | None = None


class FeedbackGiven(EventPayload):
    """A suggestion or praise from the customer (complaints are tickets)."""

    event_type = "interaction.feedback_given"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "suggestion",
                    "text": "希望支持在微信里直接开发票",
                    "channel": "wechat",
                    "interaction_id": None,
                    "given_at": "2026-11-23T15:00:00+08:00",
                }
            ]
        }
    )

    kind: FeedbackKind
    text: PersonalText
    channel: InteractionChannel | None = None
    interaction_id: UUID | None = None
    given_at: Moment


class ContactPlanSet(EventPayload):
    """How often and on which channel the customer is to be contacted (replaces any plan)."""

    event_type = "interaction.contact_plan_set"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "channel": "phone",
                    "every_days": 30,
                    "owner": "李娜",
                    "note": "每月回访一次",
                    "starts_at": "2026-12-01T09:00:00+08:00",
                }
            ]
        }
    )

    channel: InteractionChannel
    every_days: int = Field(ge=1, le=3660)
    owner: Line | None = None
    note: PersonalText = ""
    starts_at: Moment


class ContactPlanEnded(EventPayload):
    event_type = "interaction.contact_plan_ended"
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "客户要求停止定期回访"}]})

    reason: Text = ""


EVENTS: tuple[type[EventPayload], ...] = (
    InteractionLogged,
    InteractionCorrected,
    TicketOpened,
    TicketAssigned,
    TicketEscalated,
    TicketResponded,
    TicketResolved,
    TicketReopened,
    TicketClosed,
    SurveyAnswered,
    FeedbackGiven,
    ContactPlanSet,
    ContactPlanEnded,
)

INBOUND: dict[str, type[BaseModel]] = {
    Topic.CALL_LOGS_INBOUND: CallLog,
    Topic.MESSAGES_INBOUND: InboundMessage,
    Topic.SURVEY_ANSWERS_INBOUND: SurveyAnswer,
}
"""Messages other systems publish to the CRM, by topic."""
