"""A customer's personal data, made and looked for: values only one customer holds, the
requests that spread them over every service, and searches of every table and topic."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from contracts.topics import INBOUND_TOPICS, Topic
from tests.support.customers import when_customer_known
from tests.support.kafka import publish_json, read_to_the_end

TODAY = datetime.now(UTC).date()
OWN_TOPICS = tuple(t for t in Topic if t not in INBOUND_TOPICS)
"""Topics the CRM writes; inbound topics hold what other systems publish, in plain text,
for their retention."""


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
        # another system's id for them, phone-shaped as call centres make them
        "reference": f"86-139{int(marker, 16) % 10**8:08d}",
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
    referenced = await customers.post(
        f"/customers/{customer_id}/references",
        json={"source": "callcentre", "source_customer_id": values["reference"]},
    )
    assert referenced.status_code == 200, referenced.text
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


async def topic_messages(bootstrap_servers: str, topics: Iterable[str] = OWN_TOPICS) -> list[bytes]:
    """Every message (key, headers and value) of `topics` (by default every topic the CRM
    writes), from offset 0 to the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
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


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def buy_by_reference(bootstrap_servers: str, values: dict[str, str], order_id: str) -> None:
    """A shop's purchase naming the customer by the call centre's id for them."""
    await publish_json(
        bootstrap_servers,
        Topic.PURCHASES_INBOUND,
        [
            (
                values["reference"],
                {
                    "source": "shop-cn",
                    "order_id": order_id,
                    "customer_reference": {
                        "source": "callcentre",
                        "source_customer_id": values["reference"],
                    },
                    "amount": "99.00",
                    "currency": "CNY",
                    "items": [
                        {"sku": "SKU-1", "name": "配件", "quantity": 1, "unit_price": "99.00"}
                    ],
                    "channel": "online",
                    "occurred_at": datetime.now(UTC).isoformat(),
                },
            )
        ],
    )


async def spread(
    clients: dict[str, httpx.AsyncClient], bootstrap_servers: str, values: dict[str, str]
) -> str:
    """A customer holding `values`, registered and given a reference, with a won and paid
    deal, interactions, a ticket, a survey answer, feedback and a purchase a shop
    published naming them by reference: their personal data in every service."""
    customer_id = await register(clients["customer"], values)
    await sell(clients["sales"], customer_id, values)
    await interact(clients["interaction"], customer_id, values)
    await buy_by_reference(bootstrap_servers, values, f"SO-{customer_id}")
    return customer_id
