"""Real infrastructure for the test run: an embedded PostgreSQL for the session, and a
fresh Kafka-protocol broker and database for each test that asks for one, all on free
ports so that a running CRM is never disturbed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts.topics import Topic
from local.embedded import EmbeddedBroker, EmbeddedPostgres
from local.launcher import ServiceProcess
from services.runtime.messaging.kafka import ensure_topics
from services.runtime.storage.database import ensure_database
from tests.support.auth import TEST_SECRET


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "data")
    server.start()
    yield server
    server.stop()


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


@pytest.fixture
async def infra(postgres: EmbeddedPostgres, tmp_path: Path) -> AsyncIterator[Infrastructure]:
    """A new broker with every topic, and a new empty database, for one test."""
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    await asyncio.to_thread(broker.start)
    database_url = postgres.dsn(f"crm_{uuid.uuid4().hex[:10]}")
    await ensure_database(database_url)
    infrastructure = Infrastructure(postgres, broker, database_url, tmp_path)
    await infrastructure.create_topics()
    yield infrastructure
    await asyncio.to_thread(broker.stop)
