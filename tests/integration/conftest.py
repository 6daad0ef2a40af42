from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from services.runtime.processes import ServiceProcess
from tests.conftest import Infrastructure


@pytest.fixture
async def customer_service(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    service = infra.service("customer")
    await asyncio.to_thread(service.start)
    yield service
    await asyncio.to_thread(service.stop)


@pytest.fixture
async def sales_service(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    service = infra.service("sales")
    await asyncio.to_thread(service.start)
    yield service
    await asyncio.to_thread(service.stop)


SLA_ENV = {
    "CRM_INTERACTION_SLA_RESPONSE_MINUTES": json.dumps({"high": 30}),
    "CRM_INTERACTION_SLA_RESOLUTION_MINUTES": json.dumps({"high": 480}),
}
"""Service-level targets of the interaction service under test: high severity answered
within 30 minutes and resolved within 8 hours."""


@pytest.fixture
async def interaction_service(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    service = infra.service("interaction", CRM_GAUGE_REFRESH_SECONDS="0.2", **SLA_ENV)
    await asyncio.to_thread(service.start)
    yield service
    await asyncio.to_thread(service.stop)
