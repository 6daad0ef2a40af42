"""The sales and customer services' parts of the end-to-end purchase run, each in a
process of its own, as they are deployed (`bench.purchase_pipeline`).

- The sales service's process: its customer replica (`CUSTOMERS`, folded from the
  customer topic), its outbox relay onto the sales topic and, once the benchmark says go,
  its purchase ingestion (`PurchaseIngestion` as a FastStream batch subscriber of the
  inbound topic), noting when the first batch reached it.
- The customer service's process: its first-seen customers (`FirstSeenCustomers` as a
  FastStream batch subscriber of the sales topic) and its outbox relay onto the customer
  topic (without a keyring: no personal values are sealed).

The analytics fold runs in processes of its own too (`bench.fold_processes`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Coroutine
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.figures import cpu_seconds
from bench.purchase_ingestion import TimedIngestion, sales_relay, subscribed
from contracts.topics import Topic
from services.customer.application import CustomerApplication
from services.customer.ingestion import FirstSeenCustomers
from services.customer.publishing import to_contract as customer_contract
from services.runtime.messaging.consumer import BatchConsumer
from services.runtime.messaging.deadletter import DeadLetterPublisher
from services.runtime.messaging.outbox import OutboxRelay
from services.runtime.messaging.projection import Projection, ProjectionHandler
from services.runtime.messaging.subscribers import InboundBroker
from services.runtime.storage.database import create_pool
from services.runtime.storage.eventstore import open_event_store
from services.sales.application import SalesApplication
from services.sales.projections import CUSTOMERS


def folding(projection: Projection, pool: asyncpg.Pool, servers: str) -> BatchConsumer[Any]:
    """`projection` behind the `ProjectionHandler` in a `BatchConsumer`, as services run
    their projections."""
    return BatchConsumer(
        handler=ProjectionHandler(projection, pool),
        consumer_factory=lambda *topics, **kw: AIOKafkaConsumer(
            *topics, bootstrap_servers=servers, **kw
        ),
        dead_letters=DeadLetterPublisher(lambda: AIOKafkaProducer(bootstrap_servers=servers), "b"),
        max_records=2000,
    )


class _Shared:
    """What the service processes and the benchmark share."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.ready = context.Array("b", 2)
        self.go: Synchronized[int] = context.Value("b", 0)
        self.first_batch_at: Synchronized[float] = context.Value("d", 0.0)
        self.context = context


def _sales_service(shared: _Shared, database_url: str, servers: str) -> None:
    asyncio.run(_sales(shared, database_url, servers))


async def _sales(shared: _Shared, database_url: str, servers: str) -> None:
    pool = await create_pool(database_url, "sales")
    sales = await open_event_store(SalesApplication, database_url, "sales")
    jobs: list[Coroutine[Any, Any, None]] = [
        folding(CUSTOMERS, pool, servers).run(),
        sales_relay(sales, database_url, servers, Topic.SALES).run(),
    ]
    tasks = [asyncio.create_task(job) for job in jobs]
    shared.ready[0] = 1
    while not shared.go.value:
        await asyncio.sleep(0.005)
    handler = TimedIngestion(sales, pool)

    def note_first_batch() -> None:
        shared.first_batch_at.value = time.perf_counter()

    handler.at_first_batch = note_first_batch
    ingestion, broker = subscribed(handler, servers, "sales")
    tasks += [
        asyncio.create_task(InboundBroker(broker, [ingestion]).run()),
        asyncio.create_task(ingestion.run()),
    ]
    await asyncio.gather(*tasks)


def _customer_service(shared: _Shared, database_url: str, servers: str) -> None:
    asyncio.run(_customer(shared, database_url, servers))


async def _customer(shared: _Shared, database_url: str, servers: str) -> None:
    pool = await create_pool(database_url, "customer")
    customers = await open_event_store(CustomerApplication, database_url, "customer")
    first_seen, broker = subscribed(FirstSeenCustomers(customers, pool), servers, "customer")
    relay = OutboxRelay(
        application=customers,
        database_dsn=database_url,
        schema="customer",
        topic=Topic.CUSTOMER,
        translate=customer_contract,
        producer_factory=lambda: AIOKafkaProducer(
            bootstrap_servers=servers, acks="all", linger_ms=5, max_batch_size=1 << 20
        ),
        batch_size=2000,
    )
    jobs = [InboundBroker(broker, [first_seen]).run(), first_seen.run(), relay.run()]
    tasks = [asyncio.create_task(job) for job in jobs]
    shared.ready[1] = 1
    await asyncio.gather(*tasks)


class ServiceProcesses:
    """The sales and customer services' processes on their databases: started by
    `start`, told to ingest by `go`, ended by `stop`."""

    def __init__(self, sales_url: str, customer_url: str, servers: str) -> None:
        self.shared = _Shared()
        self.sales = self.shared.context.Process(
            target=_sales_service, args=(self.shared, sales_url, servers)
        )
        self.customer = self.shared.context.Process(
            target=_customer_service, args=(self.shared, customer_url, servers)
        )
        self._watched: dict[str, psutil.Process] = {}

    async def start(self) -> None:
        """Start both and wait until each runs its consumers and relay."""
        for process in (self.sales, self.customer):
            process.start()
        self._watched = {
            "sales": psutil.Process(self.sales.pid),
            "customer": psutil.Process(self.customer.pid),
        }
        while not all(self.shared.ready[:]):
            for process in (self.sales, self.customer):
                if not process.is_alive():
                    raise RuntimeError(f"a service process ended ({process.exitcode})")
            await asyncio.sleep(0.01)

    def go(self) -> None:
        """Let the sales service's ingestion start reading the inbound topic."""
        self.shared.go.value = 1

    @property
    def first_batch_at(self) -> float | None:
        return self.shared.first_batch_at.value or None

    def cpu(self) -> dict[str, float]:
        """The CPU seconds each process used so far."""
        return {name: cpu_seconds(process) for name, process in self._watched.items()}

    def stop(self) -> None:
        for process in (self.sales, self.customer):
            process.terminate()
        for process in (self.sales, self.customer):
            process.join(10)
