"""How the customer service's domain events appear on the customer topic.

Keyed by the name of the event class that `Customer`'s `@event` methods declare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts import customer as contract
from contracts import customer_merges as merges
from contracts.envelope import EventEnvelope, EventPayload
from services.runtime.messaging.envelopes import envelope_from_domain_event

PRODUCER = "crm.customer"


def _fields(event: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(event).items() if not k.startswith("_")}


_PAYLOADS: dict[str, Callable[[Any], EventPayload]] = {
    "Registered": lambda e: contract.CustomerRegistered.model_validate(_fields(e)),
    "ProfileChanged": lambda e: contract.CustomerProfileChanged.model_validate(
        {**e.changes, "changed": sorted(e.changes)}
    ),
    "AddressSet": lambda e: contract.CustomerAddressSet(address=e.address),
    "AddressRemoved": lambda e: contract.CustomerAddressRemoved(label=e.label),
    "ContactAdded": lambda e: contract.ContactPersonAdded(contact=e.contact),
    "ContactChanged": lambda e: contract.ContactPersonChanged(contact=e.contact),
    "ContactRemoved": lambda e: contract.ContactPersonRemoved(contact_id=e.contact_id),
    "Classified": lambda e: contract.CustomerClassified(classification=e.classification),
    "Tagged": lambda e: contract.CustomerTagged(tags=e.tags),
    "Untagged": lambda e: contract.CustomerUntagged(tag=e.tag),
    "ReferenceAdded": lambda e: contract.CustomerReferenceAdded(reference=e.reference),
    "ChannelPreferencesChanged": lambda e: contract.ChannelPreferencesChanged(
        channel_preferences=e.channel_preferences
    ),
    "Erased": lambda e: contract.CustomerErased(request_reference=e.request_reference),
    "DuplicateDismissed": lambda e: contract.CustomerDuplicateDismissed(
        other_customer_id=e.other_customer_id
    ),
    "Merged": lambda e: merges.CustomerMerged(merge_id=e.merge_id, survivor_id=e.survivor_id),
    "Unmerged": lambda e: merges.CustomerUnmerged(merge_id=e.merge_id, survivor_id=e.survivor_id),
    "Absorbed": lambda e: merges.CustomerAbsorbed.model_validate(
        {**_fields(e), "profile": _profile(e.profile)}
    ),
    "AbsorptionUndone": lambda e: merges.CustomerAbsorptionUndone.model_validate(
        {**_fields(e), "profile": _profile(e.profile)}
    ),
}


def _profile(changes: dict[str, Any]) -> dict[str, Any]:
    return {**changes, "changed": sorted(changes)}


def payload_of(domain_event: Any) -> EventPayload | None:
    """The event's contract payload (validated; what `to_contract` puts in its
    envelope), None for an event kept private. The customer is the event's aggregate."""
    event_class = type(domain_event)
    build = _PAYLOADS.get(event_class.__name__)
    if build is None or not event_class.__qualname__.startswith("Customer."):
        return None
    return build(domain_event)


def to_contract(domain_event: Any) -> EventEnvelope[Any] | None:
    payload = payload_of(domain_event)
    if payload is None:
        return None
    return envelope_from_domain_event(
        domain_event,
        payload,
        customer_id=domain_event.originator_id,
        producer=PRODUCER,
    )
