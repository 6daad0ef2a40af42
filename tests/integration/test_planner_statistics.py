"""Tables filled faster than autovacuum looks at them keep statistics that let the
consumers' cached look-ups use their indexes (`storage.statistics`)."""

from __future__ import annotations

import asyncio
import uuid

from local.embedded.postgres import EmbeddedPostgres
from services.runtime.storage.database import create_pool
from services.runtime.storage.migrator import DURABLE, migrate_all
from services.runtime.storage.statistics import PlannerStatistics
from tests.support.infrastructure import new_database

LOOK_UP = "PREPARE look_up(uuid[]) AS SELECT body FROM facts WHERE fact_id = ANY($1)"


async def test_a_look_up_planned_on_a_small_table_uses_its_index_once_the_table_grew(
    postgres: EmbeddedPostgres,
) -> None:
    url = await new_database(postgres)
    await migrate_all(url, "sales", (DURABLE,))
    pool = await create_pool(url, "sales")
    statistics = PlannerStatistics(pool, interval=0)
    try:
        async with pool.acquire() as connection:
            await connection.execute("CREATE TABLE facts (fact_id uuid PRIMARY KEY, body text)")
            await connection.execute(
                "INSERT INTO facts SELECT gen_random_uuid(), 'fact' FROM generate_series(1, 20)"
            )
            await connection.execute("ANALYZE facts")
            # One plan for every execution, as PostgreSQL settles on for a statement
            # prepared and run again and again while the table is small.
            await connection.execute("SET plan_cache_mode = force_generic_plan")
            await connection.execute(LOOK_UP)
            plan = "\n".join(
                r[0]
                for r in await connection.fetch(f"EXPLAIN EXECUTE look_up('{{{uuid.uuid4()}}}')")
            )
            assert "Seq Scan on facts" in plan  # a few rows: reading them all is cheapest
            await connection.execute(
                "INSERT INTO facts SELECT gen_random_uuid(), repeat('x', 200) "
                "FROM generate_series(1, 50000)"
            )
            # The counters of this session reach the server at its next transaction.
            await connection.execute("SELECT pg_stat_force_next_flush()")
            await connection.execute("SELECT 1")
            analysed: list[str] = []
            for _ in range(50):  # until the server's activity counters show the rows
                analysed = await statistics.refresh_if_due()
                if analysed:
                    break
                await asyncio.sleep(0.1)
            assert analysed == ["sales.facts"]
            plan = "\n".join(
                r[0]
                for r in await connection.fetch(f"EXPLAIN EXECUTE look_up('{{{uuid.uuid4()}}}')")
            )
            assert "facts_pkey" in plan and "Seq Scan" not in plan
            assert await statistics.refresh_if_due() == []  # analysed until it doubles again
    finally:
        await pool.close()
