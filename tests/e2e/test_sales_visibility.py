"""Who reads which deals, on every read route of the running sales service.

Three sales reps own a deal each: li.na and wang.fang in the team `east` (with their
manager chen.jie), zhao.lei in `west`. Under `CRM_SALES_VISIBILITY=team` every GET
route of the sales service (enumerated from its OpenAPI document, with every value of
its enumerated query parameters, CSV included, and `as_of`) is called by li.na with the
ids of wang.fang's deal: none answers any trace of it (404 where the route names it),
and nothing of zhao.lei's deal appears anywhere, not even in the figures. The team's
figures do count wang.fang's deal; li.na's own deal answers everywhere; the manager
reads the team's deals and not the other team's; an administrator reads every deal.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from local.launcher import ServiceProcess
from services.runtime.http.roles import ROLE_PERMISSIONS
from tests.support.customers import register_customer, when_customer_known
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure, running
from tests.support.routes import get_requests

TODAY = datetime.now(UTC).date()
TEAMS = {"east": ["chen.jie", "li.na", "wang.fang"], "west": ["zhao.lei"]}


@pytest.fixture
async def sales(infra: Infrastructure) -> AsyncIterator[ServiceProcess]:
    service = infra.service("sales", CRM_SALES_VISIBILITY="team", CRM_SALES_TEAMS=json.dumps(TEAMS))
    async for running_service in running(service):
        yield running_service


def deal(customer_id: uuid.UUID, owner: str, marker: str, **changes: Any) -> dict[str, Any]:
    return {
        "customer_id": str(customer_id),
        "description": f"deal of {owner} {marker}",
        "products": [{"product": f"licence {marker}", "quantity": 2, "unit_price": "500.00"}],
        "currency": "CNY",
        "expected_close_date": str(TODAY + timedelta(days=30)),
        "region": "华东",
        "owner": owner,
        **changes,
    }


async def open_deal(admin: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, str]:
    """Open, plan an activity with a prediction, win, sign and part-pay a deal; its ids
    and the texts only it holds."""
    opened = await when_customer_known(admin, "/opportunities", body)
    assert opened.status_code == 201, opened.text
    opportunity_id = opened.json()["opportunity_id"]
    path = f"/opportunities/{opportunity_id}"
    activity = f"visit for {body['description']}"
    planned = await admin.post(
        f"{path}/activities",
        json={
            "kind": "visit",
            "date": str(TODAY),
            "description": activity,
            "predicted_result": "agrees",
        },
    )
    assert planned.status_code == 201, planned.text
    moved = await admin.post(f"{path}/stage", json={"stage": "won"})
    assert moved.status_code == 200, moved.text
    signed = await admin.post(
        f"{path}/contract",
        json={"amount": "1000.00", "currency": body["currency"], "signed_on": str(TODAY)},
    )
    assert signed.status_code == 201, signed.text
    paid = await admin.post(
        f"{path}/contract/payments",
        json={"amount": "100.00", "currency": body["currency"], "received_on": str(TODAY)},
    )
    assert paid.status_code == 201, paid.text
    return {
        "opportunity_id": opportunity_id,
        "contract_id": signed.json()["contract_id"],
        "customer_id": body["customer_id"],
        "description": body["description"],
        "activity": activity,
    }


def own_path(path: str, theirs: dict[str, str], mine: dict[str, str]) -> str:
    for name in ("customer_id", "opportunity_id", "contract_id"):
        path = path.replace(theirs[name], mine[name])
    return path


async def test_a_rep_reads_only_their_own_deals_and_their_teams_figures(
    sales: ServiceProcess, infra: Infrastructure
) -> None:
    marker = uuid.uuid4().hex[:8]
    customers = [
        await register_customer(infra.bootstrap_servers, f"{who} 客户 {marker}")
        for who in ("li.na", "wang.fang", "zhao.lei")
    ]
    async with (
        sales.client("administrator", "admin", timeout=30) as admin,
        sales.client("sales_rep", "li.na", timeout=30) as li_na,
        sales.client("manager", "chen.jie", timeout=30) as manager,
    ):
        mine = await open_deal(admin, deal(customers[0], "li.na", marker))
        teammate = await open_deal(admin, deal(customers[1], "wang.fang", marker))
        other_team = await open_deal(
            admin,
            deal(customers[2], "zhao.lei", marker, currency="USD", region=f"西部 {marker}"),
        )
        await wait_for(
            admin,
            "/contracts",
            lambda rows: len(rows) == 3 and all(r["payment_count"] == 1 for r in rows),
        )
        document = (await admin.get("/openapi.json")).json()
        rep_may = ROLE_PERMISSIONS["sales_rep"]

        hidden_from_li_na = [
            *(teammate[k] for k in ("opportunity_id", "contract_id", "description", "activity")),
            *(other_team[k] for k in ("opportunity_id", "contract_id", "description")),
            other_team["activity"],
            "zhao.lei",
            "USD",
            f"西部 {marker}",
        ]
        shown: set[str] = set()
        checked = 0
        for template, path, query in get_requests(document, teammate):
            permission = document["paths"][template]["get"]["x-required-permission"]
            response = await li_na.get(path, params=query)
            if permission not in rep_may:
                assert response.status_code == 403, (template, response.status_code)
                continue
            assert response.status_code in (200, 404), (template, query, response.text[:500])
            if "{opportunity_id}" in template or "{contract_id}" in template:
                assert response.status_code == 404, (template, query, response.text[:500])
            leaked = [v for v in hidden_from_li_na if v in response.text and v not in path]
            assert not leaked, f"GET {template} {query} shows {leaked}: {response.text[:1000]}"
            checked += 1

            own = await li_na.get(own_path(path, teammate, mine), params=query)
            assert own.status_code == 200, (template, query, own.text[:500])
            if mine["description"] in own.text:
                shown.add(template)
        assert checked > 20
        assert {
            "/opportunities",
            "/opportunities/export.csv",
            "/opportunities/{opportunity_id}",
            "/customers/{customer_id}/opportunities",
        } <= shown

        # the team's figures count the teammate's deal, not the other team's
        pipeline = (await li_na.get("/pipeline")).json()
        assert [(r["stage"], r["currency"], r["count"]) for r in pipeline] == [("won", "CNY", 2)]
        owners = (await li_na.get("/analysis/owners")).json()
        assert {r["owner"] for r in owners} == {"li.na", "wang.fang"}

        # the manager reads the team's deals, not the other team's; the admin reads all
        path = f"/opportunities/{teammate['opportunity_id']}"
        assert (await manager.get(path)).status_code == 200
        assert (await manager.get(f"{path}/history")).status_code == 200
        other_path = f"/opportunities/{other_team['opportunity_id']}"
        assert (await manager.get(other_path)).status_code == 404
        listed = (await manager.get("/opportunities")).json()["items"]
        assert {i["owner"] for i in listed} == {"li.na", "wang.fang"}
        assert (await admin.get(other_path)).status_code == 200
        assert len((await admin.get("/opportunities")).json()["items"]) == 3
