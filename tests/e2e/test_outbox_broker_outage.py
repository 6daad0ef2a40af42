"""With the broker stopped, commands keep succeeding; when it returns, the backlog is
published and every event arrives on the topic."""

from __future__ import annotations

import asyncio

from contracts import parse_event
from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import read_topic


async def test_customers_registered_while_broker_down_all_arrive(
    infra: Infrastructure, customer_service: ServiceProcess
) -> None:
    await asyncio.to_thread(infra.broker.stop)

    async with customer_service.client(timeout=30) as client:
        ids = set()
        for i in range(200):
            response = await client.post(
                "/customers", json={"name": f"停机期间客户 {i}", "kind": "consumer"}
            )
            assert response.status_code == 201, response.text
            ids.add(response.json()["customer_id"])
        backlog = await client.get("/metrics")
        assert 'crm_outbox_backlog_events{topic="crm.customer.events.v1"}' in backlog.text

    # The embedded broker keeps topics in memory: it comes back empty, as a new cluster
    # would, and the operator's topic set-up runs again.
    await asyncio.to_thread(infra.broker.start)
    await infra.create_topics()

    records = await read_topic(infra.bootstrap_servers, Topic.CUSTOMER, expect=200, timeout=60)
    published = {str(parse_event(r.value).customer_id) for r in records}
    assert published == ids
    assert all(r.key.decode() == str(parse_event(r.value).customer_id) for r in records)
