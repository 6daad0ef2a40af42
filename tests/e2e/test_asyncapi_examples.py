"""Every example of the AsyncAPI document the services serve, published by a plain Kafka
client as another system would, is applied; every outbound example is a valid event."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from contracts import Topic, events_by_topic, parse_event
from contracts.asyncapi import load_document
from contracts.references import CustomerReference, customer_id_for_reference
from local.launcher import ServiceProcess
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure


def examples_by_action(document: dict[str, Any], action: str) -> dict[str, list[dict[str, Any]]]:
    """Channel address → example payloads, for the operations with `action`."""
    messages = document["components"]["messages"]
    found: dict[str, list[dict[str, Any]]] = {}
    for operation in document["operations"].values():
        if operation["action"] != action:
            continue
        channel = document["channels"][operation["channel"]["$ref"].rsplit("/", 1)[-1]]
        for reference in channel["messages"].values():
            message = messages[reference["$ref"].rsplit("/", 1)[-1]]
            found.setdefault(channel["address"], []).extend(
                example["payload"] for example in message["examples"]
            )
    return found


def customer_of(example: dict[str, Any]) -> uuid.UUID:
    if example.get("customer_id"):
        return uuid.UUID(example["customer_id"])
    return customer_id_for_reference(CustomerReference(**example["customer_reference"]))


async def test_every_documented_example_is_applied(
    infra: Infrastructure, sales_service: ServiceProcess, interaction_service: ServiceProcess
) -> None:
    async with sales_service.client() as sales:
        served = (await sales.get("/asyncapi.json")).json()
    async with interaction_service.client() as interaction:
        assert (await interaction.get("/asyncapi.json")).json() == served
    assert served == load_document()

    # Outbound: each example is an event the contracts read.
    outbound = examples_by_action(served, "send")
    assert set(outbound) == {*events_by_topic(), Topic.DEAD_LETTER}
    for address, payloads in outbound.items():
        if address == Topic.DEAD_LETTER:
            continue
        for payload in payloads:
            assert parse_event(orjson.dumps(payload)).event_type.startswith(address.split(".")[1])

    # Inbound: publish each example as it stands in the document, with a plain producer.
    inbound = examples_by_action(served, "receive")
    assert set(inbound) == {
        Topic.PURCHASES_INBOUND,
        Topic.CALL_LOGS_INBOUND,
        Topic.MESSAGES_INBOUND,
        Topic.SURVEY_ANSWERS_INBOUND,
    }, "a new inbound topic: show here that its example is applied"
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for address, payloads in inbound.items():
            for payload in payloads:
                key = str(customer_of(payload)).encode()
                await producer.send_and_wait(address, value=orjson.dumps(payload), key=key)
    finally:
        await producer.stop()

    (purchase,) = inbound[Topic.PURCHASES_INBOUND]
    (call,) = inbound[Topic.CALL_LOGS_INBOUND]
    (message,) = inbound[Topic.MESSAGES_INBOUND]
    (answer,) = inbound[Topic.SURVEY_ANSWERS_INBOUND]
    async with sales_service.client() as sales:
        recorded = await wait_for(
            sales,
            f"/customers/{customer_of(purchase)}/purchases",
            lambda body: len(body["items"]) == 1,
            timeout=30,
        )
    assert recorded["items"][0]["order_id"] == purchase["order_id"]
    assert recorded["items"][0]["amount"] in ("1299.00", "1299.0000", 1299.0)

    async with interaction_service.client() as interaction:
        caller = customer_of(call)
        assert customer_of(answer) == caller  # the example answer is from the same caller
        timeline = await wait_for(
            interaction,
            f"/customers/{caller}/timeline",
            lambda body: len(body["items"]) == 2,
            timeout=30,
        )
        assert sorted(e["entry_type"] for e in timeline["items"]) == [
            "interaction",
            "survey_answer",
        ]
        assert call["subject"] in [e["title"] for e in timeline["items"]]
        written = await wait_for(
            interaction,
            f"/customers/{customer_of(message)}/timeline",
            lambda body: len(body["items"]) == 1,
            timeout=30,
        )
        assert written["items"][0]["title"] == message["subject"]
