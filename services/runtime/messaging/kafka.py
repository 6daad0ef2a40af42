"""Kafka clients configured from settings, and idempotent topic creation.

Only what both Apache Kafka and the embedded Tansu broker speak is used: plain
produce and fetch, consumer groups, CreateTopics. No transactions.
"""

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from contracts.topics import Topic
from services.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

# Tansu answers DescribeConfigs only with what was given at creation, so give it all.
TOPIC_CONFIG = {
    "retention.ms": str(30 * 24 * 3600 * 1000),
    "cleanup.policy": "delete",
}


def connection_options(settings: ServiceSettings) -> dict[str, Any]:
    """Options for every aiokafka client: servers and, when configured, TLS and SASL."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = tls_context(settings)
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_secret()
    return options


def tls_context(settings: ServiceSettings) -> ssl.SSLContext:
    """Verifies the brokers against the configured CA (else the system's), and presents a
    client certificate when one is configured."""
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    if settings.kafka_ssl_certfile is not None and settings.kafka_ssl_keyfile is not None:
        context.load_cert_chain(str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile))
    return context


def reliable_producer_options(settings: ServiceSettings) -> dict[str, Any]:
    """How the services produce: waiting for all in-sync replicas, keeping per-partition
    order, batching for up to 5 ms."""
    return {
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "max_request_size": settings.kafka_max_message_bytes,
        "request_timeout_ms": 10_000,
        "retry_backoff_ms": 200,
        "compression_type": None,
    }


def reliable_producer(settings: ServiceSettings, client_id: str) -> AIOKafkaProducer:
    """A producer as the services produce (`reliable_producer_options`)."""
    return AIOKafkaProducer(
        **connection_options(settings), client_id=client_id, **reliable_producer_options(settings)
    )


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[Topic | str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    options: dict[str, Any] | None = None,
) -> None:
    """Create the topics that do not exist yet; existing ones are left alone."""
    admin_options = options or {"bootstrap_servers": bootstrap_servers}
    admin = AIOKafkaAdminClient(**admin_options, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [str(t) for t in topics if str(t) not in existing]
        if not missing:
            return
        with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another
            await admin.create_topics(
                [
                    NewTopic(name, partitions, replication_factor, topic_configs=TOPIC_CONFIG)
                    for name in missing
                ]
            )
        log.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()


async def wait_for_broker(bootstrap_servers: str, timeout: float = 30.0) -> None:
    """Return once the broker answers metadata requests."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
        finally:
            await admin.close()
