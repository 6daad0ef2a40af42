"""The analytics service as a process: defining a segment fills it and publishes the
changes on the analytics topic, the live feed delivers them, churn warnings are raised
and cleared, and bad input is answered with 4xx."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.registry import parse_event
from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.events import raw_envelope as envelope
from tests.support.http import csv_rows, wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_raw, read_topic
from tests.support.waiting import eventually


@pytest.fixture
def analytics(analytics_service: ServiceProcess) -> ServiceProcess:
    return analytics_service


def registered(customer: uuid.UUID, name: str, region: str) -> tuple[bytes, bytes]:
    payload = {"name": name, "kind": "business", "region": region, "owner": "li.na"}
    return envelope(
        "customer.registered",
        customer,
        payload,
        datetime.now(UTC) - timedelta(days=400),
        aggregate_id=customer,
    )


def purchase(customer: uuid.UUID, amount: str, days_ago: int) -> tuple[bytes, bytes]:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    payload = {
        "purchase_id": str(uuid.uuid4()),
        "source": "shop-cn",
        "order_id": uuid.uuid4().hex,
        "amount": amount,
        "currency": "CNY",
    }
    return envelope("sales.purchase_recorded", customer, payload, at)


def survey(customer: uuid.UUID, nps: int, minutes_ago: int) -> tuple[bytes, bytes]:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    payload = {"survey": "quarterly-nps", "nps": nps, "answered_at": at.isoformat()}
    return envelope("interaction.survey_answered", customer, payload, at)


async def population(infra: Infrastructure) -> list[uuid.UUID]:
    """Ten buyers; the first spends by far the most (top value tier)."""
    customers = [uuid.uuid4() for _ in range(10)]
    customer_messages = [
        registered(c, f"客户{i}", "华东" if i % 2 == 0 else "华北") for i, c in enumerate(customers)
    ]
    sales = [purchase(c, str(100 * (i + 1)), 10 + i) for i, c in enumerate(customers)]
    sales += [purchase(customers[0], "90000", 5), purchase(customers[0], "50000", 40)]
    await publish_raw(infra.bootstrap_servers, Topic.CUSTOMER, customer_messages)
    await publish_raw(infra.bootstrap_servers, Topic.SALES, sales)
    return customers


async def test_a_defined_segment_fills_publishes_and_streams(
    infra: Infrastructure, analytics: ServiceProcess
) -> None:
    customers = await population(infra)
    async with analytics.client(timeout=30) as client:
        await wait_for(
            client, "/profiles", lambda body: len(body["items"]) == 10 and all(
                p["monetary_score"] for p in body["items"])
        )  # fmt: skip
        east_profiles = await client.get("/profiles", params={"region": "华东", "kind": "business"})
        assert east_profiles.status_code == 200, east_profiles.text
        assert {p["customer_id"] for p in east_profiles.json()["items"]} == {
            str(c) for i, c in enumerate(customers) if i % 2 == 0
        }
        unknown = await client.get("/profiles", params={"regoin": "华东"})
        assert unknown.status_code == 422 and "regoin" in unknown.json()["error"]
        feed_lines: list[str] = []
        following = asyncio.Event()

        async def listen() -> None:
            async with client.stream("GET", "/feed") as response:
                assert response.status_code == 200
                async for line in response.aiter_lines():
                    following.set()  # the feed's first line: it starts after what exists now
                    feed_lines.append(line)
                    if line.startswith("data:") and '"east_buyers"' in line:
                        return

        listener = asyncio.create_task(listen())
        await asyncio.wait_for(following.wait(), 20)
        rule = {"all": [
            {"field": "region", "op": "eq", "value": "华东"},
            {"field": "purchase_count", "op": "ge", "value": 1},
        ]}  # fmt: skip
        created = await client.post(
            "/segments", json={"segment": "east_buyers", "name": "华东买家", "rule": rule}
        )
        assert created.status_code == 201, created.text
        assert created.json()["version"] == 1
        east = {str(c) for i, c in enumerate(customers) if i % 2 == 0}
        members = await wait_for(
            client,
            "/segments/east_buyers/members",
            lambda body: {m["customer_id"] for m in body["items"]} == east,
        )
        assert all(m["rule_version"] == 1 for m in members["items"])
        await asyncio.wait_for(listener, 20)
        assert any("analytics.segment_changed" in line for line in feed_lines)

        records = await read_topic(infra.bootstrap_servers, Topic.ANALYTICS, expect=6)
        changes: list[Any] = [parse_event(r.value) for r in records]
        entered = [
            e
            for e in changes
            if e.event_type == "analytics.segment_changed" and e.payload.segment == "east_buyers"
        ]
        assert {str(e.customer_id) for e in entered} == east
        assert all(e.payload.direction == "entered" for e in entered)
        assert all(e.payload.values["region"] == "华东" for e in entered)
        assert any(e.event_type == "analytics.segment_defined" for e in changes)

        # a new version that excludes small spenders: some leave, with the new version
        rule["all"].append({"field": "total_spend", "op": "gt", "value": 450})
        changed = await client.put(
            "/segments/east_buyers",
            json={"name": "华东买家", "rule": rule},
            headers={"If-Match": '"1"'},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["version"] == 2
        stay = {str(customers[i]) for i in (0, 4, 6, 8)}
        await wait_for(
            client,
            "/segments/east_buyers/members",
            lambda body: {m["customer_id"] for m in body["items"]} == stay,
        )
        why = (await client.get(f"/customers/{customers[4]}/segments/east_buyers/why")).json()
        assert why["member"] is True
        gone = (await client.get(f"/customers/{customers[2]}/segments/east_buyers/why")).json()
        assert gone["member"] is False
        assert gone["last_change"]["left_because"]["total_spend"] == "300.00"
        assert why["definition"]["version"] == 2
        history = (await client.get(f"/customers/{customers[0]}/segment-history")).json()
        assert any(h["segment"] == "east_buyers" for h in history["items"])
        csv = await client.get("/segments/east_buyers/members", params={"format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert len(csv_rows(csv)) == len(stay)


async def test_a_churn_warning_is_raised_and_cleared(
    infra: Infrastructure, analytics: ServiceProcess
) -> None:
    customers = await population(infra)
    top = customers[0]
    async with analytics.client(timeout=30) as client:
        profile = await wait_for(client, f"/profiles/{top}", lambda p: p["value_tier"] == "top")
        # amounts are decimal strings with two decimals, as every service sends them
        assert (profile["total_spend"], profile["average_spend"]) == ("140100.00", "46700.00")
        pareto = (await client.get("/overview/pareto")).json()
        assert pareto["total_value"] == "145500.00"
        segments = (await client.get("/segments")).json()["items"]
        assert all(re.fullmatch(r"\d+\.\d{2}", s["value"]) for s in segments), segments
        await publish_raw(infra.bootstrap_servers, Topic.INTERACTION, [survey(top, 3, 60)])
        warnings = await wait_for(client, "/churn-warnings", lambda body: len(body["items"]) == 1)
        assert warnings["items"][0]["customer_id"] == str(top)
        assert warnings["items"][0]["reasons"] == ["detractor"]
        view = (await client.get(f"/customers/{top}/360")).json()
        assert view["churn_warning"]["reasons"] == ["detractor"]
        assert view["satisfaction"]["nps_category"] == "detractor"

        await publish_raw(infra.bootstrap_servers, Topic.INTERACTION, [survey(top, 10, 1)])
        await wait_for(client, "/churn-warnings", lambda body: body["items"] == [])
        empty = await client.get("/churn-warnings", params={"format": "csv"})
        assert csv_rows(empty) == []
        assert empty.content.decode("utf-8-sig").splitlines() == [
            "customer_id,name,owner,value_tier,reasons,raised_at,values,total_spend"
        ]

        async def churn_events() -> list[str]:
            records = await read_topic(infra.bootstrap_servers, Topic.ANALYTICS, expect=1)
            kinds = [
                e.event_type
                for e in map(parse_event, (r.value for r in records))
                if e.customer_id == top and e.event_type.startswith("analytics.churn")
            ]
            assert kinds == ["analytics.churn_risk_raised", "analytics.churn_risk_cleared"], kinds
            return kinds

        await eventually(churn_events, timeout=20, describe="the churn warning raised, cleared")


async def test_a_corrected_interaction_moves_the_last_contact_and_the_360(
    infra: Infrastructure, analytics: ServiceProcess
) -> None:
    customer, call = uuid.uuid4(), uuid.uuid4()
    long_ago = datetime.now(UTC) - timedelta(days=200)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    logged = {"channel": "phone", "direction": "inbound", "started_at": long_ago.isoformat(),
              "subject": "回访"}  # fmt: skip
    correction = {"started_at": yesterday.isoformat(), "channel": "wechat",
                  "changed": ["channel", "started_at"], "reason": "日期记错了"}  # fmt: skip
    await publish_raw(
        infra.bootstrap_servers, Topic.CUSTOMER, [registered(customer, "客户甲", "华东")]
    )
    await publish_raw(
        infra.bootstrap_servers,
        Topic.INTERACTION,
        [envelope("interaction.logged", customer, logged, long_ago, aggregate_id=call)],
    )
    async with analytics.client(timeout=30) as client:
        await wait_for(
            client, f"/profiles/{customer}", lambda p: p["days_since_last_contact"] == 200
        )
        await publish_raw(
            infra.bootstrap_servers,
            Topic.INTERACTION,
            [
                envelope(
                    "interaction.corrected",
                    customer,
                    correction,
                    yesterday,
                    aggregate_id=call,
                    aggregate_version=2,
                )
            ],
        )
        profile = await wait_for(
            client, f"/profiles/{customer}", lambda p: p["days_since_last_contact"] == 1
        )
        assert profile["interactions_90d"] == 1
        view = (await client.get(f"/customers/{customer}/360")).json()
        [shown] = view["last_interactions"]
        assert (shown["channel"], shown["subject"]) == ("wechat", "回访")
        assert datetime.fromisoformat(shown["started_at"]) == yesterday


BAD_RULES = [
    ({"field": "shoe_size", "op": "gt", "value": 40}, "shoe_size"),
    ({"field": "total_spend", "op": "roughly", "value": 1}, "roughly"),
    ({"field": "total_spend", "op": "gt", "value": "lots"}, "total_spend"),
    ({"field": "tags", "op": "gt", "value": "x"}, "gt"),
    ({"all": []}, "non-empty"),
    ({"every": [1]}, "unknown rule"),
    ({"field": "region", "op": "between", "value": [5, 1]}, "region"),
]


async def test_bad_input_is_answered_with_4xx_naming_the_problem(
    analytics: ServiceProcess,
) -> None:
    async with analytics.client(timeout=30) as client:
        for rule, named in BAD_RULES:
            response = await client.post(
                "/segments", json={"segment": "bad_one", "name": "x", "rule": rule}
            )
            assert response.status_code == 422, response.text
            assert named in response.json()["error"], response.text
        for path, status in [
            ("/profiles?cursor=%%%", 400),
            ("/profiles?colour=red", 422),
            (f"/profiles/{uuid.uuid4()}", 404),
            ("/profiles/not-a-uuid", 422),
            ("/segments/nope/members", 404),
            ("/segment-migration?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 422),
            ("/segment-migration?from=yesterday&to=2026-01-01T00:00:00Z", 422),
            ("/satisfaction?by=shoe", 422),
            ("/value-satisfaction/best/customers", 404),
            ("/churn-warnings?limit=0", 422),
            ("/feed?after=-1", 422),
        ]:
            answer = await client.get(path)
            assert answer.status_code == status, (path, answer.text)
            assert answer.json()["error"]
        again = await client.post("/segments", json={"segment": "Bad Key", "name": "x", "rule": {}})
        assert again.status_code == 422
        missing = await client.put(
            "/segments/none_such", json={"name": "x", "rule": {"field": "region", "op": "exists",
                                                              "value": True}}
        )  # fmt: skip
        assert missing.status_code in (404, 422)
