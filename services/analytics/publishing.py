"""How the analytics service's stored events appear on the analytics topic.

Only segment definitions live in the event store; segment changes and churn warnings
are drawn by the fold and published from its outbox table (`projections`).
"""

from __future__ import annotations

from typing import Any

from contracts.analytics import NO_CUSTOMER, SegmentDefined
from contracts.envelope import EventEnvelope
from services.runtime.messaging.envelopes import envelope_from_domain_event

PRODUCER = "crm.analytics"


def to_contract(domain_event: Any) -> EventEnvelope[Any] | None:
    name = type(domain_event).__qualname__
    if name not in ("SegmentDefinition.Defined", "SegmentDefinition.Redefined"):
        return None
    key = getattr(domain_event, "key", None)
    if key is None:
        return None
    payload = SegmentDefined(
        segment=key,
        name=domain_event.name,
        description=domain_event.description,
        version=domain_event.originator_version,
        rule=domain_event.rule,
    )
    return envelope_from_domain_event(
        domain_event, payload, customer_id=NO_CUSTOMER, producer=PRODUCER
    )
