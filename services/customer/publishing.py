"""How the customer service's domain events appear on the customer topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts import customer as contract
from contracts.envelope import EventEnvelope, EventPayload
from services.customer.domain import Customer
from services.runtime.envelopes import envelope_from_domain_event

PRODUCER = "crm.customer"


def _fields(event: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(event).items() if not k.startswith("_")}


_PAYLOADS: dict[type, Callable[[Any], EventPayload]] = {
    Customer.Registered: lambda e: contract.CustomerRegistered.model_validate(_fields(e)),
    Customer.ProfileChanged: lambda e: contract.CustomerProfileChanged.model_validate(
        {**e.changes, "changed": sorted(e.changes)}
    ),
    Customer.AddressSet: lambda e: contract.CustomerAddressSet(address=e.address),
    Customer.AddressRemoved: lambda e: contract.CustomerAddressRemoved(label=e.label),
    Customer.ContactAdded: lambda e: contract.ContactPersonAdded(contact=e.contact),
    Customer.ContactChanged: lambda e: contract.ContactPersonChanged(contact=e.contact),
    Customer.ContactRemoved: lambda e: contract.ContactPersonRemoved(contact_id=e.contact_id),
    Customer.Classified: lambda e: contract.CustomerClassified(classification=e.classification),
    Customer.Tagged: lambda e: contract.CustomerTagged(tag=e.tag),
    Customer.Untagged: lambda e: contract.CustomerUntagged(tag=e.tag),
    Customer.ChannelPreferencesChanged: lambda e: contract.ChannelPreferencesChanged(
        channel_preferences=e.channel_preferences
    ),
}


def to_contract(domain_event: Any) -> EventEnvelope[Any] | None:
    build = _PAYLOADS.get(type(domain_event))
    if build is None:
        return None
    return envelope_from_domain_event(
        domain_event,
        build(domain_event),
        customer_id=domain_event.originator_id,
        producer=PRODUCER,
    )
