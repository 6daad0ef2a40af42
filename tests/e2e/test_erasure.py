"""The right to be forgotten, on the real infrastructure with all four services.

A customer with a profile, a contact person, an address, a won and paid opportunity with
activities, interactions, a ticket, a survey answer and feedback is erased. Then every
table of the database (every projection of every service, the event stores, the key
table) and every message of every topic are searched for any of the customer's personal
values: none is found, while the sales totals are what they were and another customer's
data is untouched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from contracts.personal import ERASED
from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.customers import when_customer_known
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import read_to_the_end

TODAY = datetime.now(UTC).date()


def personal_values(marker: str) -> dict[str, str]:
    """Values only this customer's personal data holds (ASCII and Chinese)."""
    return {
        "name": f"隐私测试有限公司-{marker}",
        "contact": f"Zhang Secret {marker}",
        "phone": f"+86 139 {int(marker, 16) % 10**8:08d}",
        "email": f"erase.me.{marker}@example.cn",
        "street": f"秘密路{marker}号",
        "city": f"Secret City {marker}",
        "description": f"Deal notes {marker}",
        "people": f"Buyer Wang {marker}",
        "activity": f"Demo for {marker}",
        "subject": f"Call subject {marker}",
        "notes": f"call notes {marker} 个人信息",
        "ticket": f"Complaint {marker}",
        "comment": f"survey comment {marker}",
        "feedback": f"feedback text {marker}",
    }


async def register(customers: httpx.AsyncClient, values: dict[str, str]) -> str:
    registered = await customers.post(
        "/customers",
        json={
            "name": values["name"],
            "kind": "business",
            "region": "华东",
            "contacts": [
                {
                    "name": values["contact"],
                    "title": "采购经理",
                    "phones": [values["phone"]],
                    "emails": [values["email"]],
                }
            ],
            "addresses": [
                {
                    "label": "office",
                    "line1": values["street"],
                    "city": values["city"],
                    "country": "CN",
                }
            ],
        },
    )
    assert registered.status_code == 201, registered.text
    customer_id: str = registered.json()["customer_id"]
    return customer_id


async def sell(sales: httpx.AsyncClient, customer_id: str, values: dict[str, str]) -> None:
    body = {
        "customer_id": customer_id,
        "description": values["description"],
        "products": [{"product": "企业版年度许可", "quantity": 10, "unit_price": "1000.00"}],
        "currency": "CNY",
        "expected_close_date": str(TODAY + timedelta(days=30)),
        "region": "华东",
        "owner": "李娜",
    }
    opened = await when_customer_known(sales, "/opportunities", body)
    assert opened.status_code == 201, opened.text
    path = f"/opportunities/{opened.json()['opportunity_id']}"
    activity = await sales.post(
        f"{path}/activities",
        json={
            "kind": "demo",
            "date": str(TODAY),
            "people": [values["people"]],
            "description": values["activity"],
            "predicted_result": "agrees",
        },
    )
    assert activity.status_code == 201, activity.text
    for stage in ("qualified", "proposal", "negotiation", "won"):
        assert (await sales.post(f"{path}/stage", json={"stage": stage})).status_code == 200
    signed = await sales.post(
        f"{path}/contract",
        json={"amount": "10000.00", "currency": "CNY", "signed_on": str(TODAY)},
    )
    assert signed.status_code == 201, signed.text
    paid = await sales.post(
        f"{path}/contract/payments",
        json={"amount": "4000.00", "currency": "CNY", "received_on": str(TODAY)},
    )
    assert paid.status_code == 201, paid.text


async def interact(client: httpx.AsyncClient, customer_id: str, values: dict[str, str]) -> None:
    started = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    logged = await when_customer_known(
        client,
        "/interactions",
        {
            "customer_id": customer_id,
            "channel": "phone",
            "direction": "inbound",
            "started_at": started,
            "participants": [{"role": "contact", "name": values["contact"]}],
            "subject": values["subject"],
            "notes": values["notes"],
        },
    )
    assert logged.status_code == 201, logged.text
    ticket = await client.post(
        "/tickets",
        json={
            "customer_id": customer_id,
            "kind": "complaint",
            "channel": "phone",
            "category": "delivery",
            "severity": "high",
            "subject": values["ticket"],
        },
    )
    assert ticket.status_code == 201, ticket.text
    answered = await client.post(
        "/survey-answers",
        json={
            "customer_id": customer_id,
            "survey": "post-ticket",
            "csat": 2,
            "nps": 3,
            "comment": values["comment"],
        },
    )
    assert answered.status_code == 201, answered.text
    feedback = await client.post(
        "/feedback",
        json={"customer_id": customer_id, "kind": "suggestion", "text": values["feedback"]},
    )
    assert feedback.status_code == 201, feedback.text


def mentions(body: Any, values: Iterable[str]) -> bool:
    text = json.dumps(body, ensure_ascii=False)
    return any(value in text for value in values)


def forms(values: Iterable[str]) -> list[bytes]:
    """Each value as UTF-8 and as JSON with ASCII escapes: how it could be stored."""
    found = []
    for value in values:
        found.append(value.encode())
        found.append(json.dumps(value).strip('"').encode())
    return found


async def database_rows(database_url: str) -> list[tuple[str, bytes]]:
    """Every row of every table of every schema, as (table, text of the row)."""
    connection = await asyncpg.connect(database_url)
    try:
        tables = await connection.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        rows = []
        for table in tables:
            name = f'"{table["table_schema"]}"."{table["table_name"]}"'
            for record in await connection.fetch(f"SELECT * FROM {name}"):
                text = b" ".join(
                    bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                    for v in record.values()
                )
                rows.append((name, text))
        return rows
    finally:
        await connection.close()


def holding(rows: list[tuple[str, bytes]], values: Iterable[str]) -> set[str]:
    patterns = forms(values)
    return {table for table, text in rows if any(p in text for p in patterns)}


async def topic_messages(bootstrap_servers: str) -> list[bytes]:
    """Every message (key, headers and value) of every topic, from offset 0 to the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in Topic
            for p in consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord[Any, Any]] = []
        await read_to_the_end(consumer, await consumer.end_offsets(partitions), records)
        return [
            b" ".join(
                [r.key or b"", b" ".join(bytes(v) for _, v in r.headers or ()), r.value or b""]
            )
            for r in records
        ]
    finally:
        await consumer.stop()


def headers(record: ConsumerRecord[Any, Any]) -> bytes:
    return b" ".join(bytes(value) for _, value in record.headers or ())


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


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
        ids = {}
        for values in (forgotten, kept):
            customer_id = await register(customers, values)
            ids[values["name"]] = customer_id
            await sell(sales, customer_id, values)
            await interact(interactions, customer_id, values)
        customer_id = ids[forgotten["name"]]
        kept_id = ids[kept["name"]]
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
