"""A database that drops every connection (a failover, a restart, an idle timeout) costs
the services a moment, never a consumer: customers registered after each drop still
reach the sales and interaction services, whose consumers open sealed personal fields
with keys read from the database, a command sent just after a drop is answered 201 or
503 with `Retry-After` (never 500), and every process stays alive and becomes ready."""

from __future__ import annotations

from functools import partial

import httpx

from bench.soak.faults import terminate_connections
from local.launcher import ServiceProcess
from tests.support.customers import when_customer_known
from tests.support.infrastructure import Infrastructure
from tests.support.waiting import eventually

DROPS = 3


async def register(customers: httpx.AsyncClient, name: str) -> str:
    answer = await customers.post("/customers", json={"name": name, "kind": "business"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["customer_id"])


async def test_consumers_outlive_dropped_database_connections(
    infra: Infrastructure,
    customer_service: ServiceProcess,
    sales_service: ServiceProcess,
    interaction_service: ServiceProcess,
) -> None:
    services = (customer_service, sales_service, interaction_service)
    for round_ in range(DROPS + 1):
        async with customer_service.client(timeout=10) as customers:
            customer_id = await eventually(
                partial(register, customers, f"断线后客户{round_}"),
                describe="a registration accepted",
            )
        async with sales_service.client(timeout=10) as sales:
            opened = await when_customer_known(
                sales,
                "/opportunities",
                {
                    "customer_id": customer_id,
                    "description": f"round {round_}",
                    "products": [{"product": "许可", "quantity": 1, "unit_price": "10.00"}],
                    "currency": "CNY",
                    "expected_close_date": "2027-01-31",
                    "owner": "李娜",
                },
            )
            assert opened.status_code == 201, opened.text
        async with interaction_service.client(timeout=10) as interaction:
            ticket = await when_customer_known(
                interaction,
                "/tickets",
                {
                    "customer_id": customer_id,
                    "kind": "service_request",
                    "channel": "email",
                    "category": "billing",
                    "severity": "low",
                    "subject": f"round {round_}",
                },
            )
            assert ticket.status_code == 201, ticket.text
        if round_ < DROPS:
            assert await terminate_connections(infra.database_url) > 0
            # at once: a pooled connection may be the dropped one; never a 500
            async with customer_service.client(timeout=10) as customers:
                answer = await customers.post(
                    "/customers", json={"name": f"断线时客户{round_}", "kind": "business"}
                )
            assert answer.status_code in (201, 503), answer.text
            if answer.status_code == 503:
                assert answer.headers["Retry-After"] == "1"

    for service in services:
        async with service.client(timeout=10) as client:
            live = await client.get("/health/live")
            assert live.status_code == 200, (service.name, live.text)

            async def ready() -> bool:
                answer = await client.get("/health/ready")
                assert answer.status_code == 200, answer.text
                return True

            await eventually(ready, describe=f"{service.name} ready")
