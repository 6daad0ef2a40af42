"""A running interaction service for the interaction integration tests, and helpers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from contracts import customer as customer_contract
from contracts.references import CustomerReference
from contracts.topics import Topic
from services.runtime.processes import ServiceProcess
from tests.conftest import Infrastructure
from tests.support.events import as_message, envelope

SLA_ENV = {
    "CRM_INTERACTION_SLA_RESPONSE_MINUTES": json.dumps({"high": 30}),
    "CRM_INTERACTION_SLA_RESOLUTION_MINUTES": json.dumps({"high": 480}),
}


@pytest.fixture
async def interaction_service(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    service = infra.service("interaction", **SLA_ENV)
    await asyncio.to_thread(service.start)
    yield service
    await asyncio.to_thread(service.stop)


async def wait_for(
    client: httpx.AsyncClient,
    path: str,
    check: Callable[[Any], bool],
    timeout: float = 15.0,
    **params: Any,
) -> Any:
    """GET `path` until it answers 200 with a body `check` accepts."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(path, params=params)
        if response.status_code == 200 and check(response.json()):
            return response.json()
        if time.monotonic() > deadline:
            ready = (await client.get("/health/ready")).text
            raise AssertionError(
                f"{path} never matched: {response.status_code} {response.text} {ready}"
            )
        await asyncio.sleep(0.1)


async def publish_json(
    bootstrap_servers: str, topic: str, messages: list[tuple[str, dict[str, Any] | bytes]]
) -> None:
    """Publish as another system would: a plain producer, JSON values, a key per message."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            raw = value if isinstance(value, bytes) else orjson.dumps(value)
            await producer.send_and_wait(topic, value=raw, key=key.encode())
    finally:
        await producer.stop()


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
    key, value = as_message(envelope(customer_id, 1, registered))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(Topic.CUSTOMER, value=value, key=key)
    finally:
        await producer.stop()
    return customer_id
