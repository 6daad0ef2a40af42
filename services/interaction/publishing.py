"""How the interaction service's domain events appear on the interaction topic.

Keyed by the qualified name of the event class the aggregates' `@event` methods declare.
Facts that happened before they were recorded (a call at 09:15 logged at 09:40, a ticket
opened with an explicit time) carry that moment as the envelope's `occurred_at`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from contracts import interaction as contract
from contracts.envelope import EventEnvelope, EventPayload
from services.runtime.messaging.envelopes import envelope_from_domain_event

PRODUCER = "crm.interaction"


def _fields(event: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(event).items() if not k.startswith("_")}


def _corrected(event: Any) -> EventPayload:
    return contract.InteractionCorrected.model_validate(
        {**event.changes, "changed": sorted(event.changes), "reason": event.reason}
    )


_PAYLOADS: dict[str, Callable[[Any], EventPayload]] = {
    "Interaction.Logged": lambda e: contract.InteractionLogged.model_validate(_fields(e)),
    "Interaction.Corrected": _corrected,
    "Ticket.Opened": lambda e: contract.TicketOpened.model_validate(_fields(e)),
    "Ticket.Assigned": lambda e: contract.TicketAssigned(assignee=e.assignee),
    "Ticket.Escalated": lambda e: contract.TicketEscalated.model_validate(_fields(e)),
    "Ticket.Responded": lambda e: contract.TicketResponded.model_validate(_fields(e)),
    "Ticket.Resolved": lambda e: contract.TicketResolved.model_validate(_fields(e)),
    "Ticket.Reopened": lambda e: contract.TicketReopened.model_validate(_fields(e)),
    "Ticket.Closed": lambda e: contract.TicketClosed(closed_at=e.closed_at),
    "SurveyResponse.Answered": lambda e: contract.SurveyAnswered.model_validate(_fields(e)),
    "Feedback.Given": lambda e: contract.FeedbackGiven.model_validate(_fields(e)),
    "ContactPlan.Set": lambda e: contract.ContactPlanSet.model_validate(e.plan),
    "ContactPlan.Ended": lambda e: contract.ContactPlanEnded(reason=e.reason),
}

_OCCURRED_AT = {
    "Interaction.Logged": "started_at",
    "Ticket.Opened": "opened_at",
    "Ticket.Responded": "responded_at",
    "Ticket.Resolved": "resolved_at",
    "Ticket.Reopened": "reopened_at",
    "Ticket.Closed": "closed_at",
    "SurveyResponse.Answered": "answered_at",
    "Feedback.Given": "given_at",
}


def to_contract(domain_event: Any) -> EventEnvelope[Any] | None:
    """The contract envelope of a stored event; None for bookkeeping events."""
    name = type(domain_event).__qualname__
    build = _PAYLOADS.get(name)
    if build is None:
        return None
    occurred_field = _OCCURRED_AT.get(name)
    occurred_at: datetime | None = getattr(domain_event, occurred_field) if occurred_field else None
    return envelope_from_domain_event(
        domain_event,
        build(domain_event),
        customer_id=domain_event.customer_id,
        producer=PRODUCER,
        occurred_at=occurred_at,
    )
