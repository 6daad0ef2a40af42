"""A version-1 customer.tagged published by an old producer is still applied, beside
version 2, by the running service."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from contracts import customer as contract
from contracts.topics import Topic
from services.runtime.processes import ServiceProcess
from tests.conftest import Infrastructure
from tests.support.events import as_message, envelope
from tests.support.kafka import publish_raw

pytestmark = pytest.mark.integration


async def test_version_1_and_version_2_messages_are_both_applied(
    infra: Infrastructure, customer_service: ServiceProcess
) -> None:
    customer_id = uuid.uuid4()
    await publish_raw(
        infra.bootstrap_servers,
        Topic.CUSTOMER,
        [
            as_message(
                envelope(customer_id, 1, contract.CustomerRegistered(name="老", kind="consumer"))
            ),
            as_message(envelope(customer_id, 2, contract.CustomerTaggedV1(tag="from-v1"))),
            as_message(envelope(customer_id, 3, contract.CustomerTagged(tags=["from-v2", "also"]))),
        ],
    )
    async with httpx.AsyncClient(base_url=customer_service.url) as client:
        for _ in range(50):
            response = await client.get(f"/customers/{customer_id}")
            if response.status_code == 200 and response.json()["version"] == 3:
                break
            await asyncio.sleep(0.1)
    assert response.json()["tags"] == ["from-v1", "from-v2", "also"]
