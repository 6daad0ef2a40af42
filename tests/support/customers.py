"""Customers announced on the customer topic, as the customer service would announce them,
for tests of services that learn of customers from that topic; and commands to such a
service that wait for a customer to reach it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from contracts import customer as customer_contract
from contracts.references import CustomerReference
from contracts.topics import Topic
from tests.support.events import as_message, envelope
from tests.support.kafka import publish_raw
from tests.support.waiting import eventually


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


async def when_customer_known(
    client: httpx.AsyncClient, path: str, body: Any, **options: Any
) -> httpx.Response:
    """The answer to POST `body` to `path` of a service that learns of customers from the
    customer topic, asked again while it says the customer is not known to it yet."""

    async def answer() -> httpx.Response:
        response = await client.post(path, json=body, **options)
        not_yet = response.status_code == 422 and "register the customer first" in response.text
        assert not not_yet, response.text
        return response

    return await eventually(answer, describe=f"POST {path} once the customer is known")
