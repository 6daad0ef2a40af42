"""What does not fit a contract goes to the dead-letter topic with its original bytes and
a reason, while the valid messages around it are applied."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from contracts import customer as contract
from contracts.topics import Topic
from services.runtime.processes import ServiceProcess
from tests.conftest import Infrastructure
from tests.support.events import as_message, envelope
from tests.support.kafka import header, publish_raw, read_topic

pytestmark = pytest.mark.integration


async def test_bad_messages_are_dead_lettered_and_good_ones_applied(
    infra: Infrastructure, customer_service: ServiceProcess
) -> None:
    before, after = uuid.uuid4(), uuid.uuid4()
    malformed = b'{"event_type": "customer.registered", "schema_ver'
    unknown_type = (
        envelope(uuid.uuid4(), 1, contract.CustomerTagged(tag="x"))
        .model_dump_json()
        .replace("customer.tagged", "customer.teleported")
        .encode()
    )
    invalid = (
        envelope(uuid.uuid4(), 1, contract.CustomerRegistered(name="x", kind="consumer"))
        .model_dump_json()
        .replace('"consumer"', '"martian"')
        .encode()
    )
    await publish_raw(
        infra.bootstrap_servers,
        Topic.CUSTOMER,
        [
            as_message(
                envelope(before, 1, contract.CustomerRegistered(name="之前", kind="consumer"))
            ),
            (b"k1", malformed),
            (b"k2", unknown_type),
            (b"k3", invalid),
            as_message(
                envelope(after, 1, contract.CustomerRegistered(name="之后", kind="business"))
            ),
        ],
    )

    dead = await read_topic(infra.bootstrap_servers, Topic.DEAD_LETTER, expect=3)
    by_key = {r.key: r for r in dead}
    assert by_key[b"k1"].value == malformed
    assert header(by_key[b"k1"], "dlq.reason") == "malformed JSON"
    assert by_key[b"k2"].value == unknown_type
    assert header(by_key[b"k2"], "dlq.reason") == "unknown event type"
    assert "customer.teleported" in (header(by_key[b"k2"], "dlq.detail") or "")
    assert header(by_key[b"k3"], "dlq.reason") == "invalid event"
    assert "payload.kind" in (header(by_key[b"k3"], "dlq.detail") or "")
    assert all(header(r, "dlq.source_topic") == Topic.CUSTOMER for r in dead)

    async with httpx.AsyncClient(base_url=customer_service.url) as client:
        for _ in range(50):
            found = [(await client.get(f"/customers/{i}")).status_code for i in (before, after)]
            if found == [200, 200]:
                break
            await asyncio.sleep(0.1)
        assert found == [200, 200]
        metrics = (await client.get("/metrics")).text
    assert (
        'crm_dead_letters_total{reason="malformed JSON",topic="crm.customer.events.v1"} 1.0'
        in metrics
    )
