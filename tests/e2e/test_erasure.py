"""The right to be forgotten, on the real infrastructure with all four services.

A customer with a profile, a contact person, an address, a won and paid opportunity with
activities, interactions, a ticket, a survey answer and feedback is erased. Then every
table of the database (every projection of every service, the event stores, the key
table) and every message of every topic are searched for any of the customer's personal
values: none is found, while the sales totals are what they were and another customer's
data is untouched.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from contracts.personal import ERASED
from local.launcher import ServiceProcess
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.personal_data import (
    database_rows,
    forms,
    holding,
    mentions,
    personal_values,
    spread,
    topic_messages,
)


async def sales_totals(sales: httpx.AsyncClient) -> Any:
    pipeline = (await sales.get("/pipeline")).json()
    contracts = (await sales.get("/contracts")).json()
    by_region = (await sales.get("/analysis/opportunities", params={"by": "region"})).json()
    paid = sorted((c["customer_id"], c["amount"], c["paid"], c["outstanding"]) for c in contracts)
    return pipeline, paid, by_region


async def test_an_erased_customer_leaves_no_personal_data_anywhere(
    infra: Infrastructure,
    customer_service: ServiceProcess,
    sales_service: ServiceProcess,
    interaction_service: ServiceProcess,
    analytics_service: ServiceProcess,
) -> None:
    forgotten = personal_values(uuid.uuid4().hex[:10])
    kept = personal_values(uuid.uuid4().hex[:10])
    async with (
        customer_service.client(timeout=15) as customers,
        sales_service.client(timeout=15) as sales,
        interaction_service.client(timeout=15) as interactions,
        analytics_service.client(timeout=15) as analytics,
    ):
        clients = {"customer": customers, "sales": sales, "interaction": interactions}
        customer_id = await spread(clients, infra.bootstrap_servers, forgotten)
        kept_id = await spread(clients, infra.bootstrap_servers, kept)
        await wait_for(
            analytics,
            f"/profiles/{customer_id}",
            lambda p: p.get("name") == forgotten["name"] and p.get("csat_average") == 2,
            timeout=30,
        )
        await wait_for(
            sales,
            "/contracts",
            lambda body: len(body) == 2 and all(float(c["paid"]) > 0 for c in body),
        )
        await wait_for(
            sales, f"/customers/{customer_id}/purchases", lambda body: len(body["items"]) == 1
        )
        before = await sales_totals(sales)

        # Before: the views hold the personal values; the event stores and Kafka only
        # sealed ones (so the search below can find what it looks for).
        rows = await database_rows(infra.database_url)
        assert {'"customer"."customer_directory"', '"sales"."activities"'} <= holding(
            rows, forgotten.values()
        )
        assert '"interaction"."interactions"' in holding(rows, [forgotten["notes"]])
        assert not {t for t in holding(rows, forgotten.values()) if "stored_events" in t}
        assert not [m for m in await topic_messages(infra.bootstrap_servers) if any(
            p in m for p in forms(forgotten.values())
        )]  # fmt: skip

        # Subject access: everything each service holds on the customer.
        exported = (await customers.get(f"/privacy/customers/{customer_id}")).json()
        assert exported["tables"]["customer_directory"][0]["name"] == forgotten["name"]
        sales_export = (await sales.get(f"/privacy/customers/{customer_id}")).json()
        assert sales_export["tables"]["activities"][0]["people"] == [forgotten["people"]]

        # Erasure -------------------------------------------------------------------------
        erased = await customers.post(
            f"/customers/{customer_id}/erasure", json={"request_reference": "DSR-1"}
        )
        assert erased.status_code == 200, erased.text
        again = await customers.post(f"/customers/{customer_id}/erasure", json={})
        assert again.status_code == 200 and again.json()["version"] == erased.json()["version"]

        await wait_for(customers, f"/customers/{customer_id}", lambda c: c["name"] == ERASED)
        await wait_for(analytics, f"/profiles/{customer_id}", lambda p: p["name"] == ERASED)
        await wait_for(
            interactions,
            f"/customers/{customer_id}/timeline",
            lambda body: len(body["items"]) == 4 and not mentions(body, forgotten.values()),
        )
        await wait_for(
            sales,
            f"/customers/{customer_id}/opportunities",
            lambda body: all(o["description"] == ERASED for o in body["items"]),
        )

        # Nothing personal of theirs anywhere: no table of any schema, no topic.
        rows = await database_rows(infra.database_url)
        assert holding(rows, forgotten.values()) == set()
        leaked = [
            m for m in await topic_messages(infra.bootstrap_servers)
            if any(p in m for p in forms(forgotten.values()))
        ]  # fmt: skip
        assert leaked == []

        # The facts stay: the same sales totals, the profile's figures, their history.
        assert await sales_totals(sales) == before
        profile = (await analytics.get(f"/profiles/{customer_id}")).json()
        assert profile["csat_average"] == 2 and profile["complaints_total"] == 1
        history = (await customers.get(f"/customers/{customer_id}/history")).json()
        assert history[0]["change"]["name"] == ERASED
        assert history[-1]["event_type"] == "customer.erased"

        # Nothing personal can be recorded for them again; non-personal changes can.
        refused = await customers.post(
            f"/customers/{customer_id}/contacts", json={"name": "New Person"}
        )
        assert refused.status_code == 410, refused.text
        assert "erased" in refused.json()["error"]
        tagged = await customers.post(f"/customers/{customer_id}/tags", json={"tag": "x"})
        assert tagged.status_code == 200, tagged.text
        async with customer_service.client(role="integration") as integration:
            assert (await integration.get(f"/customers/{customer_id}/key")).status_code == 410

        # The other customer is untouched.
        assert holding(rows, kept.values()) >= {'"customer"."customer_directory"'}
        other = (await customers.get(f"/customers/{kept_id}")).json()
        assert other["name"] == kept["name"] and other["contacts"][0]["emails"] == [kept["email"]]
