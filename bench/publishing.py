"""`crm bench publishing`: what a relayed message costs to publish through the relay's own
aiokafka producer, beside FastStream's publisher.

The same messages (events of a generated history as a relay publishes them: serialised,
keyed by customer, with type, schema version, position and a signature per message,
`services.runtime.messaging.outbox.outgoing`) go to a topic of the embedded broker,
acknowledged by it, three ways:

- the relay's way: `producer.send` of a `reliable_producer`, headers as bytes;
- a FastStream publisher of a `KafkaBroker` with the same producer settings, what the
  relays would use if they published through FastStream: its `publish` takes headers as
  text, so the signature header (a binary Merkle proof, `contracts.signing`) goes as
  base64;
- the same with FastStream's Prometheus middleware, as the services' brokers have it
  (`services.runtime.messaging.subscribers.service_broker`).

Each way runs `rounds` times, in turn; a row gives its median rate and the CPU this
process took per message (building the messages included: the same for every way), and
its ratio to the relay's.
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from bench.figures import PARTITIONS
from contracts.envelope import EventEnvelope
from contracts.registry import parse_event
from contracts.signing import HEADER as SIGNATURE_HEADER
from contracts.signing import Signer
from local.embedded.broker import EmbeddedBroker
from local.synthetic_history import history
from services.runtime.messaging.kafka import (
    ensure_topics,
    reliable_producer,
    reliable_producer_options,
)
from services.runtime.messaging.outbox import outgoing
from services.runtime.settings import ServiceSettings

SOURCE = "bench.relayed"
TOPIC = "bench.publishing"
WAYS = (
    ("relay", "the relay: aiokafka producer, headers as bytes"),
    ("faststream", "FastStream publisher, headers as text"),
    ("faststream_metrics", "FastStream publisher with its Prometheus middleware"),
)

Publish = Callable[[Sequence[tuple[int, EventEnvelope[Any]]]], Awaitable[None]]


def events(count: int) -> list[tuple[int, EventEnvelope[Any]]]:
    """At least `count` events of a generated history, numbered as a relay's positions."""
    envelopes: list[EventEnvelope[Any]] = []
    customers = max(1, count // 8)
    while len(envelopes) < count:
        envelopes = [parse_event(event.message()[2]) for event in history(customers)]
        customers *= 2
    return list(enumerate(envelopes[:count], start=1))


def as_text(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    """Headers as FastStream publishes them, text: the binary signature as base64."""
    return {
        key: base64.b64encode(value).decode() if key == SIGNATURE_HEADER else value.decode()
        for key, value in headers
    }


def relay_way(producer: AIOKafkaProducer, signer: Signer) -> Publish:
    async def publish(public: Sequence[tuple[int, EventEnvelope[Any]]]) -> None:
        messages = outgoing(TOPIC, SOURCE, public, signer)
        pending = [
            await producer.send(TOPIC, value=m.value, key=m.key, headers=m.headers)
            for m in messages
        ]
        await asyncio.gather(*pending)

    return publish


def faststream_way(broker: KafkaBroker, signer: Signer) -> Publish:
    publisher = broker.publisher(TOPIC)

    async def publish(public: Sequence[tuple[int, EventEnvelope[Any]]]) -> None:
        messages = outgoing(TOPIC, SOURCE, public, signer)
        pending = [
            await publisher.publish(m.value, key=m.key, headers=as_text(m.headers), no_confirm=True)
            for m in messages
        ]
        await asyncio.gather(*pending)

    return publish


def faststream_broker(settings: ServiceSettings, *, metrics: bool) -> KafkaBroker:
    """A broker whose producer is configured as `reliable_producer`'s."""
    middlewares = (
        (KafkaPrometheusMiddleware(registry=CollectorRegistry(), app_name="bench"),)
        if metrics
        else ()
    )
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        middlewares=middlewares,
        **reliable_producer_options(settings),
    )


async def timed(
    publish: Publish, public: list[tuple[int, EventEnvelope[Any]]]
) -> tuple[float, float]:
    """Messages per second and µs of this process's CPU per message, publishing `public`
    in the relay's batches of 1000."""
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(public), 1000):
        await publish(public[start : start + 1000])
    count = len(public)
    return count / (time.perf_counter() - started), (time.process_time() - cpu) / count * 1e6


async def measure(
    servers: str, count: int, rounds: int, signer: Signer | None = None
) -> dict[str, list[tuple[float, float]]]:
    """Each way's (rate, µs per message) of each round, publishing the same `count` events
    (the first of them also once before, to warm the connections), signed by `signer`
    (a new key by default)."""
    settings = ServiceSettings(kafka_bootstrap_servers=servers)
    await ensure_topics(servers, [TOPIC], partitions=PARTITIONS)
    public = events(count)
    signer = signer or Signer(Ed25519PrivateKey.generate())
    producer = reliable_producer(settings, "bench-publishing")
    brokers = {
        "faststream": faststream_broker(settings, metrics=False),
        "faststream_metrics": faststream_broker(settings, metrics=True),
    }
    ways = {
        "relay": relay_way(producer, signer),
        **{name: faststream_way(broker, signer) for name, broker in brokers.items()},
    }
    await producer.start()
    for broker in brokers.values():
        await broker.start()
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    try:
        await timed(ways["relay"], public[: min(count, 2000)])  # connections warmed
        for _ in range(rounds):
            for name, publish in ways.items():
                figures[name].append(await timed(publish, public))
    finally:
        await producer.stop()
        for broker in brokers.values():
            await broker.stop()
    return figures


def print_figures(count: int, figures: dict[str, list[tuple[float, float]]]) -> None:
    rounds = len(figures["relay"])
    print(f"{count:,} relayed events published and acknowledged, median of {rounds} rounds")
    relay_cpu = statistics.median(cpu for _, cpu in figures["relay"])
    for name, label in WAYS:
        rate = statistics.median(r for r, _ in figures[name])
        cpu = statistics.median(c for _, c in figures[name])
        print(
            f"  {label:<55} {rate:>9,.0f} msg/s  {cpu:6.1f} µs CPU/msg "
            f"(+{cpu - relay_cpu:4.1f} µs, {cpu / relay_cpu:4.2f}x the relay's)"
        )


def run_publishing(count: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    with EmbeddedBroker() as broker:
        figures = asyncio.run(measure(broker.bootstrap_servers, count, rounds))
    print_figures(count, figures)
    return figures
