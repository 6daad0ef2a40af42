"""How the sales service's domain events appear on the sales topic.

Keyed by the qualified name of the event class the aggregates' `@event` methods declare.
Every event is keyed by the customer it concerns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts import sales as contract
from contracts.envelope import EventEnvelope, EventPayload
from services.runtime.messaging.envelopes import envelope_from_domain_event

PRODUCER = "crm.sales"


def _fields(event: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(event).items() if not k.startswith("_")}


def _opportunity(model: type[EventPayload]) -> Callable[[Any], EventPayload]:
    return lambda e: model.model_validate({**_fields(e), "opportunity_id": e.originator_id})


_OPPORTUNITY: dict[str, Callable[[Any], EventPayload]] = {
    "Opened": _opportunity(contract.OpportunityOpened),
    "StageChanged": _opportunity(contract.OpportunityStageChanged),
    "AmountChanged": _opportunity(contract.OpportunityAmountChanged),
    "CloseDateChanged": _opportunity(contract.OpportunityCloseDateChanged),
    "OwnerChanged": _opportunity(contract.OpportunityOwnerChanged),
    "ProbabilityChanged": _opportunity(contract.OpportunityProbabilityChanged),
    "ActivityPlanned": _opportunity(contract.ActivityPlanned),
    "ActivityCompleted": _opportunity(contract.ActivityCompleted),
    "QuoteIssued": _opportunity(contract.QuoteIssued),
    "ContractSigned": _opportunity(contract.ContractSigned),
    "PaymentReceived": _opportunity(contract.PaymentReceived),
}


def to_contract(domain_event: Any) -> EventEnvelope[Any] | None:
    event_class = type(domain_event)
    owner, _, name = event_class.__qualname__.partition(".")
    if owner == "Opportunity" and name in _OPPORTUNITY:
        return envelope_from_domain_event(
            domain_event,
            _OPPORTUNITY[name](domain_event),
            customer_id=domain_event.customer_id,
            producer=PRODUCER,
        )
    if owner == "Purchase" and name == "Recorded":
        payload = contract.PurchaseRecorded.model_validate(
            {**_fields(domain_event), "purchase_id": domain_event.originator_id}
        )
        return envelope_from_domain_event(
            domain_event,
            payload,
            customer_id=domain_event.customer_id,
            producer=PRODUCER,
            occurred_at=domain_event.occurred_at,
        )
    return None
