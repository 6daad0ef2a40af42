"""Under a steady load of commands readiness stays 200 while the projections are a few
events behind (it used to flip to 503 whenever a batch was in flight), and turns 503,
with a sentence naming the consumer, once a consumer stalls or falls beyond
`CRM_READINESS_MAX_LAG_EVENTS`; it is 200 again by itself once the consumer caught up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from local.launcher import ServiceProcess
from tests.support.infrastructure import Infrastructure
from tests.support.waiting import eventually

MAX_LAG = 100
CLIENTS = 6


@dataclass
class Load:
    """Customers registered by `CLIENTS` clients, one request after another each."""

    service: ServiceProcess
    registered: int = 0
    answers: set[int] = field(default_factory=set)

    async def client(self, n: int) -> None:
        async with self.service.client(timeout=30) as client:
            while True:
                body = {"name": f"负载客户 {n}-{self.registered}", "kind": "business"}
                self.answers.add((await client.post("/customers", json=body)).status_code)
                self.registered += 1


@contextlib.asynccontextmanager
async def steady_load(service: ServiceProcess) -> AsyncIterator[Load]:
    load = Load(service)
    tasks = [asyncio.create_task(load.client(n)) for n in range(CLIENTS)]
    try:
        yield load
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert load.answers == {201}, load.answers


@dataclass
class Probe:
    """Every readiness answer seen, for assertions about all of them afterwards."""

    client: httpx.AsyncClient
    seen: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    async def ask(self) -> tuple[int, dict[str, Any]]:
        answer = await self.client.get("/health/ready")
        self.seen.append((answer.status_code, answer.json()))
        return self.seen[-1]


async def test_readiness_allows_a_bounded_lag_under_load(infra: Infrastructure) -> None:
    service = infra.service(
        "customer",
        CRM_READINESS_MAX_LAG_EVENTS=str(MAX_LAG),
        CRM_READINESS_MAX_STALL_SECONDS="2",
        # small batches: catching up takes many of them, each measured
        CRM_CONSUMER_MAX_RECORDS="10",
        CRM_RATE_LIMIT_PER_MINUTE="0",  # the load, not a limit, decides the pace
    )
    await asyncio.to_thread(service.start)
    try:
        async with service.client(timeout=10) as client, steady_load(service) as load:
            probe = Probe(client)

            async def loaded_and_seen_behind() -> bool:
                await probe.ask()
                behind = [b for _, b in probe.seen if not b["checks"]["projections_caught_up"]]
                return load.registered >= 5 * MAX_LAG and bool(behind)

            await eventually(loaded_and_seen_behind, describe="a load, readiness seen behind")
            statuses = [status for status, _ in probe.seen]
            assert set(statuses) == {200}, [(s, b) for s, b in probe.seen if s != 200][:3]
            behind = [body for _, body in probe.seen if not body["checks"]["projections_caught_up"]]
            assert behind and all(b["checks"]["projections_within_lag"] for b in behind), behind

            blocker = await asyncpg.connect(infra.database_url)
            try:
                async with blocker.transaction():
                    # the projection's batches wait; the commands go on
                    await blocker.execute(
                        "LOCK TABLE customer.customer_directory IN ACCESS EXCLUSIVE MODE"
                    )
                    until = load.registered + 5 * MAX_LAG

                    async def stalled() -> bool:
                        status, body = await probe.ask()
                        problems = " ".join(body["problems"])
                        return status == 503 and "customer_directory" in problems

                    await eventually(stalled, describe="not ready: customer_directory stalled")
                    assert "has handled nothing for" in " ".join(probe.seen[-1][1]["problems"])
                    await eventually(lambda: load.registered >= until, describe="a backlog")
            finally:
                await blocker.close()

            async def beyond() -> bool:
                status, body = await probe.ask()
                return status == 503 and body["lag"]["customer_directory"] > MAX_LAG

            await eventually(beyond, describe=f"not ready: more than {MAX_LAG} behind")
            assert "CRM_READINESS_MAX_LAG_EVENTS" in " ".join(probe.seen[-1][1]["problems"])

            async def ready_again() -> bool:
                status, _ = await probe.ask()
                return status == 200

            await eventually(ready_again, timeout=60, describe="ready again, under load")
    finally:
        await asyncio.to_thread(service.stop)
