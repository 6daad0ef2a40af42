"""The fold's memory of the profiles it wrote (`services.analytics.projections.cache`) never
outlives what is stored: a batch that rolled back, another writer in between, or
partitions given to the process make the next batch read the profiles from the tables
again; a writer that comes in between a batch's fold and its turn to write makes the
batch fold again, once."""

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
from services.analytics.projections import fold as fold_module
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.projections.writers import lock
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
        if commit:
            await transaction.commit()
            replica.committed()  # as `ProjectionHandler` tells it
        else:
            await transaction.rollback()


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


async def another_writer(pool: asyncpg.Pool, total: str) -> None:
    """Another writer of the profile (the re-scoring, the sweep, a rebuild's swap): its
    turn, a new token, the stored profile changed."""
    async with pool.acquire() as connection, connection.transaction():
        await lock(connection)
        await connection.execute(
            """UPDATE profiles SET total_spend = $2::numeric,
               state = jsonb_set(state::jsonb, '{total_spend}', to_jsonb($2::text))::text
               WHERE customer_id = $1""",
            CUSTOMER,
            total,
        )


async def test_what_another_writer_stored_in_between_is_read_again(pool: asyncpg.Pool) -> None:
    first = replica()
    await fold(pool, first, "100.00")
    await another_writer(pool, "1000.00")
    await fold(pool, first, "3.00")
    assert await stored(pool) == (2, Decimal("1003.00"))
    await fold(pool, first, "0.50")  # nobody else wrote: folded on what it remembers
    assert await stored(pool) == (3, Decimal("1003.50"))
    assert CUSTOMER in first.cache.profiles


async def test_a_process_given_partitions_forgets_what_it_folded(pool: asyncpg.Pool) -> None:
    # the customer's partition went to another fold process and came back
    first, second = replica(), replica()
    await fold(pool, first, "100.00")
    second.on_assigned()
    await fold(pool, second, "20.00")
    first.on_assigned()
    await fold(pool, first, "3.00")
    assert await stored(pool) == (3, Decimal("123.00"))


async def test_a_writer_between_the_fold_and_its_turn_makes_the_batch_fold_again(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = replica()
    await fold(pool, first, "100.00")
    first.cache.groups = None  # read again in the next batch, after its token
    load_groups = fold_module.load_groups

    writers = ["1000.00"]

    async def groups_then_another_writer(connection: asyncpg.Connection) -> Any:
        if writers:  # the first time: after the batch read the token, before its turn
            await another_writer(pool, writers.pop())
        return await load_groups(connection)

    monkeypatch.setattr(fold_module, "load_groups", groups_then_another_writer)
    await fold(pool, first, "3.00")
    assert await stored(pool) == (2, Decimal("1003.00"))
    details = await pool.fetchval("SELECT count(*) FROM purchases WHERE customer_id = $1", CUSTOMER)
    assert details == 2  # the first try's detail rows rolled back with it
