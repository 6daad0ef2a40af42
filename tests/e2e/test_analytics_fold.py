"""The analytics fold against an independent batch computation.

A generated history (thousands of customers with purchases, won contracts, interactions,
surveys and complaints) is published through the real broker, shuffled and with
duplicates, to two running analytics services, which share the topics' partitions (one
of them killed after a batch's transaction and before its offsets are committed, and
replaced).
Every profile, RFM score and segment must equal what a plain computation over the same
events gives; that computation (`local.independent_analytics`) is written separately
from the service's fold.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts.registry import parse_event
from local.independent_analytics import RULE, expected, mismatches
from local.synthetic_history import Event, history
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import owner_signatures
from tests.support.waiting import eventually

CUSTOMERS = 2500


async def publish_shuffled(bootstrap_servers: str, events: list[Event], seed: int = 3) -> int:
    """Every event once, 5% of them twice, in shuffled order."""
    rng = random.Random(seed)
    messages = [e.message() for e in events]
    messages += rng.sample(messages, len(messages) // 20)
    rng.shuffle(messages)
    signatures = [owner_signatures(t, [v])[0] for t, _, v in messages]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=10)
    await producer.start()
    try:
        pending = [
            await producer.send(t, value=v, key=k, headers=h)
            for (t, k, v), h in zip(messages, signatures, strict=True)
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return len(messages)


async def test_profiles_scores_and_segments_equal_an_independent_computation(
    infra: Infrastructure,
) -> None:
    now = datetime.now(UTC)
    events = history(CUSTOMERS, now=now, corrected=0.3)
    for event in events[:300]:  # the generated documents fit the contracts
        parse_event(event.message()[2])
    # two fold processes, each folding the customers of its partitions; one of them dies
    # after its first batch is committed and before its offsets are, and is replaced
    service = infra.service("analytics", CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS="0.5")
    doomed = infra.service(
        "analytics",
        CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS="0.5",
        CRM_FAILPOINTS="consumer_after_handle_before_commit",
    )
    other = infra.service("analytics", CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS="0.5")
    await asyncio.gather(asyncio.to_thread(service.start), asyncio.to_thread(doomed.start))
    try:
        async with service.client(timeout=30) as client:
            defined = await client.post(
                "/segments",
                json={"segment": "big_happy", "name": "大客户且满意", "rule": RULE},
            )
            assert defined.status_code == 201, defined.text
            published = await publish_shuffled(infra.bootstrap_servers, events)
            assert published > len(events)
            assert await asyncio.to_thread(doomed.wait_exit, 120) == 137
            await asyncio.to_thread(other.start)
            checked_at = datetime.now(UTC)
            want = expected(events, checked_at)
            connection = await asyncpg.connect(infra.database_url)
            try:

                async def folded_as_computed() -> bool:
                    problems = await mismatches(connection, want, checked_at)
                    assert not problems, f"{len(problems)} differences, e.g. {problems[:10]}"
                    return True

                await eventually(
                    folded_as_computed,
                    timeout=120,
                    interval=1.0,
                    describe="every profile as the independent computation has it",
                )
                # every current membership entered exactly once, and was announced
                duplicates = await connection.fetchval(
                    """SELECT count(*) FROM (SELECT customer_id, segment FROM
                       analytics.segment_history WHERE left_at IS NULL
                       GROUP BY 1, 2 HAVING count(*) > 1) d"""
                )
                assert duplicates == 0
            finally:
                await connection.close()
            sizes = {s["segment"]: s for s in (await client.get("/segments")).json()["items"]}
            assert sizes["big_happy"]["customers"] == sum(
                1 for w in want.values() if "big_happy" in w["segments"]
            )
            buyers = sum(1 for w in want.values() if w["purchase_count"])
            assert sum(v["customers"] for k, v in sizes.items() if k.startswith("rfm.")) == buyers
            matrix = (await client.get("/value-satisfaction")).json()
            assert sum(q["customers"] for q in matrix["quadrants"]) > 0
    finally:
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in (service, doomed, other)))
