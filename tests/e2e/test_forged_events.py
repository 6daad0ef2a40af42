"""Only the owning service publishes on its topic: a forged event of every internal event
type, published by a plain Kafka client without the owner's key (or signed with another
service's key, or carrying a signature of other bytes), is dead-lettered by every
consumer of its topic, and no view changes."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from contracts import Topic, events_by_topic
from contracts.asyncapi import load_document
from contracts.signing import HEADER, OWNERS, Signer
from local.launcher import ServiceProcess, session_signing_key
from tests.e2e.test_asyncapi_examples import examples_by_action
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import header, publish_raw, read_topic
from tests.support.waiting import eventually

LAG = re.compile(r'crm_consumer_lag_messages\{consumer="([^"]+)",partition="\d+",topic="([^"]+)"\}')


async def consumers_by_topic(services: list[ServiceProcess]) -> dict[str, set[str]]:
    """Which consumers read each internal topic, as the running services report them
    (once every service's consumers have their partitions)."""
    found: dict[str, set[str]] = defaultdict(set)
    for service in services:
        async with service.client() as client:
            for consumer, topic in LAG.findall((await client.get("/metrics")).text):
                found[topic].add(consumer)
    assert len(found[Topic.CUSTOMER]) == 4, found  # the directory, two replicas, analytics
    assert all(found[topic] for topic in (Topic.SALES, Topic.INTERACTION)), found
    return found


def forged(example: dict[str, Any], customer_id: uuid.UUID, key: str) -> bytes:
    """The example event, aimed at `customer_id`, as a forger would send it."""
    event = {**example, "event_id": str(uuid.uuid4()), "customer_id": str(customer_id)}
    if event.get("aggregate_id") == example.get("customer_id"):
        event["aggregate_id"] = str(customer_id)
    event["correlation_id"] = key
    return orjson.dumps(event)


async def views(
    customer: ServiceProcess, analytics: ServiceProcess, sales: ServiceProcess, customer_id: str
) -> list[Any]:
    async with customer.client() as c, analytics.client() as a, sales.client() as s:
        return [
            (await c.get(f"/customers/{customer_id}")).json(),
            (await a.get(f"/customers/{customer_id}/360")).json(),
            (await s.get(f"/customers/{customer_id}/purchases")).json(),
            (await s.get("/opportunities")).json(),
        ]


async def test_forged_events_of_every_type_are_dead_lettered_by_every_consumer(
    infra: Infrastructure,
    customer_service: ServiceProcess,
    sales_service: ServiceProcess,
    interaction_service: ServiceProcess,
    analytics_service: ServiceProcess,
) -> None:
    services = [customer_service, sales_service, interaction_service, analytics_service]
    async with customer_service.client() as client:
        registered = await client.post(
            "/customers", json={"name": "真实客户", "kind": "consumer", "region": "华东"}
        )
        customer_id = registered.json()["customer_id"]
    async with analytics_service.client() as client:
        await wait_for(client, f"/profiles/{customer_id}", lambda p: True)
    before = await views(customer_service, analytics_service, sales_service, customer_id)
    readers = await eventually(
        lambda: consumers_by_topic(services),
        describe="every consumer reporting its topics",
    )

    examples = examples_by_action(load_document(), "send")
    sent: dict[str, str] = {}  # key -> topic
    wrong_signer = Signer.from_base64(session_signing_key("sales"))
    for topic in events_by_topic():
        if topic not in readers:
            continue  # nobody in the CRM reads it (other systems may)
        for index, example in enumerate(examples[topic]):
            key = f"forged-{topic}-{index}"
            value = forged(example, uuid.UUID(customer_id), key)
            await publish_raw(infra.bootstrap_servers, topic, [(key.encode(), value)], signed=False)
            sent[key] = topic
        if OWNERS[topic] != "sales":  # signed, but by a service that does not own the topic
            key = f"wrong-signer-{topic}"
            value = forged(examples[topic][0], uuid.UUID(customer_id), key)
            signature = wrong_signer.sign(topic, [value])[0]
            await _send(infra, topic, key, value, [(HEADER, signature)])
            sent[key] = topic
    # a signature the owner made for other bytes
    owner = Signer.from_base64(session_signing_key("customer"))
    erased = next(e for e in examples[Topic.CUSTOMER] if e["event_type"] == "customer.erased")
    value = forged(erased, uuid.UUID(customer_id), "tampered")
    signature = owner.sign(Topic.CUSTOMER, [value.replace(b"DSR", b"XYZ")])[0]
    await _send(infra, Topic.CUSTOMER, "tampered", value, [(HEADER, signature)])
    sent["tampered"] = Topic.CUSTOMER

    expected = {(key, consumer) for key, topic in sent.items() for consumer in readers[topic]}
    dead = await read_topic(infra.bootstrap_servers, Topic.DEAD_LETTER, expect=len(expected))
    seen = {(r.key.decode(), header(r, "dlq.consumer")) for r in dead}
    assert expected <= seen, (sorted(expected - seen)[:10], sorted(seen - expected)[:10], len(dead))
    reasons = {header(r, "dlq.reason") for r in dead}
    assert reasons == {"unsigned", "bad signature"}
    assert {header(r, "dlq.reason") for r in dead if r.key.decode().startswith("forged-")} == {
        "unsigned"
    }
    assert len(sent) > len(events_by_topic())  # every type of every topic a consumer reads

    assert await views(customer_service, analytics_service, sales_service, customer_id) == before


async def _send(
    infra: Infrastructure, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key.encode(), headers=headers)
    finally:
        await producer.stop()
