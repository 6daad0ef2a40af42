"""Command to projection latency: `crm bench projection-latency --count 1000`.

Starts its own embedded PostgreSQL, broker and customer service on free ports (or
measures a running one with `--url`), registers customers one after another over HTTP,
and for each one measures the time from sending the command until the customer is
readable from the directory projection (command → event store → outbox relay → Kafka →
projection consumer → PostgreSQL → HTTP query).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.figures import percentile

if TYPE_CHECKING:
    from local.launcher import ServiceProcess


async def measure_projection_latency(url: str, count: int, token: str) -> dict[str, float]:
    import httpx

    command_seconds: list[float] = []
    visible_seconds: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        started_all = time.perf_counter()
        for i in range(count):
            started = time.perf_counter()
            response = await client.post(
                "/customers",
                json={"name": f"基准客户 {i:05d}", "kind": "consumer", "tags": ["bench"]},
            )
            response.raise_for_status()
            command_seconds.append(time.perf_counter() - started)
            path = f"/customers/{response.json()['customer_id']}"
            while (await client.get(path)).status_code != 200:
                await asyncio.sleep(0.001)
            visible_seconds.append(time.perf_counter() - started)
        elapsed = time.perf_counter() - started_all
    return {
        "count": count,
        "command_median_ms": statistics.median(command_seconds) * 1000,
        "command_p99_ms": percentile(command_seconds, 0.99) * 1000,
        "projection_median_ms": statistics.median(visible_seconds) * 1000,
        "projection_p90_ms": percentile(visible_seconds, 0.90) * 1000,
        "projection_p99_ms": percentile(visible_seconds, 0.99) * 1000,
        "projection_max_ms": max(visible_seconds) * 1000,
        "registrations_per_second": count / elapsed,
    }


def run_projection_latency(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise SystemExit("--count must be at least 1")
    if args.url:
        from local.tokens import TokenError, cli_token

        try:
            token = cli_token(args.token)
        except TokenError as error:
            raise SystemExit(f"crm bench: error: {error}") from None
        figures = asyncio.run(measure_projection_latency(args.url, args.count, token))
    else:
        figures = _with_own_stack(args.count)
    print(f"command → projection latency over {figures['count']:.0f} registrations")
    print(
        f"  command answered   median {figures['command_median_ms']:7.1f} ms"
        f"   p99 {figures['command_p99_ms']:7.1f} ms"
    )
    print(
        f"  in the projection  median {figures['projection_median_ms']:7.1f} ms"
        f"   p90 {figures['projection_p90_ms']:7.1f} ms"
        f"   p99 {figures['projection_p99_ms']:7.1f} ms"
        f"   max {figures['projection_max_ms']:7.1f} ms"
    )
    print(f"  sequential registrations per second: {figures['registrations_per_second']:.0f}")
    return 0


def _with_own_stack(count: int) -> dict[str, float]:
    with own_services(["customer"]) as (service,):
        return asyncio.run(measure_projection_latency(service.url, count, service.token()))


@contextlib.contextmanager
def own_services(
    names: Sequence[str], env: Mapping[str, str] | None = None
) -> Iterator[list[ServiceProcess]]:
    """The services `names`, started and ready, with settings `env`, on an embedded
    PostgreSQL and broker of their own (all stopped afterwards)."""
    from contracts.topics import Topic
    from local.embedded.broker import EmbeddedBroker
    from local.embedded.postgres import EmbeddedPostgres
    from local.launcher import ServiceProcess
    from services.runtime.messaging.kafka import ensure_topics
    from services.runtime.storage.database import ensure_database

    with tempfile.TemporaryDirectory(prefix="crm-bench-") as scratch:
        root = Path(scratch)
        with EmbeddedPostgres(root / "postgres") as postgres, EmbeddedBroker() as broker:
            database_url = postgres.dsn("crm_bench")
            asyncio.run(ensure_database(database_url))
            asyncio.run(ensure_topics(broker.bootstrap_servers, list(Topic)))
            services = [
                ServiceProcess(
                    name,
                    database_url=database_url,
                    bootstrap_servers=broker.bootstrap_servers,
                    log_dir=root,
                    # the measurement polls the directory as fast as it can; no rate limit
                    extra_env={"CRM_RATE_LIMIT_PER_MINUTE": "0", **(env or {})},
                )
                for name in names
            ]
            try:
                for service in services:
                    service.start(wait_ready=False)
                for service in services:
                    service.wait_ready(120)
                yield services
            finally:
                for service in services:
                    service.stop()
