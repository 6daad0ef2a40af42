"""Finding people and duplicates as users meet it, over HTTP against the customer service:
the directory's search by contact persons' names, phones in any format and e-mails; the
answer to a registration that may be a duplicate; the queue of possible duplicates with
its evidence, a dismissal that survives a rebuild of the directory; an import's report
naming possible duplicates."""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson
import pytest

from local.demo.customer_generator import demo_customers
from local.demo.customers import DEFAULT_COUNT, load_demo
from local.demo.duplicates import demo_duplicates
from local.launcher import ServiceProcess
from services.customer.normalisation import full_width
from tests.support.auth import bearer
from tests.support.crm import crm_rebuild
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.metrics import scrape, total

HUAXIN: dict[str, Any] = {
    "name": "上海华信贸易有限公司",
    "kind": "business",
    "contacts": [
        {
            "name": "张伟",
            "phones": ["+86 138 0013 8000"],
            "emails": ["Zhang.Wei@HuaXin.example"],
        }
    ],
    "addresses": [{"label": "office", "line1": "世纪大道 100 号", "city": "上海", "country": "CN"}],
}
OTHER: dict[str, Any] = {
    "name": "北京云图软件有限公司",
    "kind": "business",
    "contacts": [{"name": "李娜", "phones": ["010 6555 1234"], "emails": ["li.na@yuntu.example"]}],
}


@pytest.fixture
async def client(customer_service: ServiceProcess) -> Any:
    async with customer_service.client(timeout=10) as http:
        yield http


async def register(client: httpx.AsyncClient, body: dict[str, Any], **params: str) -> str:
    response = await client.post("/customers", json=body, params=params)
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["customer_id"]
    await wait_for(client, f"/customers/{customer_id}", lambda c: True)
    return customer_id


async def found(client: httpx.AsyncClient, query: str) -> list[str]:
    response = await client.get("/customers", params={"name": query})
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()["items"]]


async def test_the_directory_search_finds_people_by_name_phone_and_email(
    client: httpx.AsyncClient,
) -> None:
    await register(client, HUAXIN)
    await register(client, OTHER)
    huaxin, yuntu = [HUAXIN["name"]], [OTHER["name"]]
    assert await found(client, "华信") == huaxin
    assert await found(client, "张伟") == huaxin  # a contact person's name
    assert await found(client, full_width("ZHANG.WEI@huaxin")) == huaxin  # e-mail, any case
    for phone in ("138 0013 8000", "+86-138-0013-8000", "0086 13800138000", "0013 8000"):
        assert await found(client, phone) == huaxin, phone
    assert await found(client, "(010) 6555-1234") == yuntu
    assert await found(client, "139 9999 9999") == []


async def test_a_registration_names_its_possible_duplicates_and_may_be_refused(
    client: httpx.AsyncClient,
) -> None:
    first = await register(client, HUAXIN)
    again = {
        "name": "上海华信贸易",  # without 有限公司
        "kind": "business",
        "contacts": [{"name": "张伟", "phones": ["13800138000"]}],  # another format
    }
    refused = await client.post("/customers", json=again, params={"if_duplicate": "refuse"})
    assert refused.status_code == 409, refused.text
    assert "possible duplicate of" in refused.json()["error"]
    [candidate] = refused.json()["possible_duplicates"]
    assert candidate["customer_id"] == first
    assert candidate["name"] == HUAXIN["name"]
    assert candidate["score"] >= 0.75
    kinds = {e["kind"]: e["detail"] for e in candidate["evidence"]}
    assert kinds["phone"] == "+8613800138000"
    assert set(kinds) == {"phone", "name", "contact"}
    page = await client.get("/customers", params={"name": "华信"})
    assert len(page.json()["items"]) == 1  # the refused registration recorded nothing

    confirmed = await client.post("/customers", json=again)
    assert confirmed.status_code == 201, confirmed.text
    assert [c["customer_id"] for c in confirmed.json()["possible_duplicates"]] == [first]
    unrelated = await client.post("/customers", json=OTHER, params={"if_duplicate": "refuse"})
    assert unrelated.status_code == 201, unrelated.text
    assert unrelated.json()["possible_duplicates"] == []


async def queue(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/duplicates", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_the_queue_holds_pairs_with_evidence_and_a_dismissal_survives_a_rebuild(
    client: httpx.AsyncClient, infra: Infrastructure
) -> None:
    first = await register(client, HUAXIN)
    second = await register(
        client,
        {
            "name": "上海华信贸易",
            "kind": "business",
            "contacts": [{"name": "王芳", "emails": ["ZHANG.WEI@huaxin.example"]}],
        },
    )
    third = await register(client, {**OTHER, "name": "北京云图软件"})
    fourth = await register(client, OTHER)
    pairs = await wait_for(client, "/duplicates", lambda p: len(p["items"]) == 2)
    by_pair = {
        frozenset((p["customer_a"]["customer_id"], p["customer_b"]["customer_id"])): p
        for p in pairs["items"]
    }
    assert set(by_pair) == {frozenset((first, second)), frozenset((third, fourth))}
    huaxin = by_pair[frozenset((first, second))]
    assert huaxin["customer_a"]["customer_id"] < huaxin["customer_b"]["customer_id"]
    assert {e["kind"]: e["detail"] for e in huaxin["evidence"]} == {
        "email": "zhang.wei@huaxin.example",
        "name": "same name '上海华信贸易'",
    }
    assert [p["score"] for p in pairs["items"]] == sorted(
        (p["score"] for p in pairs["items"]), reverse=True
    )
    assert [p["customer_b"]["customer_id"] for p in await queue(client, customer_id=fourth)] == [
        max(third, fourth)
    ]
    paged = await client.get("/duplicates", params={"limit": 1})
    assert paged.json()["next_cursor"]

    rep = await client.get("/duplicates", headers=bearer("sales_rep", "wang.fang"))
    assert rep.status_code == 403
    manager = await client.get("/duplicates", headers=bearer("manager", "zhao.min"))
    assert manager.status_code == 200

    dismissed = await client.post(f"/duplicates/{second}/{first}/dismiss")
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["customer_a"] == min(first, second)
    again = await client.post(f"/duplicates/{first}/{second}/dismiss")
    assert again.json()["version"] == dismissed.json()["version"]  # nothing new recorded
    await wait_for(client, "/duplicates", lambda p: len(p["items"]) == 1)
    history = (await client.get(f"/customers/{min(first, second)}/history")).json()
    assert history[-1]["event_type"] == "customer.duplicate_dismissed"

    # a change to either customer, and a rebuild of the directory, bring it back no more
    touched = await client.post(f"/customers/{first}/tags", json={"tag": "reviewed"})
    assert touched.status_code == 200
    rebuilding = await crm_rebuild(infra, "customer")
    _, err = await rebuilding.communicate()
    assert rebuilding.returncode == 0, err.decode()
    await wait_for(
        client, f"/customers/{first}", lambda c: c["version"] == touched.json()["version"]
    )
    remaining = await queue(client)
    assert [
        {p["customer_a"]["customer_id"], p["customer_b"]["customer_id"]} for p in remaining
    ] == [{third, fourth}]

    metrics = await scrape(client)
    assert total(metrics, "crm_customer_duplicate_pairs_dismissed_total") == 1
    assert total(metrics, "crm_customer_duplicate_pairs_found_total") >= 2
    unknown = await client.post(f"/duplicates/{first}/00000000-0000-4000-8000-000000000000/dismiss")
    assert unknown.status_code == 404
    assert (await client.post(f"/duplicates/{first}/{first}/dismiss")).status_code == 422


MAPPING = {
    "default_region": "CN",
    "key": {"source": "erp", "column": "id"},
    "name": "name",
    "kind": {"value": "business"},
    "contacts": [{"name": "contact", "phones": ["phone"], "emails": ["email"]}],
}
LINES = [
    # the directory's 上海华信贸易有限公司: its phone in another format
    {
        "id": "D-1",
        "name": full_width("华信贸易(上海)"),
        "contact": "张伟",
        "phone": "138-0013-8000",
    },
    # two rows of one customer in the file: the same e-mail in other case
    {"id": "D-2", "name": "ABC Trading Co., Ltd.", "contact": "Li", "email": "li@abc.example"},
    {"id": "D-3", "name": "ABC TRADING", "contact": "Li", "email": "LI@ABC.EXAMPLE"},
    {"id": "D-4", "name": "无关客户", "contact": "赵六"},
]


async def test_an_import_report_names_possible_duplicates(client: httpx.AsyncClient) -> None:
    first = await register(client, HUAXIN)
    defined = await client.put("/customer-imports/dupes", json={"mapping": MAPPING})
    assert defined.status_code == 200, defined.text
    body = b"".join(orjson.dumps(line) + b"\n" for line in LINES)

    async def upload(**params: str) -> list[dict[str, Any]]:
        response = await client.post(
            "/customer-imports/dupes/upload",
            content=body,
            params=params,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 200, response.text
        return [json.loads(line) for line in response.text.splitlines()]

    for report in (await upload(dry_run="true"), await upload()):
        rows = {r["row"]: r for r in report[:-1]}
        assert [r["outcome"] for r in rows.values()] == ["created"] * 4
        [directory] = rows[1]["possible_duplicates"]
        assert directory["customer_id"] == first
        assert {e["kind"] for e in directory["evidence"]} == {"phone", "contact"}
        assert [(d["row"], d["name"]) for d in rows[2]["possible_duplicates"]] == [
            (3, "ABC TRADING")
        ]
        assert [d["row"] for d in rows[3]["possible_duplicates"]] == [2]
        assert "email" in {e["kind"] for e in rows[3]["possible_duplicates"][0]["evidence"]}
        assert rows[4]["possible_duplicates"] == []
        assert report[-1]["summary"]["possible_duplicates"] == 3
    # once imported, the queue holds both pairs
    await wait_for(client, "/duplicates", lambda p: len(p["items"]) == 2)


async def test_the_queue_finds_the_deliberate_duplicates_of_the_demo_data(
    client: httpx.AsyncClient, customer_service: ServiceProcess
) -> None:
    ids = await load_demo(customer_service.url, DEFAULT_COUNT, client=client)
    planted = demo_duplicates(demo_customers(DEFAULT_COUNT))
    assert len(planted) == 3

    def holds_every_planted_pair(page: dict[str, Any]) -> bool:
        pairs = {
            (side["customer_id"], other["name"])
            for p in page["items"]
            for side, other in (
                (p["customer_a"], p["customer_b"]),
                (p["customer_b"], p["customer_a"]),
            )
        }
        return all((ids[index], body["name"]) in pairs for index, body in planted)

    await wait_for(client, "/duplicates", holds_every_planted_pair, limit=500)
