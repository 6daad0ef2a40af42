from __future__ import annotations

import asyncio
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
