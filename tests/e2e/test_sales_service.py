"""The sales service as its users meet it: a deal from lead to paid over HTTP, purchases
published by a shop with a plain Kafka client, and the views that answer from them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from contracts import parse_event
from contracts.customer import CustomerProfileChanged, CustomerRegistered
from contracts.references import CustomerReference, customer_id_for_reference
from contracts.sales import PurchaseRecorded
from contracts.topics import Topic
from local.demo import sales as demo_sales
from local.launcher import ServiceProcess
from tests.support.auth import bearer
from tests.support.customers import register_customer, when_customer_known
from tests.support.events import as_message, envelope
from tests.support.http import csv_rows, wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import header, publish_json, publish_raw, read_topic
from tests.support.purchases import shop_purchase as purchase

TODAY = datetime.now(UTC).date()
THIS_MONTH = TODAY.strftime("%Y-%m")


def money(value: str) -> Decimal:
    return Decimal(value)


async def open_when_customer_known(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> dict[str, Any]:
    """Open an opportunity, waiting for the customer to reach the sales service first."""
    response = await when_customer_known(
        client, "/opportunities", body, headers=bearer("administrator", "li.na")
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_deal_from_lead_to_paid_and_purchases_from_a_shop(
    infra: Infrastructure, customer_service: ServiceProcess, sales_service: ServiceProcess
) -> None:
    async with (
        customer_service.client(timeout=10) as customers,
        sales_service.client(timeout=10) as sales,
    ):
        registered = await customers.post(
            "/customers",
            json={"name": "上海华信贸易有限公司", "kind": "business", "region": "华东"},
        )
        customer_id = registered.json()["customer_id"]

        # A deal: opened, worked through the stages (once backwards), won, signed, paid.
        deal = await open_when_customer_known(
            sales,
            {
                "customer_id": customer_id,
                "description": "ERP 升级项目",
                "products": [
                    {"product": "企业版年度许可", "quantity": 50, "unit_price": "1200.00"},
                    {"product": "实施服务", "quantity": 20, "unit_price": "2000.00"},
                ],
                "currency": "CNY",
                "expected_close_date": str(TODAY + timedelta(days=30)),
                "region": "华东",
                "owner": "李娜",
            },
        )
        deal_id = deal["opportunity_id"]
        path = f"/opportunities/{deal_id}"

        demo = await sales.post(
            f"{path}/activities",
            json={
                "kind": "demo",
                "date": str(TODAY),
                "people": ["张伟", "李娜"],
                "description": "现场演示",
                "predicted_result": "客户同意进入报价阶段",
            },
        )
        assert demo.status_code == 201, demo.text
        held = await sales.post(
            f"{path}/activities/{demo.json()['activity_id']}/result",
            json={"date": str(TODAY), "actual_result": "同意报价", "prediction_held": True},
        )
        assert held.status_code == 200, held.text
        missing_verdict = await sales.post(
            f"{path}/activities",
            json={
                "kind": "visit",
                "date": str(TODAY),
                "description": "拜访财务总监",
                "predicted_result": "当场确认预算",
                "actual_result": "预算下季度才定",
            },
        )
        assert missing_verdict.status_code == 422
        assert "prediction_held" in missing_verdict.json()["error"]
        missed = await sales.post(
            f"{path}/activities",
            json={
                "kind": "visit",
                "date": str(TODAY),
                "description": "拜访财务总监",
                "predicted_result": "当场确认预算",
                "actual_result": "预算下季度才定",
                "prediction_held": False,
            },
        )
        assert missed.status_code == 201, missed.text

        for stage in ("qualified", "proposal", "qualified", "proposal", "negotiation"):
            moved = await sales.post(f"{path}/stage", json={"stage": stage})
            assert moved.status_code == 200, moved.text
        quote = await sales.post(
            f"{path}/quotes",
            json={
                "lines": [{"product": "企业版年度许可", "quantity": 50, "unit_price": "1100"}],
                "currency": "CNY",
                "valid_until": str(TODAY + timedelta(days=14)),
            },
        )
        again = await sales.post(
            f"{path}/quotes",
            json={
                "quote_id": quote.json()["quote_id"],
                "lines": [{"product": "企业版年度许可", "quantity": 50, "unit_price": "1050"}],
                "currency": "CNY",
                "valid_until": str(TODAY + timedelta(days=14)),
            },
        )
        assert again.json()["quote_version"] == 2
        early = await sales.post(
            f"{path}/contract",
            json={"amount": "95000.00", "currency": "CNY", "signed_on": str(TODAY)},
        )
        assert early.status_code == 422 and "won" in early.json()["error"]
        assert (await sales.post(f"{path}/stage", json={"stage": "won"})).status_code == 200
        final = await sales.post(f"{path}/stage", json={"stage": "lost", "lost_reason": "x"})
        assert final.status_code == 422 and "reopen" in final.json()["error"]
        contract = await sales.post(
            f"{path}/contract",
            json={"amount": "95000.00", "currency": "CNY", "signed_on": str(TODAY)},
        )
        assert contract.status_code == 201, contract.text
        contract_id = contract.json()["contract_id"]
        for amount in ("40000.00", "35000.50"):
            paid = await sales.post(
                f"{path}/contract/payments",
                json={"amount": amount, "currency": "CNY", "received_on": str(TODAY)},
            )
            assert paid.status_code == 201, paid.text
        assert money(paid.json()["outstanding"]) == money("19999.50")
        too_much = await sales.post(
            f"{path}/contract/payments",
            json={"amount": "20000", "currency": "CNY", "received_on": str(TODAY)},
        )
        assert too_much.status_code == 422 and "19999.50" in too_much.json()["error"]

        # Two more opportunities: one in dollars in another region, one overdue.
        await open_when_customer_known(
            sales,
            {
                "customer_id": customer_id,
                "description": "海外分公司许可",
                "products": [{"product": "标准版许可", "quantity": 10, "unit_price": "300"}],
                "currency": "USD",
                "expected_close_date": str(TODAY + timedelta(days=60)),
                "region": "华南",
                "owner": "王磊",
                "stage": "proposal",
                "probability": 40,
            },
        )
        overdue = await open_when_customer_known(
            sales,
            {
                "customer_id": customer_id,
                "description": "培训服务",
                "products": [{"product": "培训服务", "quantity": 2, "unit_price": "5000"}],
                "currency": "CNY",
                "expected_close_date": str(TODAY - timedelta(days=10)),
                "region": "华东",
                "owner": "李娜",
            },
        )

        # Purchases from the shop: three orders, one of them sent twice, one of them
        # naming a customer the CRM has never seen, by the shop's own customer id.
        stranger = CustomerReference(source="shop-cn", source_customer_id="U-777")
        await publish_json(
            infra.bootstrap_servers,
            Topic.PURCHASES_INBOUND,
            [
                (customer_id, purchase("SO-1", "1299.00", customer_id=customer_id)),
                (customer_id, purchase("SO-2", "88.50", customer_id=customer_id)),
                (customer_id, purchase("SO-2", "88.50", customer_id=customer_id)),
                (
                    "U-777",
                    purchase(
                        "SO-3",
                        "59.90",
                        customer_reference=stranger.model_dump(),
                        customer_hint={"name": "王小明", "phone": "+86 139 0000 0777"},
                    ),
                ),
            ],
        )

        bought = await wait_for(
            sales, f"/customers/{customer_id}/purchases", lambda b: len(b["items"]) == 2
        )
        assert {i["order_id"] for i in bought["items"]} == {"SO-1", "SO-2"}
        assert bought["items"][0]["customer_name"] == "上海华信贸易有限公司"
        assert [(t["currency"], t["count"], money(t["amount"])) for t in bought["totals"]] == [
            ("CNY", 2, money("1387.50"))
        ]
        stranger_id = str(customer_id_for_reference(stranger))
        theirs = await wait_for(
            sales, f"/customers/{stranger_id}/purchases", lambda b: len(b["items"]) == 1
        )
        assert theirs["items"][0]["source_customer_id"] == "U-777"
        known = await wait_for(
            customers, f"/customers/{stranger_id}", lambda c: c["first_seen_in"] == "shop-cn"
        )
        assert known["name"] == "王小明"

        # The published purchases: the duplicate recorded once.
        published = await read_topic(infra.bootstrap_servers, Topic.SALES, expect=1)
        orders = [
            e.payload.order_id
            for e in map(parse_event, (r.value for r in published))
            if isinstance(e.payload, PurchaseRecorded)
        ]
        assert sorted(orders) == ["SO-1", "SO-2", "SO-3"]

        # The views.
        await wait_for(sales, path, lambda o: o["contract"] and o["contract"]["payment_count"] == 2)
        pipeline = await sales.get("/pipeline")
        rows = {(r["stage"], r["currency"]): r for r in pipeline.json()}
        assert set(rows) == {("won", "CNY"), ("proposal", "USD"), ("lead", "CNY")}
        assert money(rows[("won", "CNY")]["amount"]) == money("100000")
        assert money(rows[("proposal", "USD")]["weighted_amount"]) == money("1200")
        assert money(rows[("lead", "CNY")]["weighted_amount"]) == money("1000")

        by_region = (await sales.get("/analysis/opportunities", params={"by": "region"})).json()
        region = {(r["key"], r["currency"]): r for r in by_region}
        assert region[("华东", "CNY")]["count"] == 2
        assert region[("华东", "CNY")]["won_count"] == 1
        assert region[("华东", "CNY")]["win_rate"] == 1.0
        assert region[("华南", "USD")]["open_count"] == 1
        assert region[("华南", "USD")]["win_rate"] is None

        by_month = (await sales.get("/analysis/opportunities", params={"by": "month"})).json()
        assert [(r["key"], r["currency"], r["count"]) for r in by_month] == [
            (THIS_MONTH, "CNY", 2),
            (THIS_MONTH, "USD", 1),
        ]
        by_product = (await sales.get("/analysis/opportunities", params={"by": "product"})).json()
        license_row = next(r for r in by_product if r["key"] == "企业版年度许可")
        assert money(license_row["amount"]) == money("60000")

        balance = (await sales.get(f"/contracts/{contract_id}")).json()
        assert money(balance["amount"]) == money("95000")
        assert money(balance["paid"]) == money("75000.50")
        assert money(balance["outstanding"]) == money("19999.50")
        assert balance["customer_name"] == "上海华信贸易有限公司"

        close = TODAY - timedelta(days=10)
        asked_on = datetime.now(UTC).date()
        late = (await sales.get("/opportunities/overdue")).json()["items"]
        answered_on = datetime.now(UTC).date()  # the day may turn during the request
        assert [o["opportunity_id"] for o in late] == [overdue["opportunity_id"]]
        assert late[0]["days_overdue"] in {(asked_on - close).days, (answered_on - close).days}

        predictions = (await sales.get("/analysis/predictions", params={"owner": "李娜"})).json()
        assert [(p["kind"], p["held"], p["missed"], p["hit_rate"]) for p in predictions] == [
            ("demo", 1, 0, 1.0),
            ("visit", 0, 1, 0.0),
        ]

        owners = {
            (r["owner"], r["currency"]): r for r in (await sales.get("/analysis/owners")).json()
        }
        assert owners[("李娜", "CNY")]["won_count"] == 1
        assert owners[("李娜", "CNY")]["overdue_count"] == 1
        assert money(owners[("李娜", "CNY")]["collected_amount"]) == money("75000.50")

        detail = (await sales.get(path)).json()
        assert detail["stage"] == "won" and detail["backward_moves"] == 1
        assert [q["quote_version"] for q in detail["quotes"]] == [1, 2]
        history = (await sales.get(f"{path}/history")).json()
        moves = [h["change"]["move"] for h in history if "move" in h["change"]]
        assert moves == ["forward", "forward", "backward", "forward", "forward", "forward"]
        assert history[0]["actor"] == "li.na"

        exported = await sales.get("/pipeline", params={"format": "csv"})
        table = csv_rows(exported)
        assert {r["stage"] for r in table} == {"won", "proposal", "lead"}
        listed = await sales.get("/opportunities/export.csv", params={"region": "华东"})
        assert len(csv_rows(listed)) == 2

        page = (await sales.get("/opportunities", params={"limit": 2})).json()
        rest = (
            await sales.get("/opportunities", params={"limit": 2, "cursor": page["next_cursor"]})
        ).json()
        assert len(page["items"]) + len(rest["items"]) == 3 and rest["next_cursor"] is None


async def test_bad_purchases_are_dead_lettered_with_reasons(
    infra: Infrastructure, sales_service: ServiceProcess
) -> None:
    customer_id = str(uuid.uuid4())
    good = purchase("SO-OK", "10.00", customer_id=customer_id)
    bad: dict[str, Any | bytes] = {
        "malformed": b'{"source": "shop-cn", "order_id": ',
        "missing": {k: v for k, v in good.items() if k != "amount"},
        "negative": {**good, "amount": "-5.00"},
        "currency": {**good, "amount": "5.00", "currency": "XBT"},
        "type": {**good, "amount": {"value": 5}},
        "nobody": {k: v for k, v in good.items() if k != "customer_id"},
    }
    await publish_json(
        infra.bootstrap_servers,
        Topic.PURCHASES_INBOUND,
        [(key, value) for key, value in bad.items()] + [("ok", good)],
    )

    dead = await read_topic(infra.bootstrap_servers, Topic.DEAD_LETTER, expect=len(bad))
    reasons = {r.key.decode(): (header(r, "dlq.reason"), header(r, "dlq.detail")) for r in dead}
    assert {k: reason for k, (reason, _) in reasons.items()} == {
        "malformed": "malformed JSON",
        "missing": "missing field",
        "negative": "negative amount",
        "currency": "unknown currency",
        "type": "wrong type",
        "nobody": "no customer named",
    }
    assert "amount" in (reasons["missing"][1] or "")
    assert "XBT" in (reasons["currency"][1] or "")
    assert all(header(r, "dlq.source_topic") == Topic.PURCHASES_INBOUND for r in dead)

    async with sales_service.client(timeout=10) as sales:
        recorded = await wait_for(
            sales, f"/customers/{customer_id}/purchases", lambda b: len(b["items"]) == 1
        )
    assert recorded["items"][0]["order_id"] == "SO-OK"
    assert recorded["items"][0]["customer_name"] is None


async def test_demo_data_loads_and_customer_names_follow_the_customer_topic(
    infra: Infrastructure, sales_service: ServiceProcess
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    await publish_raw(
        infra.bootstrap_servers,
        Topic.CUSTOMER,
        [
            as_message(envelope(first, 1, CustomerRegistered(name="恒通物流", kind="business"))),
            as_message(envelope(second, 1, CustomerRegistered(name="瑞丰医疗", kind="business"))),
        ],
    )
    await demo_sales.load(sales_service.url, [str(first), str(second)], sales_service.token())

    async with sales_service.client(timeout=10) as sales:
        stages = await wait_for(
            sales, "/pipeline", lambda rows: {"won", "lost"} <= {r["stage"] for r in rows}
        )
        assert {r["currency"] for r in stages} == {"CNY", "USD"}
        contracts = await wait_for(
            sales, "/contracts", lambda rows: len(rows) == 1 and rows[0]["payment_count"] == 2
        )
        assert money(contracts[0]["outstanding"]) > 0
        assert contracts[0]["customer_name"] == "恒通物流"
        predictions = (await sales.get("/analysis/predictions")).json()
        assert sum(p["held"] for p in predictions) == 2
        assert sum(p["missed"] for p in predictions) == 1

        await publish_raw(
            infra.bootstrap_servers,
            Topic.CUSTOMER,
            [
                as_message(
                    envelope(
                        first, 2, CustomerProfileChanged(name="恒通国际物流", changed=["name"])
                    )
                )
            ],
        )
        renamed = await wait_for(
            sales,
            f"/customers/{first}/opportunities",
            lambda page: all(o["customer_name"] == "恒通国际物流" for o in page["items"]),
        )
        assert len(renamed["items"]) == 3


async def test_an_opportunity_as_of_a_past_moment(
    infra: Infrastructure, sales_service: ServiceProcess
) -> None:
    """`as_of` answers the opportunity as it was (from the event store), in the shape of
    the present: as of now it is exactly what the read model answers."""
    customer_id = await register_customer(infra.bootstrap_servers, "华信贸易")
    async with sales_service.client(timeout=10) as sales:
        deal = await open_when_customer_known(
            sales,
            {
                "customer_id": str(customer_id),
                "description": "ERP 升级项目",
                "products": [{"product": "企业版年度许可", "quantity": 5, "unit_price": "1200.00"}],
                "currency": "CNY",
                "expected_close_date": str(TODAY + timedelta(days=30)),
                "owner": "li.na",
            },
        )
        path = f"/opportunities/{deal['opportunity_id']}"
        visit = await sales.post(
            f"{path}/activities",
            json={
                "kind": "visit",
                "date": str(TODAY),
                "description": "拜访",
                "predicted_result": "报价",
            },
        )
        assert visit.status_code == 201, visit.text
        quote = {
            "lines": [{"product": "企业版年度许可", "quantity": 5, "unit_price": "1100"}],
            "currency": "CNY",
            "valid_until": str(TODAY + timedelta(days=14)),
            "note": "含实施",
        }
        assert (await sales.post(f"{path}/quotes", json=quote)).status_code == 201
        quoted_at = (await sales.get(f"{path}/history")).json()[-1]["recorded_at"]

        for stage in ("qualified", "proposal", "qualified", "won"):
            assert (await sales.post(f"{path}/stage", json={"stage": stage})).status_code == 200
        done = await sales.post(
            f"{path}/activities/{visit.json()['activity_id']}/result",
            json={"date": str(TODAY), "actual_result": "已报价", "prediction_held": True},
        )
        assert done.status_code == 200, done.text
        signed = await sales.post(
            f"{path}/contract",
            json={"amount": "5500.00", "currency": "CNY", "signed_on": str(TODAY)},
        )
        assert signed.status_code == 201, signed.text
        paid = await sales.post(
            f"{path}/contract/payments",
            json={"amount": "500.00", "currency": "CNY", "received_on": str(TODAY)},
        )
        assert paid.status_code == 201, paid.text
        version = paid.json()["version"]

        present = await wait_for(sales, path, lambda o: o["version"] == version)
        now = await sales.get(path, params={"as_of": datetime.now(UTC).isoformat()})
        assert now.status_code == 200, now.text
        assert now.json() == present
        assert now.headers["ETag"] == f'"{version}"'

        past = (await sales.get(path, params={"as_of": quoted_at})).json()
        assert (past["stage"], past["probability"], past["version"]) == ("lead", 10, 3)
        assert past["backward_moves"] == 0 and past["closed_at"] is None
        assert [(q["quote_version"], q["note"], q["total_amount"]) for q in past["quotes"]] == [
            (1, "含实施", "5500.00")
        ]
        assert [(a["description"], a["actual_result"]) for a in past["activities"]] == [
            ("拜访", None)
        ]
        assert past["contract"] is None
        assert past["updated_at"] == quoted_at
        assert present["backward_moves"] == 1 and present["contract"]["paid"] == "500.00"

        before = await sales.get(path, params={"as_of": "2000-01-01T00:00:00+00:00"})
        assert before.status_code == 404
        assert "was not opened yet" in before.json()["error"]
        naive = await sales.get(path, params={"as_of": "2026-01-01T00:00:00"})
        assert naive.status_code == 422
