"""A history published again (after a broker lost its topics, every relay publishes its
event store from the start) is skipped by the consumers that handled it, unread: by the
relay position each message carries, not by parsing it and asking the database."""

from __future__ import annotations

import asyncpg
from prometheus_client import REGISTRY

from contracts.topics import Topic
from services.runtime.messaging.outbox import republish_from_the_start
from tests.support.auth import bearer
from tests.support.infrastructure import Infrastructure
from tests.support.routes import DEFINITIONS, app_of
from tests.support.serving import served_settings, serving
from tests.support.waiting import eventually

ADMIN = bearer("administrator", "li.na")
CUSTOMERS = 60


def consumed(outcome: str, event_type: str | None = None) -> float:
    """Customer events the directory's consumer handled with `outcome` (of `event_type`)."""
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            labels = sample.labels
            if (
                sample.name == "crm_events_consumed_total"
                and labels.get("consumer") == "customer_directory"
                and labels.get("topic") == Topic.CUSTOMER
                and labels.get("outcome") == outcome
                and event_type in (None, labels.get("event_type"))
            ):
                total += sample.value
    return total


async def test_a_history_published_again_is_skipped_unread(infra: Infrastructure) -> None:
    settings = served_settings("customer", infra)
    async with serving(app_of(DEFINITIONS["customer"], settings)) as client:
        names = [f"重放客户 {n}" for n in range(CUSTOMERS)]
        for name in names:
            answer = await client.post(
                "/customers", json={"name": name, "kind": "consumer"}, headers=ADMIN
            )
            assert answer.status_code == 201, answer.text

        async def listed() -> list[dict[str, object]]:
            page = await client.get("/customers", params={"limit": 500}, headers=ADMIN)
            items: list[dict[str, object]] = page.json()["items"]
            assert len(items) == CUSTOMERS
            return items

        before = await eventually(listed, describe="every customer in the directory")
    applied, skipped = consumed("applied"), consumed("duplicate", "republished")

    connection = await asyncpg.connect(infra.database_url)
    try:
        await republish_from_the_start(connection)
        kept = await connection.fetch(
            "SELECT partition, position FROM customer.consumer_positions "
            "WHERE consumer = 'customer_directory' AND source = $1",
            Topic.CUSTOMER,
        )
    finally:
        await connection.close()
    assert kept and max(row["position"] for row in kept) == CUSTOMERS

    async with serving(app_of(DEFINITIONS["customer"], settings)) as client:

        def all_skipped() -> float:
            done = consumed("duplicate", "republished") - skipped
            assert done == CUSTOMERS
            return done

        await eventually(all_skipped, describe="the history skipped unread")
        assert consumed("applied") == applied, "nothing applied a second time"
        after = await client.get("/customers", params={"limit": 500}, headers=ADMIN)
        assert after.json()["items"] == before
