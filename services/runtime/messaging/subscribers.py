"""Inbound consumers as FastStream batch subscribers: the one place where a `BatchHandler`
of another system's topic (or of another service's, like the customer service's
first-seen customers) becomes a subscriber of the service's FastStream `KafkaBroker`.

A service declares what it consumes beyond its projections as `Subscription`s; the
runtime declares each one on the broker (`declare`), binds it to its handler
(`SubscribedConsumer`) and starts the broker (`InboundBroker`). The same declarations
give the AsyncAPI document (`crm.asyncapi`), so that the document shows the subscribers
that run.

Every guarantee of `BatchConsumer` holds for a subscriber, per batch FastStream hands it
(at most `consumer_max_records` messages, read with `getmany`):
- signatures are checked, sealed values opened, messages parsed; what does not fit goes
  to the dead-letter topic with its original bytes and reason, and the subscriber goes
  on (`BatchConsumer.handle_batch`, the very code the projections use);
- the handler records the batch in one PostgreSQL transaction; database outages
  (`services.runtime.transient`) are waited out on the same batch, inside the handler:
  a FastStream message that is not acknowledged is not delivered again until the
  consumer restarts, so the batch is never given up;
- only then are its offsets committed (`AckPolicy.MANUAL`, no auto-commit: `ack()`
  commits what the batch consumed); a crash before re-delivers it, and the handler
  recognises what it recorded (by the sender's ids, or by relay positions);
- any other error is a defect: the subscriber acknowledges nothing from then on and its
  task ends, which ends the process (`services.runtime.supervision`), as before;
- lag, stalls, batch durations and outcomes are measured as for every consumer
  (`services.runtime.metrics`), and readiness and liveness judge them alike; FastStream's
  Prometheus middleware adds its own `faststream_*` metrics beside them.

FastStream's parser decodes every header as UTF-8 and fails on the binary signature
header, so the subscribers parse with `_batch_message`, which keeps the raw records.

The projections stay on `BatchConsumer`'s own aiokafka loop: they need what a FastStream
subscriber does not give, partition by partition. A projection reading its topics in
event time (`alignment`) holds messages back per partition, pauses and resumes partitions
and commits, per partition, only up to what it handed on, not everything fetched; a
projection recognising what it applied by relay positions stored in PostgreSQL
(`positions.recognise`) relies on committing exactly the offsets of what it applied.
FastStream's batch `ack()` commits all that was fetched, and its loop offers no pause.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import FAKE_CONSUMER, KafkaAckableMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import BaseModel

from contracts.asyncapi import channel_id, envelope_model, publication_description
from contracts.registry import events_by_topic
from contracts.topics import Topic
from services.runtime.failpoints import failpoint
from services.runtime.messaging.consumer import BatchConsumer, BatchHandler, tune_garbage_collector
from services.runtime.messaging.kafka import tls_context
from services.runtime.settings import ServiceSettings
from services.runtime.transient import TRANSIENT_ERRORS

if TYPE_CHECKING:
    from faststream.kafka.subscriber.usecase import BatchSubscriber

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

RETRY_MAX_SECONDS = 5.0


@dataclass(frozen=True, kw_only=True)
class Subscription:
    """A consumer of topics beyond the projections, as the broker declares it."""

    name: str
    """Labels its metrics; also the handler's `name`."""
    group_id: str
    """Its consumer group (before the database generation's suffix)."""
    topics: tuple[str, ...]
    message: type[BaseModel] | None
    """The document one message of its topics is (for the AsyncAPI document); None when
    the topics' messages are the CRM's own event envelopes, documented by their
    publishers."""
    description: str
    handler: Callable[[Any], BatchHandler[Any]]
    """Builds the handler from the running `ServiceRuntime`."""


def broker_security(settings: ServiceSettings) -> BaseSecurity | None:
    """The Kafka connection settings (`services.runtime.messaging.kafka`) as FastStream's
    security: TLS and SASL as every other client of the service uses them."""
    protocol = settings.kafka_security_protocol
    tls = protocol in ("SSL", "SASL_SSL")
    context = tls_context(settings) if tls else None
    mechanism = settings.kafka_sasl_mechanism
    if mechanism:
        kinds = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256}
        kind = kinds.get(mechanism, SASLScram512)
        return kind(
            settings.kafka_sasl_username or "",
            settings.kafka_sasl_secret() or "",
            ssl_context=context,
            use_ssl=tls,
        )
    if tls:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    return None


def service_broker(
    service: str,
    settings: ServiceSettings,
    *,
    registry: CollectorRegistry = REGISTRY,
    description: str | None = None,
) -> KafkaBroker:
    """The service's FastStream broker: its bootstrap servers and security, FastStream's
    Prometheus middleware on the service's registry. Types are not applied to handler
    arguments: a subscriber reads the raw batch itself."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=broker_security(settings),
        client_id=f"{service}-subscribers",
        middlewares=(KafkaPrometheusMiddleware(registry=registry, app_name=service),),
        apply_types=False,
        metadata_max_age_ms=5000,
        graceful_timeout=5.0,
        allow_auto_create_topics=False,
        description=description,
        logger=logging.getLogger("faststream"),
        log_level=logging.DEBUG,
    )


def declare_publishers(broker: KafkaBroker, topic: str) -> None:
    """Declare what the service publishes, for the AsyncAPI document: each event type of
    its topic (published by its outbox relays) and the dead-letter topic. The relays and
    the dead-letter publisher publish with their own producers (idempotent, signed, a
    batch's position moved only once the broker acknowledged all of it)."""
    for model in events_by_topic().get(Topic(topic), ()):
        broker.publisher(
            topic,
            title=channel_id(model),
            description=publication_description(model, Topic(topic)),
            schema=envelope_model(model),
        )
    dead_letter = str(Topic.DEAD_LETTER)
    broker.publisher(dead_letter, title=dead_letter, description=Topic.DEAD_LETTER.description)


Consume = Callable[[KafkaAckableMessage], Awaitable[None]]


def declare(
    broker: KafkaBroker,
    subscription: Subscription,
    consume: Consume,
    *,
    group_suffix: str = "",
    max_records: int = 2000,
    batch_timeout_ms: int = 50,
    fetch_max_wait_ms: int = 500,
) -> BatchSubscriber:
    """Declare `subscription` on `broker` as a batch subscriber with manual
    acknowledgement, handing each batch to `consume`."""
    subscriber: BatchSubscriber = broker.subscriber(
        *subscription.topics,
        batch=True,
        group_id=subscription.group_id + group_suffix,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        max_records=max_records,
        max_poll_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        fetch_max_wait_ms=fetch_max_wait_ms,
        # as `BatchConsumer`: the smallest session Kafka accepts by default
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        # one topic's channel is named after it in the AsyncAPI document
        title=subscription.topics[0] if len(subscription.topics) == 1 else subscription.name,
        description=subscription.description,
        # the CRM's own topics are documented by their publishers
        include_in_schema=subscription.message is not None,
    )

    async def parse(records: tuple[ConsumerRecord[Any, Any], ...]) -> KafkaAckableMessage:
        return _batch_message(records, subscriber.consumer)

    async def handle(batch: Any) -> None:
        await consume(batch)

    # Documented as one message of the topic (what other systems publish); what runs
    # is given the whole batch (the decoder hands on the message itself).
    handle.__annotations__ = {"batch": subscription.message or Any, "return": None}
    handle.__name__ = subscription.name
    handle.__doc__ = subscription.description
    subscriber(handle, parser=parse, decoder=_itself)
    return subscriber


async def _itself(message: KafkaAckableMessage) -> KafkaAckableMessage:
    return message


def _batch_message(
    records: tuple[ConsumerRecord[Any, Any], ...], consumer: AIOKafkaConsumer | None
) -> KafkaAckableMessage:
    """The batch as FastStream's message, its records untouched (headers may be binary)."""
    first, last = records[0], records[-1]
    headers = [
        {key: bytes(value).decode("utf-8", "replace") for key, value in record.headers or ()}
        for record in records
    ]
    return KafkaAckableMessage(
        body=[record.value or b"" for record in records],
        headers=headers[0],
        batch_headers=headers,
        message_id=f"{first.offset}-{last.offset}-{first.timestamp}",
        raw_message=records,
        consumer=consumer if consumer is not None else FAKE_CONSUMER,
    )


class SubscribedConsumer(BatchConsumer[T]):
    """A `BatchConsumer` whose batches come from a FastStream subscriber instead of its
    own loop; `run` only measures its lag while idle and ends on a defect."""

    def __init__(self, *, subscription: Subscription, **options: Any) -> None:
        super().__init__(consumer_factory=_no_consumer, **options)
        self.subscription = subscription
        self.subscriber: BatchSubscriber | None = None
        self._in_flight: dict[TopicPartition, int] = {}
        self._defect: BaseException | None = None
        self._idle = self._idle_wait_ms / 1000

    async def run(self) -> None:
        """Measure the lag between batches until cancelled; raise the defect a batch met."""
        tune_garbage_collector()
        while self._defect is None:
            consumer = self._consumer()
            if consumer is not None:
                try:
                    await self._record_lag(consumer, dict(self._in_flight))
                except KafkaError as exc:
                    log.debug("lag of %s not measured: %r", self.name, exc)
            await asyncio.sleep(self._idle)
        raise self._defect

    async def load_positions(self) -> None:
        """Read the relay positions handled before (any replica, any restart)."""
        if self._positions is not None:
            await self._positions.load()

    def _consumer(self) -> AIOKafkaConsumer | None:
        consumer = self.subscriber.consumer if self.subscriber is not None else None
        return consumer if isinstance(consumer, AIOKafkaConsumer) else None

    async def consume(self, message: KafkaAckableMessage) -> None:
        """Handle one batch, then commit its offsets."""
        if self._defect is not None:
            await asyncio.Event().wait()  # after a defect, nothing more is acknowledged
        records: Sequence[ConsumerRecord[Any, Any]] = message.raw_message
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._in_flight.setdefault(tp, record.offset)
        try:
            await self._until_done(lambda: self.handle_batch(records))
            if self._positions is not None:
                positions = self._positions
                await self._until_done(lambda: positions.advance(records))
            failpoint("consumer_after_handle_before_commit")
            try:
                await message.ack()
            except CommitFailedError as exc:
                # A rebalance moved the partitions; the next owner re-reads the batch
                # and its handler recognises what was already done.
                log.info("offset commit skipped after rebalance: %s", exc)
            except KafkaError as exc:
                # Handled all the same: the next batch's commit covers it, and a
                # re-delivery after a restart is recognised.
                log.warning("offset commit of %s failed: %r", self.name, exc)
            self.progressed_at = time.monotonic()
        except (Exception, asyncio.CancelledError) as exc:
            if not isinstance(exc, asyncio.CancelledError):
                log.error("consumer %s stops on a defect", self.name, exc_info=exc)
                self._defect = exc
            raise
        finally:
            self._in_flight = {}
        consumer = self._consumer()
        if consumer is not None:
            await self._record_lag(consumer, {})

    async def _until_done(self, step: Callable[[], Awaitable[R]]) -> R:
        """`step`, again and again while it meets transient errors (database or broker
        outages): the batch is never given up."""
        delay = 0.2
        while True:
            try:
                return await step()
            except TRANSIENT_ERRORS as exc:
                self.last_error = repr(exc)
                log.warning("consumer %s waits for its database: %r", self.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)


def _no_consumer(*topics: str, **options: Any) -> AIOKafkaConsumer:
    raise AssertionError("a subscribed consumer's batches come from its FastStream subscriber")


class InboundBroker:
    """The service's broker with its subscribed consumers: started (and started again
    while the Kafka cluster cannot be reached) as one background task."""

    def __init__(self, broker: KafkaBroker, consumers: Sequence[SubscribedConsumer[Any]]):
        self.broker = broker
        self.consumers = list(consumers)

    async def run(self) -> None:
        for consumer in self.consumers:
            await consumer.until_ready()
        try:
            while True:
                for consumer in self.consumers:
                    consumer.joining_since = time.monotonic()
                try:
                    for consumer in self.consumers:
                        await consumer.load_positions()
                    # each subscriber starts once the broker has given it partitions
                    await self.broker.start()
                    break
                except (KafkaError, *TRANSIENT_ERRORS) as exc:
                    for consumer in self.consumers:
                        consumer.last_error = repr(exc)
                    log.warning("subscribers start again after: %r", exc)
                    await self._stop()
                    await asyncio.sleep(1.0)
            for consumer in self.consumers:
                consumer.joining_since = None
                consumer.connected = True
            await asyncio.Event().wait()
        finally:
            for consumer in self.consumers:
                consumer.joining_since = None
                consumer.connected = False
            await self._stop()

    async def _stop(self) -> None:
        try:
            await self.broker.stop()
        except (KafkaError, OSError):
            log.debug("broker stop failed", exc_info=True)
