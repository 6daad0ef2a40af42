"""Customers announced on the customer topic, as the customer service would announce them,
for tests of services that learn of customers from that topic."""

from __future__ import annotations

import uuid

from contracts import customer as customer_contract
from contracts.references import CustomerReference
from contracts.topics import Topic
from tests.support.events import as_message, envelope
from tests.support.kafka import publish_raw


async def register_customer(
    bootstrap_servers: str,
    name: str,
    *,
    preferred: list[str] | None = None,
    opted_out: list[str] | None = None,
    references: list[CustomerReference] | None = None,
) -> uuid.UUID:
    """A customer as the customer service would announce it on the customer topic."""
    customer_id = uuid.uuid4()
    registered = customer_contract.CustomerRegistered.model_validate(
        {
            "name": name,
            "kind": "business",
            "channel_preferences": {"preferred": preferred or [], "opted_out": opted_out or []},
            "references": [r.model_dump() for r in references or []],
        }
    )
    await publish_raw(
        bootstrap_servers, Topic.CUSTOMER, [as_message(envelope(customer_id, 1, registered))]
    )
    return customer_id
