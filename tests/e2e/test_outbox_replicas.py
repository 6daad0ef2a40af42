"""With two replicas of a service, one relays at a time; when it is killed, the other
takes over and publishes what was stored meanwhile, in order per customer."""

from __future__ import annotations

import asyncio
import re

import httpx

from contracts import parse_event
from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import read_topic
from tests.support.waiting import eventually

LEADER = re.compile(r'^crm_outbox_relay_leader\{topic="crm\.customer\.events\.v1"\} (\S+)$', re.M)


async def is_leader(client: httpx.AsyncClient, replica: ServiceProcess) -> bool:
    match = LEADER.search((await client.get(f"{replica.url}/metrics")).text)
    return match is not None and float(match.group(1)) == 1.0


async def test_one_replica_relays_and_the_other_takes_over(infra: Infrastructure) -> None:
    replicas = [infra.service("customer") for _ in range(2)]
    for replica in replicas:
        await asyncio.to_thread(replica.start)
    try:
        async with httpx.AsyncClient(timeout=10, headers=replicas[0].headers()) as client:
            leaders = [await is_leader(client, r) for r in replicas]
            assert sorted(leaders) == [False, True]
            leader, standby = (
                (replicas[0], replicas[1]) if leaders[0] else (replicas[1], replicas[0])
            )

            first = await client.post(
                f"{standby.url}/customers", json={"name": "甲", "kind": "consumer"}
            )
            customer_id = first.json()["customer_id"]
            await asyncio.to_thread(leader.kill)

            # Commands keep working on the survivor while it takes over the relay.
            for i in range(5):
                response = await client.post(
                    f"{standby.url}/customers/{customer_id}/tags", json={"tag": f"after-{i}"}
                )
                assert response.status_code == 200
            await eventually(
                lambda: is_leader(client, standby), describe="the survivor leading the relay"
            )
            assert await is_leader(client, standby)

        records = await read_topic(infra.bootstrap_servers, Topic.CUSTOMER, expect=6)
        versions = [parse_event(r.value).aggregate_version or 0 for r in records]
        assert sorted(set(versions)) == [1, 2, 3, 4, 5, 6]
        # At-least-once: a repeat is possible after a takeover, never a reordering.
        assert versions == sorted(versions)
    finally:
        for replica in replicas:
            await asyncio.to_thread(replica.stop)
