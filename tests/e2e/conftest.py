"""Service processes for the end-to-end tests, each started (and ready) on the test's
own infrastructure and stopped after it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from local.launcher import ServiceProcess
from tests.support.infrastructure import Infrastructure, running


@pytest.fixture
async def customer_service(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    async for service in running(infra.service("customer")):
        yield service


@pytest.fixture
async def sales_service(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    async for service in running(infra.service("sales")):
        yield service


SLA_ENV = {
    "CRM_INTERACTION_SLA_RESPONSE_MINUTES": json.dumps({"high": 30}),
    "CRM_INTERACTION_SLA_RESOLUTION_MINUTES": json.dumps({"high": 480}),
}
"""Service-level targets of the interaction service under test: high severity answered
within 30 minutes and resolved within 8 hours."""


@pytest.fixture
async def interaction_service(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    service = infra.service("interaction", CRM_GAUGE_REFRESH_SECONDS="0.2", **SLA_ENV)
    async for running_service in running(service):
        yield running_service


@pytest.fixture
async def analytics_service(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    """Re-scoring RFM every 0.3 s, so that tests see moved boundaries soon."""
    service = infra.service("analytics", CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS="0.3")
    async for running_service in running(service):
        yield running_service


@pytest.fixture
def all_services(
    customer_service: ServiceProcess,
    sales_service: ServiceProcess,
    interaction_service: ServiceProcess,
    analytics_service: ServiceProcess,
) -> dict[str, ServiceProcess]:
    """Every service, running, by name."""
    return {
        "customer": customer_service,
        "sales": sales_service,
        "interaction": interaction_service,
        "analytics": analytics_service,
    }
