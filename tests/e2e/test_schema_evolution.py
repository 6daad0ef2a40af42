"""A version-1 customer.tagged published by an old producer is still applied, beside
version 2, by the running service; and one stored in the event store before version 2
existed is read, published as version 2 and folded."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from contracts import customer as contract
from contracts import parse_event
from contracts.topics import Topic
from local.launcher import ServiceProcess
from services.customer.application import CustomerApplication
from services.customer.domain import Customer
from services.runtime.storage.eventstore import open_event_store
from tests.support.events import as_message, envelope
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_raw, read_topic


async def test_version_1_and_version_2_messages_are_both_applied(
    infra: Infrastructure, customer_service: ServiceProcess
) -> None:
    customer_id = uuid.uuid4()
    await publish_raw(
        infra.bootstrap_servers,
        Topic.CUSTOMER,
        [
            as_message(
                envelope(customer_id, 1, contract.CustomerRegistered(name="老", kind="consumer"))
            ),
            as_message(envelope(customer_id, 2, contract.CustomerTaggedV1(tag="from-v1"))),
            as_message(envelope(customer_id, 3, contract.CustomerTagged(tags=["from-v2", "also"]))),
        ],
    )
    async with customer_service.client() as client:
        customer = await wait_for(client, f"/customers/{customer_id}", lambda c: c["version"] == 3)
    assert customer["tags"] == ["from-v1", "from-v2", "also"]


async def test_a_version_1_event_stored_long_ago_is_read_published_and_folded(
    infra: Infrastructure, customer_service: ServiceProcess
) -> None:
    """An event stored in PostgreSQL before version 2 existed: the service loads it, lists
    it in the history, and publishes it as version 2, which the directory folds."""
    app = await open_event_store(CustomerApplication, infra.database_url, "customer")
    try:
        customer = await asyncio.to_thread(app.register, name="陈静", kind="consumer")
        old_state = app.mapper.transcoder.encode(
            {"tag": "老客户", "timestamp": datetime(2025, 1, 1, tzinfo=UTC)}
        )
        stored = StoredEvent(
            originator_id=customer.id,
            originator_version=2,
            topic=get_topic(Customer.Tagged),
            state=old_state,
        )
        await asyncio.to_thread(app.recorder.insert_events, [stored])
    finally:
        app.close()
    published = await read_topic(infra.bootstrap_servers, Topic.CUSTOMER, expect=2)
    tagged = parse_event(published[-1].value)
    assert (tagged.event_type, tagged.schema_version) == ("customer.tagged", 2)
    assert isinstance(tagged.payload, contract.CustomerTagged)
    assert tagged.payload.tags == ["老客户"]
    async with customer_service.client() as client:
        folded = await wait_for(client, f"/customers/{customer.id}", lambda c: c["version"] == 2)
        assert folded["tags"] == ["老客户"]
        history = (await client.get(f"/customers/{customer.id}/history")).json()
    entries = history if isinstance(history, list) else history["items"]
    assert [e["change"] for e in entries if e["event_type"] == "customer.tagged"] == [
        {"tags": ["老客户"]}
    ]
