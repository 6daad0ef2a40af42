"""How another system follows the CRM's topics: a small consumer, to copy.

- Key = customer id: one customer's events arrive in order, on one partition.
- Delivery is at least once: the same event can come again, after a crash before the
  offsets were committed, or published a second time at another offset. The consumer
  keeps the ids of the events it applied, in the same transaction as what it does with
  them, and skips repeats.
- Personal fields (here the name) arrive sealed with the customer's key; the consumer
  opens them with `contracts.personal.open_value` and the key the CRM hands to
  integration accounts (`GET /customers/{id}/key`). Once a customer is erased there is
  no key, and the values read as `[erased]`.
- It needs only the `contracts` package (`pip install ./contracts`) and a Kafka client.

The test drives the real customer service, then makes the consumer see every event
again both ways, and checks that each event was handled exactly once.
"""

from __future__ import annotations

import base64
import sqlite3
from collections import Counter
from collections.abc import Callable
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer

import contracts
from contracts.customer import CustomerRegistered, CustomerTagged
from contracts.personal import open_value
from local.launcher import ServiceProcess
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_raw, read_topic


class CustomerMirror:
    """Keeps a table of customer names and tags from `crm.customer.events.v1`."""

    def __init__(
        self, database: sqlite3.Connection, key_of: Callable[[UUID], bytes | None]
    ) -> None:
        self.db = database
        self.key_of = key_of
        self.db.executescript(
            """CREATE TABLE IF NOT EXISTS applied_events (event_id TEXT PRIMARY KEY);
               CREATE TABLE IF NOT EXISTS customers (
                   customer_id TEXT PRIMARY KEY, name TEXT, tags TEXT, version INTEGER)"""
        )
        self.handled: Counter[str] = Counter()  # for the test: how often each id was applied
        self.repeats = 0

    def handle(self, raw: bytes) -> None:
        try:
            event = contracts.parse_event(raw)
        except contracts.ContractViolation as rejected:
            if rejected.reason in ("unknown event type", "unsupported schema version"):
                return  # newer than this consumer: skip (or park) it, do not stop
            raise
        with self.db:  # one transaction: the event id and its effect, or neither
            seen = self.db.execute(
                "INSERT INTO applied_events VALUES (?) ON CONFLICT DO NOTHING",
                (str(event.event_id),),
            )
            if seen.rowcount == 0:
                self.repeats += 1
                return
            self.apply(event)
        self.handled[str(event.event_id)] += 1

    def apply(self, event: contracts.EventEnvelope[Any]) -> None:
        customer, payload = str(event.customer_id), event.payload
        row = self.db.execute(
            "SELECT version FROM customers WHERE customer_id = ?", (customer,)
        ).fetchone()
        # One partition per customer: versions arrive in order, none skipped.
        assert (row[0] if row else 0) + 1 == event.aggregate_version
        if isinstance(payload, CustomerRegistered):
            self.db.execute(
                "INSERT INTO customers VALUES (?, ?, ?, ?)",
                (
                    customer,
                    open_value(payload.name, self.key_of(event.customer_id), event.customer_id),
                    ",".join(payload.tags),
                    event.aggregate_version,
                ),
            )
        else:
            if isinstance(payload, CustomerTagged):  # version 1 messages arrive as version 2
                (tags,) = self.db.execute(
                    "SELECT tags FROM customers WHERE customer_id = ?", (customer,)
                ).fetchone()
                self.db.execute(
                    "UPDATE customers SET tags = ? WHERE customer_id = ?",
                    (",".join(filter(None, [tags, *payload.tags])), customer),
                )
            self.db.execute(
                "UPDATE customers SET version = ? WHERE customer_id = ?",
                (event.aggregate_version, customer),
            )

    async def follow(self, bootstrap_servers: str, *, messages: int, commit: bool = True) -> None:
        """Handle `messages` messages, committing the offsets of each batch after handling it
        (or never, to act out a crash before the commit)."""
        consumer = AIOKafkaConsumer(
            contracts.Topic.CUSTOMER,
            bootstrap_servers=bootstrap_servers,
            group_id="other-system.customer-mirror",
            enable_auto_commit=False,  # commit only what was handled
            auto_offset_reset="earliest",
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )
        await consumer.start()
        try:
            while messages > 0:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        self.handle(record.value)
                        messages -= 1
                if commit:
                    await consumer.commit()
        finally:
            await consumer.stop()


async def test_another_system_follows_the_customer_topic_once_per_event(
    infra: Infrastructure, customer_service: ServiceProcess, tmp_path: Any
) -> None:
    async with customer_service.client() as crm:
        ids = []
        for name in ("上海华信贸易有限公司", "广州恒达物流有限公司"):
            created = await crm.post("/customers", json={"name": name, "kind": "business"})
            ids.append(created.json()["customer_id"])
        for tag in ("key-account", "华东", "renewal-2027"):
            for customer_id in ids:
                answer = await crm.post(f"/customers/{customer_id}/tags", json={"tag": tag})
                assert answer.status_code == 200, answer.text
    events = 2 + 3 * 2
    keys: dict[UUID, bytes | None] = {}
    async with customer_service.client(role="integration") as integration:
        for customer_id in ids:
            answer = await integration.get(f"/customers/{customer_id}/key")
            assert answer.status_code == 200, answer.text
            keys[UUID(customer_id)] = base64.b64decode(answer.json()["key"])

    mirror = CustomerMirror(sqlite3.connect(tmp_path / "mirror.db"), keys.get)
    # 1. A crash before committing: on restart, everything is delivered again.
    await mirror.follow(infra.bootstrap_servers, messages=events, commit=False)
    assert mirror.repeats == 0
    await mirror.follow(infra.bootstrap_servers, messages=events)
    assert mirror.repeats == events

    # 2. The same events published again, at new offsets (a relay failing over does this).
    published = await read_topic(infra.bootstrap_servers, contracts.Topic.CUSTOMER, expect=events)
    assert len(published) == events
    await publish_raw(
        infra.bootstrap_servers, contracts.Topic.CUSTOMER, [(r.key, r.value) for r in published]
    )
    await mirror.follow(infra.bootstrap_servers, messages=events)
    assert mirror.repeats == 2 * events

    # Each event applied exactly once, in order per customer.
    assert len(mirror.handled) == events and set(mirror.handled.values()) == {1}
    rows = mirror.db.execute("SELECT name, tags, version FROM customers ORDER BY name").fetchall()
    assert sorted(rows) == sorted(
        [
            ("上海华信贸易有限公司", "key-account,华东,renewal-2027", 4),
            ("广州恒达物流有限公司", "key-account,华东,renewal-2027", 4),
        ]
    )
