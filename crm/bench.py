"""`crm bench`: measurements that print figures.

`crm bench projection-latency` starts its own embedded PostgreSQL, broker and customer
service on free ports, registers customers one after another over HTTP, and for each one
measures the time from sending the command until the customer is readable from the
directory projection (command → event store → outbox relay → Kafka → projection
consumer → PostgreSQL → HTTP query).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark and print its figures")
    benchmarks = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    latency = benchmarks.add_parser(
        "projection-latency",
        help="time from a registration command to the customer in the directory projection",
    )
    latency.add_argument("--count", type=int, default=1000, help="registrations (default 1000)")
    latency.add_argument(
        "--url",
        default=None,
        help="measure a running customer service instead of starting one",
    )
    latency.add_argument(
        "--token",
        default=None,
        help="with --url: a bearer token allowed to register customers (default: "
        "CRM_TOKEN, else one from the secret `crm up` keeps in ./.crm)",
    )
    latency.set_defaults(handler=run_projection_latency)
    ingestion = benchmarks.add_parser(
        "purchase-ingestion",
        help="inbound purchases per second, batched, beside one transaction per purchase",
    )
    ingestion.add_argument("--count", type=int, default=20_000, help="purchases (default 20000)")
    ingestion.set_defaults(handler=run_purchase_ingestion)
    search = benchmarks.add_parser(
        "keyword-search",
        help="keyword search latency over many interactions, with the query plans",
    )
    search.add_argument(
        "--count", type=int, default=1_000_000, help="interactions (default 1000000)"
    )
    search.set_defaults(handler=run_keyword_search)
    fold = benchmarks.add_parser(
        "analytics-fold",
        help="events per second of the analytics fold, beside raw consume and one "
        "transaction per event",
    )
    fold.add_argument("--customers", type=int, default=10_000, help="customers (default 10000)")
    fold.add_argument(
        "--baseline-events",
        type=int,
        default=3000,
        help="events for the one-transaction-per-event baseline (default 3000)",
    )
    fold.set_defaults(handler=run_analytics_fold)
    rfm = benchmarks.add_parser(
        "rfm-rescore",
        help="RFM re-scoring after new purchases, beside scoring every customer",
    )
    rfm.add_argument(
        "--customers", type=int, default=1_000_000, help="customers who bought (default 1000000)"
    )
    rfm.add_argument("--purchases", type=int, default=10_000, help="new purchases (default 10000)")
    rfm.set_defaults(handler=run_rfm_rescore)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


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
        from crm.tokens import TokenError, cli_token

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


def run_purchase_ingestion(args: argparse.Namespace) -> int:
    from crm.bench_sales import run_purchase_ingestion as measure

    measure(args.count)
    return 0


def run_keyword_search(args: argparse.Namespace) -> int:
    from crm.bench_interaction import run_keyword_search as measure

    measure(args.count)
    return 0


def run_analytics_fold(args: argparse.Namespace) -> int:
    from crm.bench_analytics import run_analytics_fold as measure

    if args.customers < 1 or args.baseline_events < 1:
        raise SystemExit("--customers and --baseline-events must be at least 1")
    measure(args.customers, args.baseline_events)
    return 0


def run_rfm_rescore(args: argparse.Namespace) -> int:
    from crm.bench_rfm import run_rfm_rescore as measure

    if args.customers < 1 or not 1 <= args.purchases <= args.customers:
        raise SystemExit("--customers must be at least 1, --purchases 1 to --customers")
    measure(args.customers, args.purchases)
    return 0


def _with_own_stack(count: int) -> dict[str, float]:
    from contracts.topics import Topic
    from services.runtime.database import ensure_database
    from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
    from services.runtime.kafka import ensure_topics
    from services.runtime.processes import ServiceProcess

    with tempfile.TemporaryDirectory(prefix="crm-bench-") as scratch:
        root = Path(scratch)
        with EmbeddedPostgres(root / "postgres") as postgres, EmbeddedBroker() as broker:
            database_url = postgres.dsn("crm_bench")
            asyncio.run(ensure_database(database_url))
            asyncio.run(ensure_topics(broker.bootstrap_servers, list(Topic)))
            service = ServiceProcess(
                "customer",
                database_url=database_url,
                bootstrap_servers=broker.bootstrap_servers,
                log_dir=root,
                # the measurement polls the directory as fast as it can; no rate limit
                extra_env={"CRM_RATE_LIMIT_PER_MINUTE": "0"},
            )
            service.start()
            try:
                return asyncio.run(measure_projection_latency(service.url, count, service.token()))
            finally:
                service.stop()
