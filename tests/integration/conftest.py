"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from local.embedded.postgres import EmbeddedPostgres
from services.analytics.domain.money import Converter
from services.analytics.migrations import MIGRATIONS
from services.analytics.projections.fold import AnalyticsFold
from services.runtime.storage.database import create_pool
from services.runtime.storage.migrator import DURABLE, migrate_all
from tests.support.infrastructure import new_database


@pytest.fixture
async def analytics_pool(postgres: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a new database with the analytics service's durable tables (its
    migrations) and the fold's tables."""
    async for pool in _analytics_database(postgres):
        yield pool


@pytest.fixture
async def other_analytics_pool(postgres: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    """Another one, to fold the same events differently."""
    async for pool in _analytics_database(postgres):
        yield pool


async def _analytics_database(postgres: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    url = await new_database(postgres)
    await migrate_all(url, "analytics", (DURABLE, MIGRATIONS))
    pool = await create_pool(url, "analytics")
    async with pool.acquire() as connection:
        await AnalyticsFold(Converter("CNY")).create_tables(connection)
    yield pool
    await pool.close()
