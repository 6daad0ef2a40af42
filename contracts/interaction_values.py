"""Value types and enumerations of the interaction contracts: channels, directions,
participants, ticket kinds and severities, scores, consent overrides and text fields.

Shared by the interaction events (`contracts.interaction`) and the documents other
systems publish (`contracts.inbound.interactions`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.personal import PERSONAL
from contracts.values import LINE, TEXT, Line, Text

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
