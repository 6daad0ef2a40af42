"""Purchases end to end, the last part of `crm bench purchase-ingestion`.

From the inbound purchases topic to committed analytics profiles, with the services' real
code on a broker of its own, each service in processes of its own as deployed
(`bench.service_processes`, `bench.fold_processes`):

- the sales service's process: its ingestion (`PurchaseIngestion` as a FastStream batch
  subscriber), its event store and its `OutboxRelay` onto the sales topic, and its
  customer replica (`CUSTOMERS`, folded from the customer topic: how it resolves known
  references);
- the customer service's process: its first-seen customers (`FirstSeenCustomers` as a
  FastStream batch subscriber of the sales topic), its event store and its `OutboxRelay`
  onto the customer topic (without a keyring: no personal values are sealed);
- the analytics fold (`AnalyticsFold` behind `ProjectionHandler` in a `BatchConsumer`) in
  `--fold-processes` processes of one consumer group.

Half the purchases name customers the CRM knows by another system's reference (registered
in the customer service with that reference, relayed and folded by the sales replica and
the fold before the clock starts, five purchases each); the other half each name a
customer no one has seen (a new reference): sales records the purchase on the id derived
from the reference, and the customer service registers that customer as first seen.

The clock starts when the first inbound batch reaches the sales handler and stops when
the analytics profiles hold every purchase (`sum(purchase_count)`); the time until they
also hold every first-seen customer as registered is printed beside it. The CPU time is
that of the service and fold processes, PostgreSQL and the broker from the moment the
sales service is told to ingest until both hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bench.figures import PARTITIONS
from bench.fold_processes import FoldProcesses
from bench.purchase_ingestion import publish, purchase
from bench.service_processes import ServiceProcesses
from contracts.topics import Topic
from local.embedded.broker import EmbeddedBroker
from local.embedded.postgres import EmbeddedPostgres
from services.analytics.migrations import MIGRATIONS as ANALYTICS_MIGRATIONS
from services.customer.application import CustomerApplication
from services.customer.migrations import MIGRATIONS as CUSTOMER_MIGRATIONS
from services.runtime.messaging.kafka import ensure_topics
from services.runtime.storage.database import create_pool, ensure_database
from services.runtime.storage.eventstore import open_event_store
from services.runtime.storage.migrator import DURABLE, MigrationSet, migrate_all

TARGET = 10_000
"""Purchases per second end to end the product asks for."""
KNOWN_SOURCE = "erp"
UNSEEN_SOURCE = "shop-cn"
PURCHASES_PER_KNOWN = 5


def mixed_purchases(count: int) -> tuple[list[tuple[bytes, bytes]], int, int]:
    """`count` purchases, every other one naming a known customer (`K-…` of the ERP,
    five purchases each) and the others each a customer no one has seen (`N-…` of the
    shop), as (key, value) messages; with the numbers of known and unseen customers."""
    unseen = count // 2
    known = max(1, -(-(count - unseen) // PURCHASES_PER_KNOWN))
    messages = [
        purchase(i, UNSEEN_SOURCE, f"N-{i:08d}")
        if i % 2
        else purchase(i, KNOWN_SOURCE, f"K-{(i // 2) % known:06d}")
        for i in range(count)
    ]
    return messages, known, unseen


async def store(postgres: EmbeddedPostgres, schema: str, *migrations: MigrationSet) -> str:
    url = postgres.dsn(f"crm_bench_pipeline_{schema}")
    await ensure_database(url)
    await migrate_all(url, schema, (DURABLE, *migrations))
    return url


async def until(check: Callable[[], Coroutine[Any, Any, bool]], interval: float = 0.05) -> float:
    while not await check():
        await asyncio.sleep(interval)
    return time.perf_counter()


async def pipeline(
    postgres: EmbeddedPostgres, broker: EmbeddedBroker, count: int, processes: int = 1
) -> dict[str, float]:
    servers = broker.bootstrap_servers
    await ensure_topics(servers, list(Topic), partitions=PARTITIONS)
    messages, known, unseen = mixed_purchases(count)
    await publish(servers, messages)
    sales_url = await store(postgres, "sales")
    customer_url = await store(postgres, "customer", CUSTOMER_MIGRATIONS)
    analytics_url = await store(postgres, "analytics", ANALYTICS_MIGRATIONS)
    sales_pool = await create_pool(sales_url, "sales")
    analytics_pool = await create_pool(analytics_url, "analytics")
    customers = await open_event_store(CustomerApplication, customer_url, "customer")
    services = ServiceProcesses(sales_url, customer_url, servers)
    fold = FoldProcesses(analytics_url, servers, processes)

    async def folded() -> tuple[int, int]:
        row = await analytics_pool.fetchrow(
            "SELECT coalesce(sum(purchase_count), 0) AS purchases, "
            "count(*) FILTER (WHERE registered) AS registered FROM profiles"
        )
        assert row is not None
        return int(row["purchases"]), int(row["registered"])

    async def purchases_folded() -> int:
        # in the transaction of the profiles they change; counted cheaper than their sum
        return int(await analytics_pool.fetchval("SELECT count(*) FROM purchases"))

    async def registered() -> int:
        return (await folded())[1]

    async def known_everywhere() -> bool:
        references = await sales_pool.fetchval("SELECT count(*) FROM customer_references")
        return bool(references == known and (await folded())[1] == known)

    def cpu() -> dict[str, float]:
        return {
            **services.cpu(),
            "fold": fold.cpu(),
            "postgres": postgres.cpu_seconds(),
            "broker": broker.cpu_seconds(),
        }

    try:
        await fold.start()
        await services.start()
        await asyncio.to_thread(register_known, customers, known)
        await until(known_everywhere)
        before = cpu()
        handled = fold.shared.handled.value
        services.go()
        # Asked of PostgreSQL only once the fold handled as many events as there are
        # purchases (counted in shared memory): polling the profiles all along would
        # cost PostgreSQL a tenth of its CPU in the run.
        while fold.shared.handled.value - handled < count:
            await asyncio.sleep(0.01)
        purchases_at = await until(lambda: _reached(purchases_folded, count), interval=0.01)
        registered_at = await until(lambda: _reached(registered, known + unseen))
        if (await folded())[0] != count:
            raise RuntimeError("the profiles do not count every purchase folded")
        used = {name: seconds - before[name] for name, seconds in cpu().items()}
        profiles = await analytics_pool.fetchval("SELECT count(*) FROM profiles")
        if profiles != known + unseen:  # a known customer's purchase on a derived id
            raise RuntimeError(f"{profiles} profiles, expected {known + unseen}")
    finally:
        services.stop()
        fold.stop()
        await sales_pool.close()
        await analytics_pool.close()
        customers.close()
    first = services.first_batch_at or purchases_at
    return {
        "e2e_count": count,
        "e2e_unseen_share": unseen / count,
        "e2e_known_customers": known,
        "e2e_unseen_customers": unseen,
        "e2e_seconds": purchases_at - first,
        "e2e_registered_seconds": registered_at - first,
        "e2e_purchases_per_second": count / (purchases_at - first),
        "e2e_all_per_second": count / (registered_at - first),
        "e2e_fold_processes": processes,
        **{f"e2e_{name}_cpu": seconds for name, seconds in used.items()},
    }


async def _reached(counted: Callable[[], Coroutine[Any, Any, int]], at: int) -> bool:
    return await counted() >= at


def register_known(customers: CustomerApplication, known: int) -> None:
    """The customers the ERP names, registered in the customer service with its reference."""
    for n in range(known):
        customers.register(
            name=f"老客户 {n:06d}",
            kind="consumer",
            references=[{"source": KNOWN_SOURCE, "source_customer_id": f"K-{n:06d}"}],
        )


def run_pipeline(postgres: EmbeddedPostgres, count: int, processes: int = 1) -> dict[str, float]:
    """The end-to-end run, on a broker of its own (the inbound topic empty of the other runs'
    purchases)."""
    with EmbeddedBroker() as broker:
        return asyncio.run(pipeline(postgres, broker, count, processes))


def print_pipeline(figures: dict[str, float]) -> None:
    count, rate = figures["e2e_count"], figures["e2e_purchases_per_second"]
    processes = int(figures["e2e_fold_processes"])
    print(
        f"  end to end (inbound topic -> sales -> sales topic -> analytics profiles; "
        f"{figures['e2e_unseen_share']:.0%} of purchases by unseen customers; the sales and "
        f"customer services in a process each, the fold in {processes})"
    )
    print(
        f"    {rate:9.0f} purchases/s   target {TARGET}/s ({rate / TARGET:.2f} of it); "
        f"{figures['e2e_seconds']:.2f} s to every purchase in the profiles"
    )
    print(
        f"    {figures['e2e_all_per_second']:9.0f} purchases/s with their customers: "
        f"{figures['e2e_registered_seconds']:.2f} s until the "
        f"{figures['e2e_unseen_customers']:.0f} first-seen customers are registered in the "
        "profiles too"
    )
    users = ("sales", "customer", "fold", "postgres", "broker")
    total = sum(figures[f"e2e_{name}_cpu"] for name in users)
    print(
        "    CPU per purchase: "
        + ", ".join(
            f"{name} {figures[f'e2e_{name}_cpu'] / count * 1e6:.0f} µs "
            f"({figures[f'e2e_{name}_cpu']:.1f} s)"
            for name in users
        )
        + f"; in all {total / count * 1e6:.0f} µs, "
        f"{total / figures['e2e_registered_seconds']:.2f} cores"
    )
