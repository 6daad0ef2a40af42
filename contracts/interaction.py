"""Events of the interaction service (`Topic.INTERACTION`) and the inbound messages other
systems publish to it (`Topic.CALL_LOGS_INBOUND`, `Topic.MESSAGES_INBOUND`,
`Topic.SURVEY_ANSWERS_INBOUND`).

Inbound messages are plain JSON documents, not our envelope: a call centre, a messaging
gateway or a survey tool produces them without knowing the CRM's conventions. Each names
its customer by CRM customer id or by the sending system's own reference, and carries
the sender's id of the fact (`source` + `source_id`), which makes a re-sent message a
repeat rather than a second fact.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from contracts.envelope import EventPayload
from contracts.personal import PERSONAL
from contracts.references import CustomerHint, CustomerReference, SourceName
from contracts.timestamps import PastDatetime
from contracts.topics import Topic
from contracts.values import LINE, TEXT, Line, Moment, Text

ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), LINE
]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000), TEXT]
PersonalText = Annotated[Text, PERSONAL]
PersonalLine = Annotated[Line, PERSONAL]
SourceId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128), LINE
]


class InteractionChannel(StrEnum):
    PHONE = "phone"
    MEETING = "meeting"
    EMAIL = "email"
    SMS = "sms"
    CHAT = "chat"
    WECHAT = "wechat"
    VISIT = "visit"
    WEB = "web"


class MessageChannel(StrEnum):
    """The channels a messaging gateway carries."""

    SMS = "sms"
    CHAT = "chat"
    WECHAT = "wechat"
    EMAIL = "email"
    WEB = "web"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ParticipantRole(StrEnum):
    STAFF = "staff"
    CONTACT = "contact"


class Participant(BaseModel):
    """Someone who took part: a member of staff, or one of the customer's contacts."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: ParticipantRole
    name: Annotated[ShortText, PERSONAL]
    contact_id: Line | None = Field(
        default=None, max_length=64, description="The customer's contact person id, if known."
    )


class TicketKind(StrEnum):
    SERVICE_REQUEST = "service_request"
    COMPLAINT = "complaint"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class FeedbackKind(StrEnum):
    SUGGESTION = "suggestion"
    PRAISE = "praise"


Csat = Annotated[int, Field(ge=1, le=5, description="Customer satisfaction, 1 (bad) to 5.")]
Nps = Annotated[int, Field(ge=0, le=10, description="Likelihood to recommend, 0 to 10.")]


class ConsentOverrideReason(StrEnum):
    """Why a contact on a channel the customer opted out of was made all the same."""

    CUSTOMER_REQUEST = "customer_request"
    """The customer asked to be contacted on this channel this time (asked for a call
    back, asked for the quote by SMS)."""
    LEGAL_OBLIGATION = "legal_obligation"
    """A notice the law requires to reach the customer (a product recall, a notice the
    contract requires)."""


class ConsentOverride(BaseModel):
    """The reason stated for an outbound contact on a channel the customer opted out of."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: ConsentOverrideReason = Field(
        description="customer_request: the customer asked for this contact on this channel; "
        "legal_obligation: a notice the law requires."
    )
    note: PersonalText = Field(
        default="", max_length=2000, description="Who asked, when, what for."
    )


CONSENT_OVERRIDE_FIELD = (
    "Why an outbound contact on a channel the customer opted out of was made: the reason "
    "its recorder stated. Without it such a contact is refused (HTTP) or recorded as a "
    "consent breach (inbound topics)."
)


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


# Inbound messages ---------------------------------------------------------------------


class InboundCustomer(BaseModel):
    """Names the customer: by CRM id, or by the sending system's reference (or both)."""

    customer_id: UUID | None = Field(default=None, description="The CRM customer id, if known.")
    customer_reference: CustomerReference | None = Field(
        default=None, description="The customer as the sending system knows them."
    )
    customer_hint: CustomerHint | None = Field(
        default=None,
        description="Name, phone, email: used when the CRM does not know the customer yet.",
    )

    @model_validator(mode="after")
    def _names_a_customer(self) -> Self:
        if self.customer_id is None and self.customer_reference is None:
            raise ValueError("name the customer by customer_id or customer_reference")
        return self


EXAMPLE_CALL_LOG: dict[str, Any] = {
    "source": "callcentre",
    "call_id": "C-20261123-0042",
    "customer_reference": {"source": "callcentre", "source_customer_id": "86-13800138000"},
    "customer_hint": {"name": "张伟", "phone": "+86 138 0013 8000"},
    "direction": "inbound",
    "started_at": "2026-11-23T09:15:00+08:00",
    "duration_seconds": 312,
    "agent": "王芳",
    "subject": "咨询发票开具",
    "notes": "客户询问增值税专用发票的开具时间。已告知三个工作日内寄出。",
}


class CallLog(InboundCustomer):
    """A call handled by the call centre (`Topic.CALL_LOGS_INBOUND`)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [EXAMPLE_CALL_LOG]})

    source: SourceName = Field(description="The call centre system, e.g. callcentre.")
    call_id: SourceId = Field(description="The call's id in that system; the idempotency key.")
    direction: Direction
    started_at: PastDatetime
    duration_seconds: int = Field(ge=0, le=86_400)
    agent: ShortText | None = Field(default=None, description="The agent who took the call.")
    subject: ShortText
    notes: LongText = ""
    ticket_id: UUID | None = Field(default=None, description="The CRM ticket the call is about.")
    consent_override: ConsentOverride | None = Field(
        default=None, description=CONSENT_OVERRIDE_FIELD
    )


EXAMPLE_MESSAGE: dict[str, Any] = {
    "source": "msg-gateway",
    "message_id": "wx-8f2a91",
    "channel": "wechat",
    "customer_id": "0b6f5c1e-3d2a-4c1b-9e8f-7a6b5c4d3e2f",
    "direction": "inbound",
    "sent_at": "2026-11-23T10:02:11+08:00",
    "sender": "张伟",
    "subject": "订单发货进度",
    "text": "请问我上周的订单什么时候发货",
}


class InboundMessage(InboundCustomer):
    """A message carried by the messaging gateway (`Topic.MESSAGES_INBOUND`)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [EXAMPLE_MESSAGE]})

    source: SourceName = Field(description="The gateway, e.g. msg-gateway.")
    message_id: SourceId = Field(description="The message's id there; the idempotency key.")
    channel: MessageChannel
    direction: Direction
    sent_at: PastDatetime
    sender: ShortText | None = Field(default=None, description="Who wrote it.")
    subject: ShortText | None = Field(
        default=None, description="A subject line; the start of the text when absent."
    )
    text: LongText
    consent_override: ConsentOverride | None = Field(
        default=None, description=CONSENT_OVERRIDE_FIELD
    )


EXAMPLE_SURVEY_ANSWER: dict[str, Any] = {
    "source": "survey-tool",
    "answer_id": "S-77812",
    "survey": "post-ticket",
    "customer_reference": {"source": "callcentre", "source_customer_id": "86-13800138000"},
    "answered_at": "2026-11-23T12:00:00+08:00",
    "csat": 4,
    "nps": 9,
    "comment": "处理很及时。谢谢",
    "channel": "phone",
}


class SurveyAnswer(InboundCustomer):
    """One respondent's answer from the survey tool (`Topic.SURVEY_ANSWERS_INBOUND`)."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [EXAMPLE_SURVEY_ANSWER]}
    )

    source: SourceName = Field(description="The survey tool, e.g. survey-tool.")
    answer_id: SourceId = Field(description="The answer's id there; the idempotency key.")
    survey: ShortText = Field(description="Which survey, e.g. post-ticket, quarterly-nps.")
    answered_at: PastDatetime
    csat: Csat | None = None
    nps: Nps | None = None
    comment: LongText = ""
    channel: InteractionChannel | None = Field(
        default=None, description="The channel of the contact the survey is about."
    )
    interaction_id: UUID | None = None
    ticket_id: UUID | None = None

    @model_validator(mode="after")
    def _has_a_score(self) -> Self:
        if self.csat is None and self.nps is None:
            raise ValueError("an answer carries csat, nps or both")
        return self


INBOUND: dict[str, type[BaseModel]] = {
    Topic.CALL_LOGS_INBOUND: CallLog,
    Topic.MESSAGES_INBOUND: InboundMessage,
    Topic.SURVEY_ANSWERS_INBOUND: SurveyAnswer,
}
"""Messages other systems publish to the CRM, by topic."""
