"""The real infrastructure a test runs on: an embedded PostgreSQL (one per test session
and xdist worker), and a Kafka-protocol broker and database of its own for each test that
asks for one (the `infra` fixture of `tests/conftest.py`), all on free ports so that a
running CRM is never disturbed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from contracts.topics import Topic
from local.embedded.broker import EmbeddedBroker
from local.embedded.postgres import EmbeddedPostgres
from local.launcher import ServiceProcess
from services.runtime.messaging.kafka import ensure_topics
from services.runtime.storage.database import ensure_database
from tests.support.auth import TEST_SECRET


@dataclass
class Infrastructure:
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    database_url: str
    log_dir: Path

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.bootstrap_servers

    async def create_topics(self) -> None:
        await ensure_topics(self.bootstrap_servers, list(Topic))

    def service(
        self, name: str, *, database_url: str | None = None, **extra_env: str
    ) -> ServiceProcess:
        """A service process on this infrastructure (not started yet); it accepts tokens
        signed with `TEST_SECRET`, and `service.client(role=...)` sends one."""
        return ServiceProcess(
            name,
            database_url=database_url or self.database_url,
            bootstrap_servers=self.bootstrap_servers,
            log_dir=self.log_dir,
            extra_env=extra_env,
            auth_secret=TEST_SECRET,
        )


async def new_database(postgres: EmbeddedPostgres) -> str:
    """The URL of a new, empty database of a name no other test uses."""
    url = postgres.dsn(f"crm_{uuid.uuid4().hex[:10]}")
    await ensure_database(url)
    return url


async def started_infrastructure(
    postgres: EmbeddedPostgres, log_dir: Path
) -> AsyncIterator[Infrastructure]:
    """A new broker with every topic and a new empty database, stopped afterwards."""
    broker = EmbeddedBroker(log_path=log_dir / "broker.log")
    await asyncio.to_thread(broker.start)
    try:
        infrastructure = Infrastructure(postgres, broker, await new_database(postgres), log_dir)
        await infrastructure.create_topics()
        yield infrastructure
    finally:
        await asyncio.to_thread(broker.stop)


async def running(service: ServiceProcess) -> AsyncIterator[ServiceProcess]:
    """The service started (and ready), then stopped."""
    await asyncio.to_thread(service.start)
    try:
        yield service
    finally:
        await asyncio.to_thread(service.stop)
