"""Benchmark of RFM re-scoring: `crm bench rfm-rescore --customers 1000000`.

Starts an embedded PostgreSQL and fills the analytics profile table with `--customers`
buyers, generated in SQL (purchase counts, spend and last purchase dates spread over
three years; profiles in the fold's own stored form). Then, in the same run:

- full scoring: the first `rescore`, with no stored boundaries, scores every buyer and
  re-evaluates every customer's segments; this is what re-scoring everybody would cost
  each time the boundaries move;
- new purchases: `--purchases` purchases by as many customers, through the fold itself
  (`AnalyticsFold.apply`, batches of 2000), which scores them against the stored
  boundaries;
- re-scoring: the next `rescore` moves the boundaries to the new population and
  re-scores only the customers whose values lie between an old and a new boundary
  (`services.analytics.projections.rescoring.rescore`), re-evaluating only those.

It prints the time of each, how many customers' scores the re-scoring changed and how
many customers' conclusions changed, and the ratio of the full scoring to the
re-scoring.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from contracts.envelope import build_envelope
from contracts.sales import PurchaseRecorded
from local.embedded.postgres import EmbeddedPostgres
from services.analytics.domain.money import Converter
from services.analytics.migrations import MIGRATIONS
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.projections.rescoring import rescore
from services.runtime.storage.database import create_pool, ensure_database
from services.runtime.storage.migrator import DURABLE, migrate_all

BATCH = 2000

_FILL = """
WITH generated AS (
    SELECT md5('bench-customer-' || i)::uuid AS customer_id,
           1 + floor(power(random(), 3) * 40)::int AS purchases,
           round((80 + power(random(), 2) * 30000)::numeric, 2) AS average,
           $2::timestamptz - random() * interval '1095 days' AS last_at,
           (ARRAY['华东', '华南', '华北', '西部'])[1 + i % 4] AS region
    FROM generate_series(1, $1) AS i
), spread AS (
    SELECT *, purchases * average AS spend,
           last_at - (purchases - 1) * interval '45 days' AS first_at,
           CASE WHEN purchases > 1 THEN last_at - interval '45 days' END AS previous_at
    FROM generated
)
INSERT INTO profiles (customer_id, state, registered, region, purchase_count, total_spend,
                      first_purchase_at, last_purchase_at, last_purchase_date, csat_count,
                      complaints_open, complaints_total, lifecycle_stage, value_tier,
                      satisfaction, churn_risk, updated_at)
SELECT customer_id,
       jsonb_build_object(
           'registered', true, 'region', region, 'tags', '{}'::jsonb, 'versions', '{}'::jsonb,
           'purchase_count', purchases, 'total_spend', spend::text,
           'first_purchase_at', first_at, 'last_purchase_at', last_at,
           'previous_purchase_at', previous_at, 'contacts', '{}'::jsonb,
           'last_contact_at', null, 'recent_contacts', '[]'::jsonb, 'csat_sum', 0,
           'csat_count', 0, 'nps_latest', null, 'nps_at', null, 'nps_event', null,
           'tickets', '{}'::jsonb, 'segments', '{}'::jsonb, 'churn_reasons', '[]'::jsonb),
       true, region, purchases, spend, first_at, last_at, last_at::date, 0, 0, 0,
       'prospect', 'none', 'unknown', false, $2
FROM spread
"""

_SCORES = "SELECT customer_id, recency_score, frequency_score, monetary_score FROM profiles"


def purchase(customer_id: uuid.UUID, moment: datetime, amount: Decimal) -> Any:
    payload = PurchaseRecorded(
        purchase_id=uuid.uuid4(),
        source="bench",
        order_id=f"SO-{uuid.uuid4().hex[:12]}",
        amount=amount,
        currency="CNY",
    )
    return build_envelope(
        payload, customer_id=customer_id, producer="crm.sales", occurred_at=moment
    )


async def measure(postgres: EmbeddedPostgres, customers: int, purchases: int) -> dict[str, float]:
    url = postgres.dsn("crm_bench_rfm")
    await ensure_database(url)
    await migrate_all(url, "analytics", (DURABLE, MIGRATIONS))
    # statements over a million rows take longer than the services' command timeout
    pool = await create_pool(url, "analytics", command_timeout=None)
    now = datetime.now(UTC)
    fold = AnalyticsFold(Converter("CNY"), lambda: now)
    figures: dict[str, float] = {"customers": customers, "purchases": purchases}
    try:
        async with pool.acquire() as connection:
            await fold.create_tables(connection)
            started = time.perf_counter()
            await connection.execute("SELECT setseed(0.42)")
            await connection.execute(_FILL, customers, now)
            await connection.execute("ANALYZE profiles")
            figures["fill_seconds"] = time.perf_counter() - started

            started = time.perf_counter()
            async with connection.transaction():
                figures["full_changed"] = await rescore(connection, now, now)
            figures["full_seconds"] = time.perf_counter() - started

            buyers = [
                r["customer_id"]
                for r in await connection.fetch(
                    "SELECT customer_id FROM profiles ORDER BY md5(customer_id::text) LIMIT $1",
                    purchases,
                )
            ]
            events = [
                purchase(c, now, Decimal(200 + (n * 7919) % 20000)) for n, c in enumerate(buyers)
            ]
            started = time.perf_counter()
            for start in range(0, len(events), BATCH):
                async with connection.transaction():
                    await fold.apply(connection, events[start : start + BATCH])
            figures["purchases_seconds"] = time.perf_counter() - started

            before = {r[0]: tuple(r[1:]) for r in await connection.fetch(_SCORES)}
            started = time.perf_counter()
            async with connection.transaction():
                figures["rescore_changed"] = await rescore(connection, now, now)
            figures["rescore_seconds"] = time.perf_counter() - started
            after = {r[0]: tuple(r[1:]) for r in await connection.fetch(_SCORES)}
            figures["rescored"] = sum(1 for c, s in after.items() if before.get(c) != s)
    finally:
        await pool.close()
    return figures


def run_rfm_rescore(customers: int, purchases: int) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="crm-bench-rfm-") as scratch,
        EmbeddedPostgres(Path(scratch) / "postgres") as postgres,
    ):
        figures = asyncio.run(measure(postgres, customers, purchases))
    print(f"RFM re-scoring over {customers} customers who bought")
    print(f"  profiles generated in {figures['fill_seconds']:.1f} s")
    print(
        f"  full scoring (every buyer scored and re-evaluated)  {figures['full_seconds']:8.2f} s"
        f"   ({figures['full_changed']:.0f} customers' conclusions changed)"
    )
    print(
        f"  {purchases} new purchases through the fold         "
        f"{figures['purchases_seconds']:8.2f} s"
    )
    print(
        f"  re-scoring after them (boundaries moved)           {figures['rescore_seconds']:8.2f} s"
        f"   ({figures['rescored']:.0f} customers' scores changed, "
        f"{figures['rescore_changed']:.0f} customers' conclusions changed)"
    )
    print(
        "  full scoring / re-scoring: "
        f"{figures['full_seconds'] / max(figures['rescore_seconds'], 1e-9):.0f} times"
    )
    return figures
