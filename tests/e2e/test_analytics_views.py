"""The analytics views a manager reads, on a running service fed through the broker: the
customer 360 with contact persons, classification, contracts still to be paid and recent
purchases; purchases and revenue by period; why a customer is not in a segment, an old
version of a rule, built-in segments that state their conditions, rules over the
customer's classification, a conflict that names the segment; and every amount of every
answer and of every published conclusion written as a money string."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from contracts import customer as c
from contracts import sales as s
from contracts.envelope import EventPayload
from contracts.registry import parse_event
from contracts.sales_values import Currency
from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.events import as_message, envelope
from tests.support.http import csv_rows, wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_raw, read_topic
from tests.support.money import amounts_in
from tests.support.routes import DEFINITIONS, app_of
from tests.support.waiting import eventually

CENTS = re.compile(r"^-?\d+\.\d{2}$")
"""An amount in CNY or USD: both have two minor units (`contracts.money.minor_units`)."""

NOW = datetime.now(UTC)


def _at(days_ago: int) -> datetime:
    return NOW - timedelta(days=days_ago)


def registration(customer: uuid.UUID) -> list[tuple[bytes, bytes]]:
    """A business customer with two contact persons (one later removed, one changed) and a
    classification that changes once."""
    zhang = c.ContactPerson(
        contact_id="c-1",
        name="张伟",
        title="采购经理",
        phones=["+86 138 0013 8000"],
        emails=["zhang.wei@example.cn"],
    )
    liu = c.ContactPerson(contact_id="c-2", name="刘洋", title="财务主管")
    events = [
        envelope(
            customer,
            1,
            c.CustomerRegistered(
                name="上海华信贸易有限公司",
                kind=c.CustomerKind.BUSINESS,
                region="华东",
                contacts=[zhang, liu],
                classification=c.Classification(loyalty_stage=c.LoyaltyStage.NEW),
                channel_preferences=c.ChannelPreferences(preferred=["phone"], opted_out=[]),
            ),
            occurred_at=_at(400),
            recorded_at=_at(400),
        ),
        envelope(
            customer,
            2,
            c.ContactPersonChanged(contact=zhang.model_copy(update={"title": "采购总监"})),
            occurred_at=_at(300),
            recorded_at=_at(300),
        ),
        envelope(
            customer,
            3,
            c.ContactPersonRemoved(contact_id="c-2"),
            occurred_at=_at(200),
            recorded_at=_at(200),
        ),
        envelope(
            customer,
            4,
            c.CustomerClassified(
                classification=c.Classification(
                    importance_tier=c.ImportanceTier.VIP,
                    loyalty_stage=c.LoyaltyStage.LOYAL,
                    value_behaviour=c.ValueBehaviour.LIGHTHOUSE,
                    relationship_level=c.RelationshipLevel.PARTNER,
                )
            ),
            occurred_at=_at(100),
            recorded_at=_at(100),
        ),
        envelope(
            customer,
            5,
            c.ChannelPreferencesChanged(
                channel_preferences=c.ChannelPreferences(preferred=["wechat"], opted_out=["sms"])
            ),
            occurred_at=_at(50),
            recorded_at=_at(50),
        ),
    ]
    return [as_message(e) for e in events]


def _sale(
    customer: uuid.UUID, payload: EventPayload, aggregate: uuid.UUID, version: int, at: datetime
) -> tuple[bytes, bytes]:
    event = envelope(customer, version, payload, event_id=uuid.uuid4(), aggregate_id=aggregate,
                     occurred_at=at, recorded_at=at)  # fmt: skip
    return as_message(event)


def bought(customer: uuid.UUID, amount: str, currency: str, at: datetime) -> tuple[bytes, bytes]:
    payload = s.PurchaseRecorded(purchase_id=uuid.uuid4(), source="shop-cn",
                                 order_id=uuid.uuid4().hex, amount=Decimal(amount),
                                 currency=Currency(currency))  # fmt: skip
    return _sale(customer, payload, uuid.uuid4(), 1, at)


def signed(
    customer: uuid.UUID, opportunity: uuid.UUID, contract: str, amount: str, on: date
) -> tuple[bytes, bytes]:
    payload = s.ContractSigned(opportunity_id=opportunity, contract_id=contract,
                               amount=Decimal(amount), currency=Currency.CNY,
                               signed_on=on)  # fmt: skip
    return _sale(customer, payload, opportunity, 7, datetime.combine(on, time(), tzinfo=UTC))


def paid(
    customer: uuid.UUID, opportunity: uuid.UUID, contract: str, amount: str, outstanding: str
) -> tuple[bytes, bytes]:
    payload = s.PaymentReceived(opportunity_id=opportunity, contract_id=contract,
                                payment_id=uuid.uuid4().hex, amount=Decimal(amount),
                                currency=Currency.CNY, received_on=_at(5).date(),
                                outstanding_after=Decimal(outstanding))  # fmt: skip
    return _sale(customer, payload, opportunity, 8, _at(5))


async def a_customer_with_history(infra: Infrastructure) -> uuid.UUID:
    """The registered customer above; purchases in CNY and USD this month and two and
    three months ago; a contract half paid and one paid in full."""
    customer = uuid.uuid4()
    await publish_raw(infra.bootstrap_servers, Topic.CUSTOMER, registration(customer))
    open_deal, closed_deal = uuid.uuid4(), uuid.uuid4()
    sales = [
        bought(customer, "120000", "CNY", _at(1)),
        bought(customer, "99.9", "USD", _at(2)),
        bought(customer, "300.5", "CNY", _at(65)),
        bought(customer, "1000", "USD", _at(95)),
        signed(customer, open_deal, "HT-2026-001", "50000", _at(30).date()),
        paid(customer, open_deal, "HT-2026-001", "20000", "30000"),
        signed(customer, closed_deal, "HT-2026-002", "8000", _at(60).date()),
        paid(customer, closed_deal, "HT-2026-002", "8000", "0"),
    ]
    await publish_raw(infra.bootstrap_servers, Topic.SALES, sales)
    return customer


@pytest.fixture
def analytics(analytics_service: ServiceProcess) -> ServiceProcess:
    return analytics_service


async def test_the_360_shows_contacts_classification_contracts_to_be_paid_and_purchases(
    infra: Infrastructure, analytics: ServiceProcess
) -> None:
    customer = await a_customer_with_history(infra)
    async with analytics.client(timeout=30) as client:
        view = await wait_for(
            client,
            f"/customers/{customer}/360",
            lambda v: (
                v["profile"]["purchase_count"] == 6
                and len(v.get("recent_purchases", [])) == 6
                and v.get("contracts_outstanding")
                and v["contracts_outstanding"][0]["paid"] != "0.00"
            ),
        )
        assert [(p["contact_id"], p["name"], p["title"]) for p in view["contact_persons"]] == [
            ("c-1", "张伟", "采购总监")
        ]
        assert view["contact_persons"][0]["phones"] == ["+86 138 0013 8000"]
        assert view["consent"] == {"preferred": ["wechat"], "opted_out": ["sms"]}
        assert view["classification"] == {
            "importance_tier": "vip",
            "loyalty_stage": "loyal",
            "value_behaviour": "lighthouse",
            "relationship_level": "partner",
        }
        [owing] = view["contracts_outstanding"]
        assert (owing["contract_id"], owing["amount"], owing["paid"], owing["outstanding"]) == (
            "HT-2026-001",
            "50000.00",
            "20000.00",
            "30000.00",
        )
        assert owing["currency"] == "CNY"
        latest = view["recent_purchases"][0]
        assert (latest["amount"], latest["currency"], latest["kind"]) == (
            "120000.00",
            "CNY",
            "purchase",
        )
        in_usd = view["recent_purchases"][1]
        assert (in_usd["amount"], in_usd["currency"], in_usd["reporting_amount"]) == (
            "99.90",
            "USD",
            "719.28",
        )


async def test_purchases_and_revenue_by_period_per_currency_in_json_and_csv(
    infra: Infrastructure, analytics: ServiceProcess
) -> None:
    customer = await a_customer_with_history(infra)
    async with analytics.client(timeout=30) as client:
        await wait_for(client, f"/profiles/{customer}", lambda p: p["purchase_count"] == 6)
        since = (NOW - timedelta(days=120)).isoformat()
        trend = await wait_for(
            client, "/overview/trend", lambda body: body["items"], period="month", since=since
        )
        rows = {(r["period"], r["currency"]): r for r in trend["items"]}
        this_month = f"{_at(1):%Y-%m}"
        usd_month = f"{_at(2):%Y-%m}"
        assert rows[(usd_month, "USD")]["purchases"] >= 1
        total_usd = sum(Decimal(r["revenue"]) for r in trend["items"] if r["currency"] == "USD")
        assert total_usd == Decimal("1099.90")
        total_cny = sum(Decimal(r["revenue"]) for r in trend["items"] if r["currency"] == "CNY")
        assert total_cny == Decimal("178300.50")
        assert sum(r["purchases"] for r in trend["items"]) == 6
        assert rows[(this_month, "CNY")]["revenue"].endswith(".00")
        assert all(
            r["period"] == f"{date.fromisoformat(r['starts_on']):%Y-%m}" for r in trend["items"]
        )
        only_usd = (
            await client.get(
                "/overview/trend", params={"period": "week", "currency": "USD", "since": since}
            )
        ).json()["items"]
        assert {r["currency"] for r in only_usd} == {"USD"}
        assert sum(r["purchases"] for r in only_usd) == 2
        assert all(re.fullmatch(r"\d{4}-W\d{2}", r["period"]) for r in only_usd)
        daily = (
            await client.get(
                "/overview/trend",
                params={"period": "day", "since": since, "until": NOW.isoformat()},
            )
        ).json()["items"]
        assert sum(r["purchases"] for r in daily) == 6
        csv = await client.get(
            "/overview/trend", params={"period": "month", "since": since, "format": "csv"}
        )
        assert sum(int(r["purchases"]) for r in csv_rows(csv)) == 6
        for bad in ({"period": "fortnight"}, {"since": "yesterday"}, {"currency": "XXX"}):
            answer = await client.get("/overview/trend", params=bad)
            assert answer.status_code == 422, (bad, answer.text)


async def test_segments_explain_themselves(
    infra: Infrastructure, analytics: ServiceProcess
) -> None:
    customer = await a_customer_with_history(infra)
    async with analytics.client(timeout=30) as client:
        await wait_for(client, f"/profiles/{customer}", lambda p: p["purchase_count"] == 6)
        # built-in segments state their conditions
        champions = (await client.get("/segments/rfm.champions")).json()
        assert "recency_score" in champions["explanation"], champions
        assert "README" not in str(champions) and "docs/" not in str(champions)
        assert isinstance(champions["rule"], dict)
        at_risk = (await client.get("/segments/lifecycle.at_risk")).json()
        assert "days_since_last_purchase" in at_risk["explanation"], at_risk

        # rules over the customer's classification, checked
        rule = {
            "all": [
                {"field": "loyalty_stage", "op": "eq", "value": "loyal"},
                {"field": "relationship_level", "op": "in", "value": ["proactive", "partner"]},
                {"field": "value_behaviour", "op": "eq", "value": "lighthouse"},
            ]
        }
        made = await client.post(
            "/segments", json={"segment": "loyal_partners", "name": "忠诚伙伴", "rule": rule}
        )
        assert made.status_code == 201, made.text
        await wait_for(
            client,
            "/segments/loyal_partners/members",
            lambda body: [m["customer_id"] for m in body["items"]] == [str(customer)],
        )
        bad = await client.post(
            "/segments",
            json={
                "segment": "bad_stage",
                "name": "x",
                "rule": {"field": "loyalty_stage", "op": "eq", "value": "devoted"},
            },
        )
        assert bad.status_code == 422 and "devoted" in bad.json()["error"], bad.text
        assert "loyal" in bad.json()["error"]
        language = (await client.get("/segments/rule-language")).json()["fields"]
        for name in ("loyalty_stage", "value_behaviour", "relationship_level"):
            assert name in language, name

        # a defined segment the customer is not in: the failed condition, value against rule
        big = {
            "all": [
                {"field": "region", "op": "eq", "value": "华东"},
                {"field": "total_spend", "op": "gt", "value": 10000000},
            ]
        }
        made = await client.post(
            "/segments", json={"segment": "whales", "name": "超级大客户", "rule": big}
        )
        assert made.status_code == 201, made.text
        why = await wait_for(
            client,
            f"/customers/{customer}/segments/whales/why",
            lambda w: w["definition"]["version"] == 1,
        )
        assert why["member"] is False
        [failed] = why["failed_conditions"]
        assert (failed["field"], failed["op"], failed["value"]) == ("total_spend", "gt", 10000000)
        assert CENTS.fullmatch(failed["actual"]), failed
        assert failed["actual"] in failed["explanation"] and "10000000" in failed["explanation"]
        builtin_why = await client.get(f"/customers/{customer}/segments/lifecycle.lapsed/why")
        lapsed = builtin_why.json()
        assert lapsed["member"] is False
        assert [f["field"] for f in lapsed["failed_conditions"]] == ["days_since_last_purchase"]

        # a new version; the old one can still be read
        changed = await client.put(
            "/segments/whales",
            headers={"If-Match": '"1"'},
            json={"name": "超级大客户", "rule": {"field": "total_spend", "op": "gt", "value": 1}},
        )
        assert changed.status_code == 200, changed.text
        await wait_for(client, "/segments/whales", lambda d: d["version"] == 2)
        old = (await client.get("/segments/whales/versions/1")).json()
        assert (old["version"], old["rule"]) == (1, big), old
        assert (await client.get("/segments/whales/versions/2")).json()["rule"]["value"] == 1
        versions = (await client.get("/segments/whales/versions")).json()["items"]
        assert [v["version"] for v in versions] == [1, 2]
        assert (await client.get("/segments/whales/versions/3")).status_code == 404
        assert (await client.get("/segments/rfm.lost/versions/1")).status_code == 200

        # a stale version answers 409 naming the segment, not its internal id
        stale = await client.put(
            "/segments/whales",
            headers={"If-Match": '"1"'},
            json={"name": "超级大客户", "rule": big},
        )
        assert stale.status_code == 409, stale.text
        message = stale.json()["error"]
        assert "whales" in message and "超级大客户" in message, message
        assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", message), message


QUERIES = {
    "/segment-migration": {"from": (NOW - timedelta(days=1)).isoformat(), "to": NOW.isoformat()}
}
"""Query parameters a route needs."""


async def test_every_amount_answered_and_published_is_a_money_string(
    infra: Infrastructure, analytics: ServiceProcess
) -> None:
    """Every GET route of the service (but the live feed), answered for a customer with
    purchases in CNY and USD: each value the OpenAPI document types as an amount, and
    every amount among recorded values, has two decimals; so have the amounts of the
    conclusions published on the analytics topic."""
    customer = await a_customer_with_history(infra)
    document = app_of(DEFINITIONS["analytics"]).openapi()
    definitions = document["components"]["schemas"]
    fill = {
        "customer_id": str(customer),
        "segment": "tier.top",
        "quadrant": "win_back",
        "version": "1",
        "model": "bg_nbd",
    }
    async with analytics.client(timeout=30) as client:
        await wait_for(client, f"/profiles/{customer}", lambda p: p["value_tier"] != "none")
        rule = {"field": "total_spend", "op": "gt", "value": 1000.5}
        made = await client.post(
            "/segments", json={"segment": "spenders", "name": "x", "rule": rule}
        )
        assert made.status_code == 201, made.text
        await wait_for(client, "/segments/spenders/members", lambda body: len(body["items"]) == 1)

        async def published() -> list[Any]:
            records = await read_topic(infra.bootstrap_servers, Topic.ANALYTICS, expect=3)
            events: list[Any] = [parse_event(r.value) for r in records]
            values = [
                e.payload.values
                for e in events
                if e.event_type == "analytics.segment_changed" and e.payload.segment == "spenders"
            ]
            assert values and all(_is_cents(v["total_spend"]) for v in values), values
            return values

        await eventually(published, timeout=20, describe="the published values")
        checked = 0
        for path, item in document["paths"].items():
            operation = item.get("get")
            if operation is None or path == "/feed" or "analytics" not in operation["tags"]:
                continue
            url = re.sub(r"\{(\w+)\}", lambda m: fill[m.group(1)], path)
            answer = await client.get(url, params=QUERIES.get(path, {}))
            assert answer.status_code == 200, (url, answer.text)
            schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
            for where, amount in amounts_in(answer.json(), schema, definitions, url):
                assert _is_cents(amount), (where, amount)
                checked += 1
            for where, amount in _recorded_amounts(answer.json(), url):
                assert _is_cents(amount), (where, amount)
                checked += 1
        assert checked > 20


def _is_cents(amount: Any) -> bool:
    return isinstance(amount, str) and CENTS.fullmatch(amount) is not None


RECORDED = ("decided_by", "left_because", "entered_values", "left_values", "values",
            "current_values")  # fmt: skip
"""The fields holding recorded profile values (objects without a schema of their own)."""


def _recorded_amounts(value: Any, path: str) -> list[tuple[str, Any]]:
    """The amounts among recorded values."""
    found: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for name, item in value.items():
            if name in RECORDED and isinstance(item, dict):
                found += [
                    (f"{path}.{name}.{field}", item[field])
                    for field in ("total_spend", "average_spend")
                    if item.get(field) is not None
                ]
            found += _recorded_amounts(item, f"{path}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _recorded_amounts(item, f"{path}[{index}]")
    return found
