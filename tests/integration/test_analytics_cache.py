"""The fold's memory of the profiles it wrote (`services.analytics.projections.cache`) never
outlives what is stored: a batch that rolled back, or another writer in between, makes
the next batch read the profiles from the tables again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from contracts import sales
from contracts.envelope import EventEnvelope, payload_example
from services.analytics.domain.money import Converter
from services.analytics.projections.fold import AnalyticsFold
from tests.support.events import envelope

CUSTOMER = uuid.uuid4()


def purchase(amount: str) -> EventEnvelope[Any]:
    document = payload_example(sales.PurchaseRecorded)
    payload = sales.PurchaseRecorded.model_validate(
        {**document, "order_id": f"SO-{uuid.uuid4().hex[:8]}", "amount": amount}
    )
    return envelope(CUSTOMER, 1, payload, event_id=uuid.uuid4(), aggregate_id=None)


@pytest.fixture
def pool(analytics_pool: asyncpg.Pool) -> asyncpg.Pool:
    return analytics_pool


async def fold(
    pool: asyncpg.Pool, replica: AnalyticsFold, *amounts: str, commit: bool = True
) -> None:
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        await replica.apply(connection, [purchase(a) for a in amounts])
        await (transaction.commit() if commit else transaction.rollback())


async def stored(pool: asyncpg.Pool) -> tuple[int, Decimal]:
    row = await pool.fetchrow(
        "SELECT purchase_count, total_spend FROM profiles WHERE customer_id = $1", CUSTOMER
    )
    return row["purchase_count"], row["total_spend"]


def replica() -> AnalyticsFold:
    return AnalyticsFold(Converter("CNY"), lambda: datetime.now(UTC))


async def test_a_batch_that_rolled_back_is_not_remembered(pool: asyncpg.Pool) -> None:
    analytics = replica()
    await fold(pool, analytics, "100.00")
    await fold(pool, analytics, "20.00", commit=False)
    assert CUSTOMER in analytics.cache.profiles  # folded in memory, never stored
    await fold(pool, analytics, "3.00")
    assert await stored(pool) == (2, Decimal("103.00"))


async def test_what_another_writer_stored_in_between_is_read_again(pool: asyncpg.Pool) -> None:
    first, second = replica(), replica()
    await fold(pool, first, "100.00")
    await fold(pool, second, "20.00")
    await fold(pool, first, "3.00")
    assert await stored(pool) == (3, Decimal("123.00"))
    await fold(pool, first, "0.50")  # nobody else wrote: folded on what it remembers
    assert await stored(pool) == (4, Decimal("123.50"))
