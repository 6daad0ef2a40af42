"""Inbound consumers run as FastStream batch subscribers (`subscribers.py`), on FastStream's
in-memory test broker: a batch is acknowledged only once handled, what does not parse is
dead-lettered with its bytes and reason while the rest goes on, database outages are
waited out on the same batch, a defect stops acknowledging and ends the consumer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import pytest
from aiokafka.structs import ConsumerRecord
from faststream.kafka import TestKafkaBroker
from faststream.kafka.message import KafkaAckableMessage
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from contracts.registry import ContractViolation
from services.runtime.messaging.consumer import Parsed
from services.runtime.messaging.deadletter import DeadLetterPublisher, Rejection
from services.runtime.messaging.subscribers import (
    SubscribedConsumer,
    Subscription,
    broker_security,
    declare,
    service_broker,
)
from services.runtime.metrics import EVENTS_CONSUMED
from services.runtime.settings import ServiceSettings

TOPIC = "crm.inbound.test-purchases.v1"


class Purchase(BaseModel):
    order_id: str


class Handler:
    """Records the order ids of each batch; `failures` are raised first, one per call."""

    name = "test_purchases_inbound"
    group_id = "crm.test.purchases-inbound"
    topics: Sequence[str] = (TOPIC,)

    def __init__(self, journal: list[str], failures: Sequence[BaseException] = ()) -> None:
        self.journal = journal
        self.failures = list(failures)

    def parse(self, record: ConsumerRecord[Any, Any]) -> Purchase:
        try:
            return Purchase.model_validate_json(record.value)
        except ValueError:
            raise ContractViolation("malformed JSON", "not a purchase") from None

    def describe(self, value: Purchase) -> str:
        return "purchase"

    async def prepare(self) -> None:
        return None

    def on_caught_up(self) -> None:
        return None

    async def handle(self, batch: Sequence[Parsed[Purchase]]) -> list[Rejection]:
        if self.failures:
            raise self.failures.pop(0)
        self.journal.append("handled " + ",".join(item.value.order_id for item in batch))
        return []


class DeadLetters:
    def __init__(self) -> None:
        self.rejections: list[Rejection] = []

    async def publish(self, rejections: list[Rejection], consumer: str) -> None:
        self.rejections += rejections


SUBSCRIPTION = Subscription(
    name=Handler.name,
    group_id=Handler.group_id,
    topics=(TOPIC,),
    message=Purchase,
    description="Purchases for the test.",
    handler=lambda runtime: Handler([]),
)


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What happened, in order: batches handled and acknowledgements (offset commits)."""
    entries: list[str] = []
    acknowledge = KafkaAckableMessage.ack

    async def ack(self: KafkaAckableMessage) -> None:
        entries.append(f"ack {len(self.raw_message)}")
        await acknowledge(self)

    monkeypatch.setattr(KafkaAckableMessage, "ack", ack)
    return entries


async def running(
    handler: Handler, registry: CollectorRegistry | None = None
) -> tuple[SubscribedConsumer[Any], DeadLetters, TestKafkaBroker[Any]]:
    broker = service_broker(
        "test", ServiceSettings(), registry=registry or CollectorRegistry(auto_describe=True)
    )
    dead_letters = DeadLetters()
    consumer: SubscribedConsumer[Any] = SubscribedConsumer(
        subscription=SUBSCRIPTION,
        handler=handler,
        dead_letters=cast(DeadLetterPublisher, dead_letters),
        group_suffix=".0123abcd",
    )
    consumer.subscriber = declare(broker, SUBSCRIPTION, consumer.consume, group_suffix=".0123abcd")
    return consumer, dead_letters, TestKafkaBroker(broker)


def purchase(order_id: str) -> bytes:
    return json.dumps({"order_id": order_id}).encode()


@pytest.fixture
async def no_wait(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Retries after a transient error without sleeping."""
    sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda delay, *a: sleep(0))
    yield


async def test_a_batch_is_acknowledged_only_after_it_was_handled(journal: list[str]) -> None:
    consumer, _, test_broker = await running(Handler(journal))
    async with test_broker as broker:
        await broker.publish_batch(purchase("A-1"), purchase("A-2"), topic=TOPIC)
        await broker.publish_batch(purchase("A-3"), topic=TOPIC)
    assert journal == ["handled A-1,A-2", "ack 2", "handled A-3", "ack 1"]
    assert consumer.subscriber is not None
    assert consumer.subscriber.group_id == "crm.test.purchases-inbound.0123abcd"


async def test_what_does_not_parse_is_dead_lettered_with_its_bytes_and_the_rest_goes_on(
    journal: list[str],
) -> None:
    _, dead_letters, test_broker = await running(Handler(journal))
    counted = EVENTS_CONSUMED.labels(
        consumer=Handler.name, topic=TOPIC, event_type="unparsed", outcome="dead_lettered"
    )
    before = counted._value.get()
    async with test_broker as broker:
        await broker.publish_batch(b'{"order_id": ', purchase("B-1"), topic=TOPIC)
        await broker.publish_batch(purchase("B-2"), topic=TOPIC)
    (rejection,) = dead_letters.rejections
    assert rejection.record.value == b'{"order_id": '
    assert (rejection.reason, rejection.detail) == ("malformed JSON", "not a purchase")
    assert journal == ["handled B-1", "ack 2", "handled B-2", "ack 1"]
    assert counted._value.get() == before + 1


async def test_a_binary_header_reaches_the_handler_untouched(journal: list[str]) -> None:
    """Signatures travel in binary headers, which FastStream's own parser cannot decode."""
    consumer, dead_letters, test_broker = await running(Handler(journal))
    signed = ConsumerRecord(
        TOPIC, 0, 7, 0, 0, None, purchase("H-1"), None, 0, 0, [("crm-signature", b"\xff\x00")]
    )
    async with test_broker:
        assert consumer.subscriber is not None
        await consumer.subscriber.process_message((signed,))
    assert journal == ["handled H-1", "ack 1"]
    assert not dead_letters.rejections


async def test_a_database_outage_is_waited_out_on_the_same_batch(
    journal: list[str], no_wait: None
) -> None:
    outage = [ConnectionRefusedError("database down"), ConnectionResetError("again")]
    consumer, _, test_broker = await running(Handler(journal, outage))
    async with test_broker as broker:
        await broker.publish_batch(purchase("C-1"), purchase("C-2"), topic=TOPIC)
    assert journal == ["handled C-1,C-2", "ack 2"]
    assert consumer.last_error is None


async def test_a_defect_acknowledges_nothing_more_and_ends_the_consumer(
    journal: list[str],
) -> None:
    consumer, _, test_broker = await running(Handler(journal, [KeyError("a bug")]))
    async with test_broker as broker:
        with pytest.raises(KeyError):
            await broker.publish_batch(purchase("D-1"), topic=TOPIC)
        with pytest.raises(KeyError):
            await asyncio.wait_for(consumer.run(), timeout=5)
    assert journal == []


async def test_faststream_counts_the_batches_in_the_services_registry(journal: list[str]) -> None:
    registry = CollectorRegistry()
    _, _, test_broker = await running(Handler(journal), registry)
    async with test_broker as broker:
        await broker.publish_batch(purchase("E-1"), purchase("E-2"), topic=TOPIC)
    received = registry.get_sample_value(
        "faststream_received_messages_total",
        {"app_name": "test", "broker": "kafka", "handler": TOPIC},
    )
    assert received == 2


def test_the_kafka_connection_settings_carry_over() -> None:
    assert broker_security(ServiceSettings()) is None
    secured = broker_security(
        ServiceSettings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="crm-sales",
            kafka_sasl_password="secret",
        )
    )
    assert secured is not None
    assert (secured.username, secured.password, secured.use_ssl) == (  # type: ignore[attr-defined]
        "crm-sales",
        "secret",
        False,
    )
    assert type(secured).__name__ == "SASLScram512"
