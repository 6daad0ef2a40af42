"""A running sales service for the sales integration tests, and helpers to talk to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from contracts.topics import Topic
from services.runtime.processes import ServiceProcess
from tests.conftest import Infrastructure


@pytest.fixture
async def sales_service(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    service = ServiceProcess(
        "sales",
        database_url=infra.database_url,
        bootstrap_servers=infra.bootstrap_servers,
        log_dir=infra.log_dir,
    )
    await asyncio.to_thread(service.start)
    yield service
    await asyncio.to_thread(service.stop)


async def wait_for(
    client: httpx.AsyncClient, path: str, check: Callable[[Any], bool], timeout: float = 10.0
) -> Any:
    """GET `path` until it answers 200 with a body `check` accepts."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(path)
        if response.status_code == 200 and check(response.json()):
            return response.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never matched: {response.status_code} {response.text}")
        await asyncio.sleep(0.05)


async def publish_purchases(
    bootstrap_servers: str, messages: list[tuple[str, dict[str, Any] | bytes]]
) -> None:
    """Publish purchases as a shop would: a plain producer, JSON values, keyed by customer."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            raw = value if isinstance(value, bytes) else orjson.dumps(value)
            await producer.send_and_wait(Topic.PURCHASES_INBOUND, value=raw, key=key.encode())
    finally:
        await producer.stop()
