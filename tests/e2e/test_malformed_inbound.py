"""Fifty-odd messages that do not fit, interleaved with valid ones on the inbound topics and
the customer topic: every bad one waits on the dead-letter topic with its original bytes
and a reason a person understands (once for each consumer that reads what is wrong in
it), every valid one is applied, and a corrected dead letter replayed (twice) is applied
once."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from contracts import customer as customer_contract
from contracts.envelope import payload_example
from contracts.inbound.interactions import CallLog, InboundMessage, SurveyAnswer
from contracts.inbound.purchases import PurchaseCompleted
from contracts.references import CustomerReference, customer_id_for_reference
from contracts.registry import ContractViolation
from contracts.topics import Topic
from crm.deadletters import publish as replay
from crm.deadletters import read_dead_letters
from local.launcher import ServiceProcess
from services.runtime.customer_replica import READER as REPLICA_READER
from tests.support.events import as_message, envelope
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import header, owner_signatures, publish_raw, read_topic
from tests.support.malformed import Bad, malformed_messages

NAMES = ["有效客户甲", "有效客户乙", "有效客户丙"]


def valid_messages(customers: list[uuid.UUID]) -> dict[str, list[tuple[bytes, bytes]]]:
    """Per topic, messages that fit: a registration, purchases, calls, messages, answers."""
    anonymous = ("customer_reference", "customer_hint")

    def for_customer(example: dict[str, Any], n: int, **changes: Any) -> tuple[bytes, bytes]:
        customer = customers[n % len(customers)]
        document = {k: v for k, v in example.items() if k not in anonymous}
        document.update(customer_id=str(customer), **changes)
        return str(customer).encode(), orjson.dumps(document)

    purchase, call = payload_example(PurchaseCompleted), payload_example(CallLog)
    message, answer = payload_example(InboundMessage), payload_example(SurveyAnswer)
    return {
        Topic.CUSTOMER: [
            as_message(
                envelope(c, 1, customer_contract.CustomerRegistered(name=name, kind="business"))
            )
            for c, name in zip(customers, NAMES, strict=True)
        ],
        Topic.PURCHASES_INBOUND: [for_customer(purchase, n, order_id=f"OK-{n}") for n in range(5)],
        Topic.CALL_LOGS_INBOUND: [for_customer(call, n, call_id=f"OK-C{n}") for n in range(3)],
        Topic.MESSAGES_INBOUND: [for_customer(message, n, message_id=f"OK-M{n}") for n in range(3)],
        Topic.SURVEY_ANSWERS_INBOUND: [
            for_customer(answer, n, answer_id=f"OK-S{n}") for n in range(3)
        ],
    }


def letters_expected(message: Bad) -> int:
    """The dead letters `message` makes: one from the consumer of an inbound topic; on the
    customer topic, one from each of the two replicas if their tolerant reader refuses it
    (`customer_replica.READER`), none if what is wrong is a field they do not read."""
    if message.topic != Topic.CUSTOMER:
        return 1
    try:
        REPLICA_READER.parse(message.value)
    except ContractViolation:
        return 2
    return 0


def named(name: str, count: int) -> Callable[[Any], bool]:
    """Checks a page of purchases: `count` of them, all showing the customer's name."""

    def check(body: Any) -> bool:
        items = body["items"]
        return len(items) == count and all(i["customer_name"] == name for i in items)

    return check


async def test_malformed_messages_are_dead_lettered_and_valid_ones_applied(
    infra: Infrastructure, sales_service: ServiceProcess, interaction_service: ServiceProcess
) -> None:
    servers = infra.bootstrap_servers
    bad = malformed_messages()
    assert len(bad) >= 50
    customers = [uuid.uuid4() for _ in NAMES]
    good = valid_messages(customers)
    bad_by_topic: dict[str, list[Bad]] = defaultdict(list)
    for message in bad:
        bad_by_topic[message.topic].append(message)
    assert set(bad_by_topic) == set(good)
    for topic, valid in good.items():
        # valid, bad, bad, valid, bad, bad, ...: in the order one system would send them
        waiting = list(valid)
        mixed: list[tuple[bytes | None, bytes | None]] = []
        for n, message in enumerate(bad_by_topic[topic]):
            if n % 2 == 0 and waiting:
                mixed.append(waiting.pop(0))
            mixed.append((message.key, message.value))
        mixed.extend(waiting)
        await publish_raw(servers, topic, mixed)

    # Every bad message is on the dead-letter topic, byte for byte, with its reason, once
    # per consumer that reads what is wrong in it. The customer topic has two consumers
    # here, the sales and interaction replicas, which read the same fields: two letters
    # for a message they cannot read, none for one wrong only where they do not read.
    expected = {message.key: letters_expected(message) for message in bad}
    assert 0 in expected.values(), "a registration wrong in a field no replica reads"
    dead = await read_topic(servers, Topic.DEAD_LETTER, expect=sum(expected.values()), timeout=60)
    letters: dict[bytes | None, list[Any]] = defaultdict(list)
    for record in dead:
        letters[record.key].append(record)
    assert set(letters) == {k for k, n in expected.items() if n}, "only the bad messages"
    for message in bad:
        found = letters[message.key]
        assert len(found) == expected[message.key], message.key
        for record in found:
            described = (
                f"{message.key!r}: {header(record, 'dlq.reason')} {header(record, 'dlq.detail')}"
            )
            assert (record.value or b"") == (message.value or b""), described
            assert header(record, "dlq.reason") == message.reason, described
            assert message.detail in (header(record, "dlq.detail") or ""), described
            assert header(record, "dlq.source_topic") == message.topic, described

    # Every valid message around them is applied.
    async with sales_service.client() as sales:
        for n, customer in enumerate(customers):
            path = f"/customers/{customer}/purchases"
            body = await wait_for(sales, path, named(NAMES[n], 2 if n < 2 else 1), 30)
            assert {i["order_id"] for i in body["items"]} == {
                f"OK-{k}" for k in (n, n + 3) if k < 5
            }
    async with interaction_service.client() as interaction:
        for customer in customers:
            timeline = await wait_for(
                interaction,
                f"/customers/{customer}/timeline",
                lambda b: len(b["items"]) == 3,
                timeout=30,
            )
            assert sorted(e["entry_type"] for e in timeline["items"]) == [
                "interaction",
                "interaction",
                "survey_answer",
            ]

    # A person corrects the purchase in an unknown currency and replays it, twice.
    options = {"bootstrap_servers": servers}
    (wrong_currency,) = [b for b in bad if b.value and b'"RMB"' in b.value]
    (letter,) = [
        d for d in await read_dead_letters(infra.database_url) if d.key == wrong_currency.key
    ]
    assert letter.reason == "unknown currency"
    assert letter.value is not None
    corrected = orjson.dumps({**orjson.loads(letter.value), "currency": "CNY"})
    shopper = customer_id_for_reference(
        CustomerReference(source="shop-cn", source_customer_id="U-1029")
    )
    sentinel = {
        **orjson.loads(good[Topic.PURCHASES_INBOUND][0][1]),
        "order_id": "OK-after-replays",
    }
    async with sales_service.client() as sales:
        for _ in range(2):
            await replay(options, Topic.PURCHASES_INBOUND, letter, corrected)
            await wait_for(sales, f"/customers/{shopper}/purchases", lambda b: len(b["items"]) >= 1)
        # Published behind the replays, under the same key: once it is recorded, so are they.
        await publish_raw(
            servers, Topic.PURCHASES_INBOUND, [(wrong_currency.key, orjson.dumps(sentinel))]
        )
        await wait_for(
            sales, f"/customers/{customers[0]}/purchases", lambda b: len(b["items"]) == 3
        )
        replayed = (await sales.get(f"/customers/{shopper}/purchases")).json()["items"]
    assert len(replayed) == 1
    assert (replayed[0]["order_id"], replayed[0]["currency"]) == ("SO-20261123-0042", "CNY")
    dead_after = await read_topic(servers, Topic.DEAD_LETTER, expect=len(dead), timeout=5)
    assert len(dead_after) == len(dead), "the corrected message is not dead-lettered again"


OVERSIZED_BYTES = 3 * 1_048_576
"""Three times what the services may produce (`kafka_max_message_bytes`)."""


async def test_an_oversized_message_is_dead_lettered_in_a_form_that_fits_and_ingestion_goes_on(
    infra: Infrastructure, sales_service: ServiceProcess, interaction_service: ServiceProcess
) -> None:
    """On every topic the services consume, a message larger than any they may send is
    followed by valid ones: each oversized one becomes a truncated dead letter that says
    how big it was and where it is, and every valid one behind it is applied."""
    servers = infra.bootstrap_servers
    customers = [uuid.uuid4() for _ in NAMES]
    good = valid_messages(customers)
    huge = {
        topic: (f"huge-{topic}".encode(), b'{"note": "' + b"x" * OVERSIZED_BYTES + b'"}')
        for topic in good
    }
    producer = AIOKafkaProducer(
        bootstrap_servers=servers, acks="all", max_request_size=OVERSIZED_BYTES * 2
    )
    await producer.start()
    try:
        for topic, (key, value) in huge.items():
            signature = owner_signatures(topic, [value])[0]
            await producer.send_and_wait(topic, value=value, key=key, headers=signature)
    finally:
        await producer.stop()
    for topic, valid in good.items():
        await publish_raw(servers, topic, valid)

    consumers_of = {topic: 2 if topic == Topic.CUSTOMER else 1 for topic in good}
    # three 3 MB messages through the embedded broker and back: in a full parallel run
    # the letters once took longer than read_topic's default 30 s to arrive
    dead = await read_topic(
        servers, Topic.DEAD_LETTER, expect=sum(consumers_of.values()), timeout=90
    )
    for topic, (_, value) in huge.items():
        letters = [r for r in dead if header(r, "dlq.source_topic") == topic]
        assert len(letters) == consumers_of[topic], topic
        for letter in letters:
            assert header(letter, "dlq.truncated") == "true", topic
            assert header(letter, "dlq.original_bytes") == str(len(value)), topic
            assert letter.value and value.startswith(letter.value), topic
            assert len(letter.value) <= 64 * 1024, topic
            assert header(letter, "dlq.source_offset") is not None, topic
            assert header(letter, "dlq.reason"), topic
    assert {r.key for r in dead} <= {key for key, _ in huge.values()}
    kept = await read_dead_letters(infra.database_url)
    assert sorted(d.source_topic for d in kept) == sorted(
        str(header(r, "dlq.source_topic")) for r in dead
    )
    for letter in kept:  # the services' tables keep the whole message
        assert letter.value == huge[letter.source_topic][1], letter.position

    async with sales_service.client() as sales:
        for n, customer in enumerate(customers):
            await wait_for(
                sales, f"/customers/{customer}/purchases", named(NAMES[n], 2 if n < 2 else 1), 30
            )
    async with interaction_service.client() as interaction:
        for customer in customers:
            await wait_for(
                interaction, f"/customers/{customer}/timeline", lambda b: len(b["items"]) == 3, 30
            )
