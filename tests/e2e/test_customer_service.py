"""The customer service as its users meet it: over HTTP, and on the customer topic."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from contracts import parse_event
from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.auth import bearer
from tests.support.http import csv_rows, wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import read_topic
from tests.support.waiting import eventually

HUAXIN: dict[str, Any] = {
    "name": "上海华信贸易有限公司",
    "kind": "business",
    "industry": "retail",
    "region": "华东",
    "owner": "李娜",
    "tags": ["key-account"],
    "contacts": [{"name": "张伟", "title": "采购经理", "phones": ["+86 138 0013 8000"]}],
    "classification": {
        "importance_tier": "vip",
        "loyalty_stage": "new",
        "relationship_level": "responsive",
    },
    "channel_preferences": {"preferred": ["wechat"], "opted_out": ["sms"]},
}


@pytest.fixture
async def client(customer_service: ServiceProcess) -> Any:
    async with customer_service.client(timeout=10) as http:
        yield http


async def test_registered_customer_reaches_directory_and_topic(
    client: httpx.AsyncClient, infra: Infrastructure
) -> None:
    response = await client.post(
        "/customers", json=HUAXIN, headers=bearer("administrator", "li.na")
    )
    assert response.status_code == 201, response.text
    customer_id = response.json()["customer_id"]
    assert response.headers["ETag"] == '"1"'

    # how soon it appears is measured by `crm bench projection-latency`, not asserted here
    page = await wait_for(client, "/customers", lambda p: len(p["items"]) == 1)
    row = page["items"][0]
    assert row["name"] == HUAXIN["name"]
    assert row["classification"]["importance_tier"] == "vip"
    assert row["contacts"][0]["name"] == "张伟"
    assert row["channel_preferences"] == {"preferred": ["wechat"], "opted_out": ["sms"]}

    records = await read_topic(infra.bootstrap_servers, Topic.CUSTOMER, expect=1)
    assert len(records) == 1
    assert records[0].key == customer_id.encode()
    event = parse_event(records[0].value)
    assert event.event_type == "customer.registered"
    assert str(event.customer_id) == customer_id
    assert event.aggregate_version == 1
    assert event.actor == "li.na"
    assert event.producer == "crm.customer"
    assert event.correlation_id == response.headers["X-Correlation-ID"]


async def test_every_kind_of_change_is_recorded_and_projected(client: httpx.AsyncClient) -> None:
    customer_id = (await client.post("/customers", json=HUAXIN)).json()["customer_id"]
    base = f"/customers/{customer_id}"
    steps = [
        ("PATCH", f"{base}/profile", {"region": "华南", "industry": None}),
        (
            "PUT",
            f"{base}/addresses/office",
            {"line1": "天河路 385 号", "city": "广州", "country": "CN"},
        ),
        ("POST", f"{base}/contacts", {"name": "王芳", "emails": ["wang.fang@example.com"]}),
        ("PATCH", f"{base}/classification", {"loyalty_stage": "loyal"}),
        ("POST", f"{base}/tags", {"tag": "wechat-lead"}),
        ("DELETE", f"{base}/tags/key-account", None),
        ("PUT", f"{base}/channel-preferences", {"preferred": ["email"], "opted_out": ["phone"]}),
    ]
    for method, path, body in steps:
        response = await client.request(method, path, json=body)
        assert response.status_code in (200, 201), (path, response.text)
    contact_id = None
    customer = await wait_for(client, base, lambda c: c["version"] == 8)
    assert customer["region"] == "华南"
    assert customer["industry"] is None
    assert customer["addresses"][0]["city"] == "广州"
    assert {c["name"] for c in customer["contacts"]} == {"张伟", "王芳"}
    contact_id = next(c["contact_id"] for c in customer["contacts"] if c["name"] == "王芳")
    assert customer["classification"]["loyalty_stage"] == "loyal"
    assert customer["tags"] == ["wechat-lead"]
    assert customer["channel_preferences"] == {"preferred": ["email"], "opted_out": ["phone"]}

    assert (
        await client.patch(f"{base}/contacts/{contact_id}", json={"title": "总监"})
    ).status_code == 200
    assert (await client.delete(f"{base}/contacts/{contact_id}")).status_code == 200
    assert (await client.delete(f"{base}/addresses/office")).status_code == 200
    customer = await wait_for(client, base, lambda c: c["version"] == 11)
    assert [c["name"] for c in customer["contacts"]] == ["张伟"]
    assert customer["addresses"] == []

    history = (await client.get(f"{base}/history")).json()
    assert [h["event_type"] for h in history][:3] == [
        "customer.registered",
        "customer.profile_changed",
        "customer.address_set",
    ]
    assert len(history) == 11
    assert history[1]["change"]["changed"] == ["industry", "region"]


async def test_clearing_a_contacts_lists_keeps_history_and_publishing_working(
    client: httpx.AsyncClient,
) -> None:
    """Found by fuzzing: `"emails": null` once stored an event that could not be
    published, which stopped the outbox relay and broke the history."""
    body = {
        "name": "清空联系方式",
        "kind": "business",
        "contacts": [{"name": "赵敏", "phones": ["+86 138 0000 0000"], "emails": ["z@a.cn"]}],
    }
    customer_id = (await client.post("/customers", json=body)).json()["customer_id"]
    base = f"/customers/{customer_id}"
    customer = await wait_for(client, base, lambda c: c["version"] == 1)
    contact_id = customer["contacts"][0]["contact_id"]
    cleared = await client.patch(
        f"{base}/contacts/{contact_id}", json={"emails": None, "phones": None}
    )
    assert cleared.status_code == 200, cleared.text
    customer = await wait_for(client, base, lambda c: c["version"] == 2)
    assert customer["contacts"][0]["emails"] == [] and customer["contacts"][0]["phones"] == []
    history = await client.get(f"{base}/history")
    assert history.status_code == 200
    assert [h["event_type"] for h in history.json()] == [
        "customer.registered",
        "customer.contact_changed",
    ]
    ready = (await client.get("/health/ready")).json()
    assert ready["checks"]["background_tasks_running"] is True


async def test_concurrent_changes_are_refused_not_lost(client: httpx.AsyncClient) -> None:
    customer_id = (await client.post("/customers", json=HUAXIN)).json()["customer_id"]
    path = f"/customers/{customer_id}/profile"
    first = await client.patch(path, json={"owner": "王芳"}, headers={"If-Match": '"1"'})
    second = await client.patch(path, json={"owner": "赵敏"}, headers={"If-Match": '"1"'})
    assert first.status_code == 200
    assert second.status_code == 409
    assert "version 2" in second.json()["error"]

    # Many writers at once without If-Match: every command either lands or is told.
    results = await asyncio.gather(
        *(client.post(f"/customers/{customer_id}/tags", json={"tag": f"t{i}"}) for i in range(20))
    )
    assert {r.status_code for r in results} <= {200, 409}
    landed = sum(r.status_code == 200 for r in results)
    history = (await client.get(f"/customers/{customer_id}/history")).json()
    assert len(history) == 2 + landed


async def test_customer_as_of_a_past_moment(client: httpx.AsyncClient) -> None:
    customer_id = (await client.post("/customers", json=HUAXIN)).json()["customer_id"]
    # the moment the registration was recorded: it counts, the change after it does not
    registration = (await client.get(f"/customers/{customer_id}/history")).json()[0]
    moment = datetime.fromisoformat(registration["recorded_at"])
    await client.patch(f"/customers/{customer_id}/profile", json={"name": "华信集团"})

    past = await client.get(f"/customers/{customer_id}", params={"as_of": moment.isoformat()})
    assert past.status_code == 200
    assert past.json()["name"] == HUAXIN["name"]
    assert past.json()["version"] == 1
    now = await wait_for(client, f"/customers/{customer_id}", lambda c: c["version"] == 2)
    assert now["name"] == "华信集团"
    before = await client.get(
        f"/customers/{customer_id}", params={"as_of": "2000-01-01T00:00:00+00:00"}
    )
    assert before.status_code == 404


async def test_directory_filters_paging_and_csv(client: httpx.AsyncClient) -> None:
    people = [
        {
            "name": "北京云图软件有限公司",
            "kind": "business",
            "region": "华北",
            "tags": ["software"],
        },
        {"name": "云南山水茶业", "kind": "business", "region": "西南", "tags": ["retail"]},
        {"name": "Cloudway Ltd", "kind": "business", "region": "华北", "owner": "Ann"},
        {"name": "陈静", "kind": "consumer", "region": "华东", "tags": ["software", "vip"]},
    ]
    for body in people:
        assert (await client.post("/customers", json=body)).status_code == 201
    await wait_for(client, "/customers", lambda p: len(p["items"]) == 4)

    async def names(**params: Any) -> list[str]:
        return [c["name"] for c in (await client.get("/customers", params=params)).json()["items"]]

    assert await names(name="云") == ["云南山水茶业", "北京云图软件有限公司"]
    assert await names(name="cloud") == ["Cloudway Ltd"]
    assert await names(region="华北", kind="business") == ["Cloudway Ltd", "北京云图软件有限公司"]
    assert await names(tag="software") == ["北京云图软件有限公司", "陈静"]
    assert await names(name="%") == []

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/customers", params=params)).json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == 4

    export = await client.get("/customers/export.csv", params={"tag": "software"})
    assert export.headers["content-type"].startswith("text/csv")
    rows = csv_rows(export)
    assert [r["name"] for r in rows] == ["北京云图软件有限公司", "陈静"]
    assert rows[1]["tags"] == "software|vip"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("POST", "/customers", {"name": "", "kind": "consumer"}, 422, "name"),
        ("POST", "/customers", {"name": "x", "kind": "alien"}, 422, "kind"),
        ("POST", "/customers", {"name": "x", "kind": "consumer", "tags": ["a" * 51]}, 422, "tags"),
        ("POST", "/customers", {"name": "x", "kind": "consumer", "surprise": 1}, 422, "surprise"),
        (
            "POST",
            "/customers",
            {
                "name": "x",
                "kind": "consumer",
                "channel_preferences": {"preferred": ["sms"], "opted_out": ["sms"]},
            },
            422,
            "both preferred and opted out",
        ),
        ("GET", "/customers/not-a-uuid", None, 422, "customer_id"),
        ("GET", "/customers/00000000-0000-0000-0000-000000000000", None, 404, "no customer"),
        ("GET", "/customers?cursor=garbage", None, 422, "cursor"),
        ("GET", "/customers?limit=100000", None, 422, "limit"),
        (
            "PATCH",
            "/customers/00000000-0000-0000-0000-000000000000/profile",
            {"name": "y"},
            404,
            "no customer",
        ),
    ],
)
async def test_bad_requests_get_a_clear_4xx(
    client: httpx.AsyncClient, method: str, path: str, body: Any, status: int, says: str
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]


async def test_malformed_json_and_bad_if_match(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/customers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]
    customer_id = (await client.post("/customers", json=HUAXIN)).json()["customer_id"]
    response = await client.post(
        f"/customers/{customer_id}/tags", json={"tag": "x"}, headers={"If-Match": "yesterday"}
    )
    assert response.status_code == 422
    assert "If-Match" in response.json()["error"]


async def test_openapi_documents_every_route_with_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {
        "/customers",
        "/customers/{customer_id}",
        "/customers/{customer_id}/history",
        "/health/ready",
        "/metrics",
    } <= set(spec["paths"])
    register = spec["components"]["schemas"]["RegisterCustomer"]
    assert register["examples"][0]["name"] == "上海华信贸易有限公司"


async def test_logs_are_json_lines_carrying_the_correlation_id(
    client: httpx.AsyncClient, customer_service: ServiceProcess
) -> None:
    response = await client.post(
        "/customers",
        json=HUAXIN,
        headers={"X-Correlation-ID": "req-4711", **bearer("administrator", "li.na")},
    )
    assert response.headers["X-Correlation-ID"] == "req-4711"

    def access_lines() -> list[dict[str, Any]]:
        lines = [
            json.loads(line) for line in customer_service.log().splitlines() if line.startswith("{")
        ]
        return [line for line in lines if line.get("correlation_id") == "req-4711"]

    access = await eventually(access_lines, describe="the access log line of req-4711")
    assert access[0]["actor"] == "li.na"
    assert access[0]["service"] == "customer"
    assert access[0]["status"] == 201


async def test_health_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "alive"}
    ready = (await client.get("/health/ready")).json()
    assert ready["status"] == "ready"
    await client.post("/customers", json=HUAXIN)
    await wait_for(client, "/customers", lambda p: len(p["items"]) == 1)
    metrics = (await client.get("/metrics")).text
    assert 'crm_events_published_total{event_type="customer.registered"' in metrics
    assert (
        'consumer="customer_directory",event_type="customer.registered",outcome="applied"'
        in metrics
    )
    assert (
        'crm_http_requests_total{method="POST",route="/customers",service="customer",status="201"}'
        in metrics
    )
