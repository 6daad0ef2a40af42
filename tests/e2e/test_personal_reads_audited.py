"""Every read that answers a customer's personal data leaves an audit entry, on every
route of every service.

A customer with a profile, a contact person, an address, a won and paid opportunity with
an activity, an interaction, a ticket, a survey answer and feedback is spread over the
four running services. Then every GET route of every service (from its OpenAPI
document, with the customer's ids, each value of its enumerated query parameters, CSV
included) is read by one caller; each answer that holds any of the customer's personal
values must be found in that service's audit log.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from contracts.topics import Topic
from local.launcher import ServiceProcess
from services.analytics.domain import matrix
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_json
from tests.support.personal_data import interact, personal_values, register, sell
from tests.support.routes import get_requests
from tests.support.waiting import eventually

READER = "personal-reader"


def purchase(customer_id: str) -> dict[str, Any]:
    """A shop's purchase of the customer, as it publishes it."""
    return {
        "source": "shop-cn",
        "order_id": f"SO-{uuid.uuid4().hex[:8]}",
        "customer_id": customer_id,
        "amount": "99.00",
        "currency": "CNY",
        "items": [{"sku": "LIC", "name": "月度订阅", "quantity": 1, "unit_price": "99.00"}],
        "occurred_at": datetime.now(UTC).isoformat(),
    }


async def read(client: httpx.AsyncClient, path: str, query: dict[str, Any]) -> str:
    """The answer's text; of a stream of server-sent events (it does not end), nothing."""
    async with client.stream("GET", path, params=query) as response:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return ""
        await response.aread()
        assert response.status_code < 500, (path, query, response.text[:500])
        return response.text


async def reads_answering(
    service: ServiceProcess, ids: dict[str, str], values: list[str]
) -> set[str]:
    """The routes of `service` whose answer held one of `values`, read as `READER`."""
    answering: set[str] = set()
    async with service.client("administrator", READER, timeout=30) as client:
        document = (await client.get("/openapi.json")).json()
        for template, path, query in get_requests(document, ids):
            text = await read(client, path, query)
            if any(value in text for value in values):
                answering.add(template)
    return answering


async def audited_reads(service: ServiceProcess) -> set[str]:
    """The routes of the reads by `READER` in `service`'s audit log."""
    found: set[str] = set()
    async with service.client("administrator", "auditor", timeout=30) as admin:
        cursor = None
        while True:
            params: dict[str, Any] = {"actor": READER, "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = (await admin.get("/audit", params=params)).json()
            found |= {e["route"] for e in page["items"] if e["method"] == "GET"}
            cursor = page["next_cursor"]
            if cursor is None:
                return found


async def test_every_read_of_personal_data_is_audited(
    customer_service: ServiceProcess,
    sales_service: ServiceProcess,
    interaction_service: ServiceProcess,
    analytics_service: ServiceProcess,
    infra: Infrastructure,
) -> None:
    values = personal_values(uuid.uuid4().hex[:8])
    async with (
        customer_service.client("administrator", "admin", timeout=30) as customers,
        sales_service.client("administrator", "admin", timeout=30) as sales,
        interaction_service.client("administrator", "admin", timeout=30) as interactions,
        analytics_service.client("administrator", "admin", timeout=30) as analytics,
    ):
        customer_id = await register(customers, values)
        await sell(sales, customer_id, values)
        await interact(interactions, customer_id, values)
        await publish_json(
            infra.bootstrap_servers,
            Topic.PURCHASES_INBOUND,
            [(customer_id, purchase(customer_id))],
        )
        contact = (await customers.get(f"/customers/{customer_id}")).json()["contacts"][0]
        opportunity = (
            await wait_for(
                sales,
                f"/customers/{customer_id}/opportunities",
                lambda page: page["items"] and page["items"][0]["stage"] == "won",
            )
        )["items"][0]
        contract = (await wait_for(sales, "/contracts", bool, customer_id=customer_id))[0]
        await wait_for(sales, "/purchases", lambda p: p["items"], customer_id=customer_id)
        interaction = (
            await wait_for(
                interactions, "/interactions", lambda p: p["items"], customer_id=customer_id
            )
        )["items"][0]
        ticket = (
            await wait_for(interactions, "/tickets", lambda p: p["items"], customer_id=customer_id)
        )["items"][0]
        await wait_for(interactions, "/feedback", lambda p: p["items"], customer_id=customer_id)
        profile = await wait_for(
            analytics,
            f"/customers/{customer_id}/360",
            lambda view: (
                view["profile"]["name"] == values["name"]
                and view["last_interactions"]
                and view["open_tickets"]
            ),
        )
        segments = (await analytics.get(f"/customers/{customer_id}/segments")).json()
    ids = {
        "customer_id": customer_id,
        "contact_id": contact["contact_id"],
        "opportunity_id": opportunity["opportunity_id"],
        "contract_id": contract["contract_id"],
        "interaction_id": interaction["interaction_id"],
        "ticket_id": ticket["ticket_id"],
        "segment": segments["segments"][0]["segment"],
        "version": "1",
        "model": "bg_nbd",
        "quadrant": profile["profile"]["quadrant"] or next(iter(matrix.QUADRANTS)),
        "source": "shop-cn",
        "source_customer_id": "unknown",
        "import_id": "unknown",
        "merge_id": str(uuid.uuid4()),
    }
    personal = list(values.values())
    answering = {}
    for service in (customer_service, sales_service, interaction_service, analytics_service):
        answering[service.name] = await reads_answering(service, ids, personal)
    # the routes the issue names answer personal data (so the walk reached them)
    assert {"/opportunities", "/opportunities/{opportunity_id}", "/contracts"} <= answering["sales"]
    assert {"/tickets/{ticket_id}", "/tickets/export.csv", "/feedback"} <= answering["interaction"]
    services = (customer_service, sales_service, interaction_service, analytics_service)

    async def every_one_audited() -> bool:
        # entries are written a moment after the request
        missing = {s.name: sorted(answering[s.name] - await audited_reads(s)) for s in services}
        assert not any(missing.values()), f"answered personal data, not audited: {missing}"
        return True

    await eventually(every_one_audited, timeout=30, describe="every personal read audited")
