"""The documents a call centre, a messaging gateway and a survey tool publish to the
interaction service (`Topic.CALL_LOGS_INBOUND`, `Topic.MESSAGES_INBOUND`,
`Topic.SURVEY_ANSWERS_INBOUND`).

They are plain JSON documents, not our envelope: their senders produce them without
knowing the CRM's conventions. Each names its customer by CRM customer id or by the
sending system's own reference, and carries the sender's id of the fact (`source` +
`source_id`), which makes a re-sent message a repeat rather than a second fact.
`CallLog`, `InboundMessage` and `SurveyAnswer` stay importable from
`contracts.interaction`.
"""

from __future__ import annotations

from typing import Any, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.interaction_values import (
    CONSENT_OVERRIDE_FIELD,
    ConsentOverride,
    Csat,
    Direction,
    InteractionChannel,
    LongText,
    MessageChannel,
    Nps,
    ShortText,
    SourceId,
)
from contracts.references import CustomerHint, CustomerReference, SourceName
from contracts.timestamps import PastDatetime


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
