from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.runtime.processes import ServiceProcess
from tests.conftest import Infrastructure


@pytest.fixture
async def customer_service(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    service = ServiceProcess(
        "customer",
        database_url=infra.database_url,
        bootstrap_servers=infra.bootstrap_servers,
        log_dir=infra.log_dir,
    )
    await asyncio.to_thread(service.start)
    yield service
    await asyncio.to_thread(service.stop)
