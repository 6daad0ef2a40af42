"""What does not fit a contract goes to the dead-letter topic with its original bytes and
a reason, while the valid messages around it are applied."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from contracts import customer as contract
from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.crm import crm, run_crm
from tests.support.events import as_message, envelope
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import header, publish_raw, read_topic
from tests.support.waiting import eventually


async def test_bad_messages_are_dead_lettered_and_good_ones_applied(
    infra: Infrastructure, customer_service: ServiceProcess
) -> None:
    before, after = uuid.uuid4(), uuid.uuid4()
    malformed = b'{"event_type": "customer.registered", "schema_ver'
    unknown_type = (
        envelope(uuid.uuid4(), 1, contract.CustomerTagged(tags=["x"]))
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

    async with customer_service.client() as client:
        for customer_id in (before, after):
            await wait_for(client, f"/customers/{customer_id}", lambda customer: True)
        metrics = (await client.get("/metrics")).text
    assert (
        'crm_dead_letters_total{reason="malformed JSON",topic="crm.customer.events.v1"} 1.0'
        in metrics
    )


async def test_a_fixed_dead_letter_is_replayed_and_applied_once(
    infra: Infrastructure, sales_service: ServiceProcess, tmp_path: Path
) -> None:
    customer_id = uuid.uuid4()
    good = {
        "source": "shop-cn",
        "order_id": "SO-FIX-1",
        "customer_id": str(customer_id),
        "amount": "88.00",
        "currency": "CNY",
        "occurred_at": "2026-11-20T10:00:00+00:00",
    }
    broken = json.dumps({**good, "currency": "RMB"}).encode()
    await publish_raw(infra.bootstrap_servers, Topic.PURCHASES_INBOUND, [(b"fix-me", broken)])
    await read_topic(infra.bootstrap_servers, Topic.DEAD_LETTER, expect=1)

    listed = [
        json.loads(line)
        for line in (await crm("dead-letters", "list", "--json", infra=infra)).splitlines()
    ]
    assert len(listed) == 1
    assert listed[0]["reason"] == "unknown currency"
    assert listed[0]["source_topic"] == Topic.PURCHASES_INBOUND
    position = listed[0]["position"]
    shown = await crm("dead-letters", "show", position, infra=infra)
    assert "RMB" in shown and "reason: unknown currency" in shown

    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(good))
    async with sales_service.client() as client:
        for _replay in range(2):  # the second replay is recognised as already recorded
            await crm("dead-letters", "replay", position, "--value-file", str(fixed), infra=infra)
            purchases = await wait_for(
                client, f"/customers/{customer_id}/purchases", lambda p: len(p["items"]) == 1
            )
            assert purchases["items"][0]["order_id"] == "SO-FIX-1"

        async def counted_as_duplicate() -> str:
            metrics = (await client.get("/metrics")).text
            assert 'event_type="purchase",outcome="duplicate"' in metrics
            return metrics

        await eventually(counted_as_duplicate, describe="the second replay counted as duplicate")
        purchases = (await client.get(f"/customers/{customer_id}/purchases")).json()
        assert len(purchases["items"]) == 1


async def test_a_corrected_value_is_not_replayed_onto_an_internal_topic(
    infra: Infrastructure, customer_service: ServiceProcess, tmp_path: Path
) -> None:
    """The internal topics carry only what their service signed: an operator may replay
    the original, never a value of their own."""
    good = envelope(uuid.uuid4(), 1, contract.CustomerRegistered(name="修复后", kind="consumer"))
    broken = good.model_dump_json().replace('"consumer"', '"martian"').encode()
    await publish_raw(infra.bootstrap_servers, Topic.CUSTOMER, [(b"fix-me", broken)])
    await read_topic(infra.bootstrap_servers, Topic.DEAD_LETTER, expect=1)
    (letter,) = [
        json.loads(line)
        for line in (await crm("dead-letters", "list", "--json", infra=infra)).splitlines()
    ]
    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(good.model_dump_json().encode())
    code, _, err = await run_crm(
        "dead-letters", "replay", letter["position"], "--value-file", str(fixed), infra=infra
    )
    assert code != 0
    assert "signed" in err and "customer service" in err
