"""After a known workload, /metrics tells the truth: counts match what happened and every
lag returns to zero."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from contracts.inbound.purchases import PurchaseCompleted
from contracts.topics import Topic
from local.launcher import ServiceProcess
from local.synthetic_history import history
from tests.support.customers import register_customer
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_json, publish_raw
from tests.support.metrics import Samples, scrape, total
from tests.support.waiting import eventually


async def test_counts_match_the_workload_and_lag_returns_to_zero(
    infra: Infrastructure, customer_service: ServiceProcess
) -> None:
    async with customer_service.client(timeout=10) as client:
        ids = []
        for i in range(10):
            response = await client.post(
                "/customers", json={"name": f"指标 {i}", "kind": "consumer"}
            )
            ids.append(response.json()["customer_id"])
        for customer_id in ids[:5]:
            await client.post(f"/customers/{customer_id}/tags", json={"tag": "metrics"})
        assert (await client.post("/customers", json={"kind": "consumer"})).status_code == 422
        await publish_raw(
            infra.bootstrap_servers, Topic.CUSTOMER, [(b"x", b"not json"), (b"y", b"[]")]
        )

        def applied_of(samples: Samples) -> float:
            return total(
                samples,
                "crm_events_consumed_total",
                consumer="customer_directory",
                outcome="applied",
            )

        # settled: everything consumed, and every lag and backlog back at zero (gauges
        # set when a consumer or the relay last looked)
        samples = await scrape_until(
            client,
            lambda s: (
                applied_of(s) == 15
                and total(s, "crm_consumer_lag_messages") == 0
                and total(s, "crm_dead_letters_total") == 2
                and total(s, "crm_projection_lag_seconds", projection="customer_directory") == 0
                and total(s, "crm_outbox_backlog_events", topic=Topic.CUSTOMER.value) == 0
            ),
        )
        applied = applied_of(samples)
        lag = total(samples, "crm_consumer_lag_messages")

    topic = Topic.CUSTOMER.value
    published = "crm_events_published_total"
    assert total(samples, published, topic=topic, event_type="customer.registered") == 10
    assert total(samples, published, topic=topic, event_type="customer.tagged") == 5
    assert applied == 15
    assert total(samples, "crm_dead_letters_total", topic=topic, reason="malformed JSON") == 1
    assert (
        total(samples, "crm_dead_letters_total", topic=topic, reason="not an event envelope") == 1
    )
    assert lag == 0
    assert total(samples, "crm_projection_lag_seconds", projection="customer_directory") == 0
    assert total(samples, "crm_outbox_backlog_events", topic=topic) == 0
    assert total(samples, "crm_outbox_relay_leader", topic=topic) == 1
    requests = "crm_http_requests_total"
    assert total(samples, requests, route="/customers", method="POST", status="201") == 10
    assert total(samples, requests, route="/customers", method="POST", status="422") == 1
    assert total(samples, requests, route="/customers/{customer_id}/tags", status="200") == 5
    latency = "crm_http_request_duration_seconds_count"
    assert total(samples, latency, route="/customers", method="POST") == 11
    assert total(samples, "crm_db_pool_connections", schema="customer", state="max") > 0


async def scrape_until(
    client: httpx.AsyncClient, settled: Callable[[Samples], bool], timeout: float = 30.0
) -> Samples:
    """The first scrape `settled` accepts."""

    async def settled_samples() -> Samples:
        samples = await scrape(client)
        assert settled(samples), samples
        return samples

    return await eventually(
        settled_samples, timeout=timeout, interval=0.1, describe="the metrics settled"
    )


async def test_sales_and_interaction_count_their_inbound_feeds_and_breaches(
    infra: Infrastructure, sales_service: ServiceProcess, interaction_service: ServiceProcess
) -> None:
    example: dict[str, Any] = PurchaseCompleted.model_json_schema()["examples"][0]
    customer = str(uuid.uuid4())
    purchases = [
        {**example, "order_id": f"M-{i}", "customer_id": customer, "customer_reference": None}
        for i in range(3)
    ]
    await publish_json(
        infra.bootstrap_servers,
        Topic.PURCHASES_INBOUND,
        [(customer, p) for p in purchases]
        + [(customer, purchases[0]), (customer, {**purchases[1], "amount": "-5"})],
    )
    purchase_recorded = {"topic": Topic.SALES.value, "event_type": "sales.purchase_recorded"}
    async with sales_service.client(timeout=10) as client:
        inbound = "sales_purchases_inbound"
        # settled: every message consumed and every purchase recorded published (a zero
        # backlog alone may be the relay's look before the purchases were stored)
        sales = await scrape_until(
            client,
            lambda s: (
                total(s, "crm_events_consumed_total", consumer=inbound) == 5
                and total(s, "crm_dead_letters_total") == 1
                and total(s, "crm_events_published_total", **purchase_recorded) >= 3
                and total(s, "crm_outbox_backlog_events") == 0
            ),
        )
    consumed = "crm_events_consumed_total"
    assert total(sales, consumed, consumer=inbound, outcome="applied") == 3
    assert total(sales, consumed, consumer=inbound, outcome="duplicate") == 1
    assert total(sales, consumed, consumer=inbound, outcome="dead_lettered") == 1
    assert total(sales, "crm_dead_letters_total", reason="negative amount") == 1
    assert total(sales, "crm_events_published_total", **purchase_recorded) == 3

    huaxin = await register_customer(infra.bootstrap_servers, "指标华信")
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    ticket = {
        "customer_id": str(huaxin),
        "kind": "complaint",
        "channel": "phone",
        "category": "delivery",
        "subject": "货物未送达",
    }
    async with interaction_service.client(timeout=10) as client:
        for severity, opened_at in (("critical", two_days_ago), ("low", None)):
            response = await client.post(
                "/tickets", json={**ticket, "severity": severity, "opened_at": opened_at}
            )
            assert response.status_code == 201, response.text
        open_tickets = "crm_tickets_open"
        interaction = await scrape_until(
            client, lambda s: total(s, open_tickets, severity="low", sla_state="on_track") == 1
        )
    assert total(interaction, open_tickets, severity="critical", sla_state="breached") == 1
    assert total(interaction, open_tickets, sla_state="breached") == 1
    assert total(interaction, open_tickets) == 2
    route = {"route": "/tickets", "method": "POST", "status": "201"}
    assert total(interaction, "crm_http_requests_total", **route) == 2


FOLD = "analytics_fold"


def folded(samples: Samples, topics: set[str], **labels: str) -> float:
    """Events the analytics fold consumed from `topics` (it also reads its own topic, for
    segment definitions and its conclusions)."""
    return sum(
        total(samples, "crm_events_consumed_total", consumer=FOLD, topic=topic, **labels)
        for topic in topics
    )


async def test_analytics_counts_what_it_folds_and_sizes_its_segments(
    infra: Infrastructure,
) -> None:
    events = history(30)
    messages = [event.message() for event in events]
    duplicate = messages[len(messages) // 2]
    raw = [(key, value) for _, key, value in messages]
    inputs = {str(topic) for topic, _, _ in messages}
    conclusions = f"{Topic.ANALYTICS}:conclusions"
    service = infra.service("analytics", CRM_GAUGE_REFRESH_SECONDS="0.2")
    await asyncio.to_thread(service.start)
    try:
        for topic in {topic for topic, _, _ in messages}:
            await publish_raw(
                infra.bootstrap_servers,
                topic,
                [(k, v) for (t, k, v) in messages if t == topic]
                + ([duplicate[1:]] if topic == duplicate[0] else []),
            )
        async with service.client(timeout=10) as client:
            samples = await scrape_until(
                client,
                lambda s: (
                    folded(s, inputs) == len(raw) + 1
                    and total(s, "crm_consumer_lag_messages") == 0
                    and total(s, "crm_analytics_segment_customers", segment="tier.top") > 0
                ),
                timeout=60,
            )

            # re-scoring moves tiers in the background: compare gauges and profiles once
            # both have settled (a gauge refresh after the last change)
            async def gauges_as_profiles() -> tuple[
                Samples, list[Any], dict[str, float], dict[str, int]
            ]:
                profiles = (await client.get("/profiles", params={"limit": 500})).json()
                buyers = [p for p in profiles["items"] if p["purchase_count"] > 0]
                samples = await scrape(client)
                tiers = {
                    tier: total(samples, "crm_analytics_segment_customers", segment=f"tier.{tier}")
                    for tier in ("top", "high", "medium", "low")
                }
                by_profiles = {
                    tier: sum(1 for p in buyers if p["value_tier"] == tier) for tier in tiers
                }
                assert tiers == by_profiles, (tiers, by_profiles)
                # re-scoring may draw conclusions meanwhile: their relay is back at zero too
                assert total(samples, "crm_outbox_backlog_events", topic=conclusions) == 0
                assert total(samples, "crm_projection_lag_seconds", projection=FOLD) == 0
                assert total(samples, "crm_consumer_lag_messages") == 0
                return samples, buyers, tiers, by_profiles

            samples, buyers, tiers, by_profiles = await eventually(
                gauges_as_profiles,
                interval=0.2,
                describe="the tier gauges counting what the profiles say",
            )
    finally:
        await asyncio.to_thread(service.stop)
    assert folded(samples, inputs, outcome="applied") == len(raw)
    assert folded(samples, inputs, outcome="duplicate") == 1
    assert total(samples, "crm_consumer_lag_messages") == 0
    assert total(samples, "crm_projection_lag_seconds", projection=FOLD) == 0
    assert sum(tiers.values()) == len(buyers) > 0
    assert tiers == by_profiles
    assert total(samples, "crm_outbox_backlog_events", topic=conclusions) == 0
