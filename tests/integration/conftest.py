from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Infrastructure
from tests.support.processes import ServiceProcess


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
