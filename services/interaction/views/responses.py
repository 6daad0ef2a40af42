"""The response models of the interaction views: interactions and the customer timeline,
tickets with their service-level state, satisfaction, contact plans."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.personal import Personal


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"


class TicketStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


class InteractionView(BaseModel):
    interaction_id: UUID
    customer_id: UUID
    customer_name: Personal | None
    channel: str
    direction: str
    started_at: datetime
    duration_seconds: int | None
    participants: list[dict[str, Any]]
    subject: Personal
    notes: Personal
    opportunity_id: UUID | None
    ticket_id: UUID | None
    source: str | None = Field(description="The system that reported it, if not the CRM.")
    source_id: str | None
    version: int
    correction_count: int = Field(description="How often it was corrected.")
    recorded_at: datetime
    consent_override: dict[str, Any] | None = Field(
        description="The reason stated for an outbound contact on a channel the customer "
        "opted out of (`reason`: customer_request or legal_obligation, `note`)."
    )
    consent_breach: bool = Field(
        description="An outbound contact on a channel the customer had opted out of, "
        "reported by another system with no reason stated."
    )


class InteractionPage(BaseModel):
    items: list[InteractionView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class TimelineEntry(BaseModel):
    entry_type: Literal["interaction", "ticket", "survey_answer", "feedback"]
    entry_id: UUID
    at: datetime
    channel: str | None
    title: Personal
    detail: Personal
    details: dict[str, Any]


class ChannelConsent(BaseModel):
    preferred: list[str] = Field(description="Channels in the customer's order of preference.")
    opted_out: list[str] = Field(
        description="Channels the customer must not be contacted on: an outbound contact "
        "on one is recorded only with a stated reason."
    )


class TimelinePage(BaseModel):
    consent: ChannelConsent | None = Field(
        description="The customer's channel consent as the customer service last announced "
        "it; null while the customer is not known here."
    )
    items: list[TimelineEntry]
    next_cursor: str | None


class TicketView(BaseModel):
    ticket_id: UUID
    customer_id: UUID
    customer_name: Personal | None
    kind: str
    channel: str
    category: str
    severity: str
    status: str
    assignee: str | None
    level: int = Field(description="How often it was escalated.")
    subject: Personal
    description: Personal
    opened_at: datetime
    response_due_at: datetime
    first_responded_at: datetime | None
    resolution_due_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution: Personal | None
    reopen_count: int
    sla_state: SlaState = Field(
        description="breached: a target was missed; at_risk: less than a fifth of a running "
        "target's time is left; on_track; met: resolved within its targets."
    )
    response_breached: bool = Field(
        description="First answered after its target, or still unanswered past it."
    )
    resolution_breached: bool = Field(
        description="Resolved after its target, or still open past it."
    )
    version: int


class TicketPage(BaseModel):
    items: list[TicketView]
    next_cursor: str | None


class TicketTimes(BaseModel):
    period_start: datetime
    channel: str
    category: str
    opened: int
    responded: int
    avg_first_response_minutes: float | None
    median_first_response_minutes: float | None
    resolved: int
    avg_resolution_minutes: float | None
    median_resolution_minutes: float | None
    response_breaches: int
    resolution_breaches: int


class SurveyResult(BaseModel):
    period_start: datetime
    channel: str | None
    answers: int
    csat_answers: int
    csat_average: float | None
    nps_answers: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None = Field(description="% promoters (9-10) - % detractors (0-6).")


class FeedbackView(BaseModel):
    feedback_id: UUID
    customer_id: UUID
    customer_name: Personal | None
    kind: str
    text: Personal
    channel: str | None
    interaction_id: UUID | None
    given_at: datetime


class FeedbackPage(BaseModel):
    items: list[FeedbackView]
    next_cursor: str | None


class DueContact(BaseModel):
    customer_id: UUID
    customer_name: Personal | None
    planned_channel: str
    channel_to_use: str | None = Field(
        description="The planned channel, or another the customer allows if they opted out "
        "of it; null when they refused every remote channel."
    )
    planned_channel_refused: bool
    every_days: int
    owner: str | None
    note: Personal
    last_contacted_at: datetime | None
    last_channel: str | None
    due_at: datetime
    state: Literal["overdue", "due", "planned"]


class DueContactPage(BaseModel):
    items: list[DueContact]
    next_cursor: str | None


class TicketCount(BaseModel):
    severity: str
    assignee: str | None = Field(description="Null: not assigned yet.")
    sla_state: SlaState
    tickets: int
    oldest_opened_at: datetime
