"""`crm bench`: measurements that print figures, one module per benchmark in `bench/`.

Development tooling: the production image carries neither this package nor the
embedded servers the benchmarks start.
"""

from __future__ import annotations

import argparse


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
        help="inbound purchases per second, batched, beside one transaction per purchase; "
        "and end to end, from the inbound topic to the analytics profiles, half of them "
        "by customers never seen before",
    )
    ingestion.add_argument("--count", type=int, default=20_000, help="purchases (default 20000)")
    ingestion.add_argument(
        "--fold-processes",
        type=int,
        default=1,
        help="the analytics fold of the end-to-end run in this many processes of one "
        "consumer group (default 1)",
    )
    ingestion.add_argument(
        "--quix-processes",
        type=int,
        default=1,
        help="the Quix Streams application beside it (with the bench-quix extra) in this "
        "many processes of one consumer group (default 1: in the benchmark's own process)",
    )
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
        help="events per second of the analytics fold, beside raw consume, one "
        "transaction per event and Quix Streams (with the bench-quix extra)",
    )
    fold.add_argument("--customers", type=int, default=10_000, help="customers (default 10000)")
    fold.add_argument(
        "--baseline-events",
        type=int,
        default=3000,
        help="events for the one-transaction-per-event baseline (default 3000)",
    )
    fold.add_argument(
        "--fold-processes",
        type=int,
        default=2,
        help="also fold in this many processes of one consumer group, as analytics "
        "replicas do (default 2; 1 leaves that row out)",
    )
    fold.set_defaults(handler=run_analytics_fold)
    memory = benchmarks.add_parser(
        "fold-memory",
        help="resident memory of the analytics fold over a large population",
    )
    memory.add_argument(
        "--customers", type=int, default=1_000_000, help="customers (default 1000000)"
    )
    memory.add_argument(
        "--cache",
        type=int,
        default=None,
        help="profiles kept in memory (default: the service's, CRM_ANALYTICS_PROFILE_CACHE_SIZE)",
    )
    memory.set_defaults(handler=run_fold_memory)
    rfm = benchmarks.add_parser(
        "rfm-rescore",
        help="RFM re-scoring after new purchases, beside scoring every customer",
    )
    rfm.add_argument(
        "--customers", type=int, default=1_000_000, help="customers who bought (default 1000000)"
    )
    rfm.add_argument("--purchases", type=int, default=10_000, help="new purchases (default 10000)")
    rfm.set_defaults(handler=run_rfm_rescore)
    imports = benchmarks.add_parser(
        "import",
        help="rows per second and memory of a customer import from a generated CSV file",
    )
    imports.add_argument(
        "--rows", type=int, default=1_000_000, help="rows of the file (default 1000000)"
    )
    imports.add_argument(
        "--batch-size", type=int, default=1000, help="rows per transaction (default 1000)"
    )
    imports.add_argument(
        "--workers",
        default="1,2",
        help="the worker processes of each run, comma-separated: the file is imported "
        "once per count, into a database of its own (default 1,2)",
    )
    imports.set_defaults(handler=run_customer_import)
    refill = benchmarks.add_parser(
        "refill",
        help="a history published again into an empty broker: relay and consumers, "
        "skipping by position beside recognising by id",
    )
    refill.add_argument(
        "--customers", type=int, default=10_000, help="registrations (default 10000)"
    )
    refill.set_defaults(handler=run_refill)
    duplicates = benchmarks.add_parser(
        "duplicates",
        help="duplicate detection over a whole directory: blocking, candidate pairs, "
        "scoring, recall of planted duplicates",
    )
    duplicates.add_argument(
        "--customers", type=int, default=100_000, help="customers (default 100000)"
    )
    duplicates.add_argument(
        "--planted", type=int, default=1000, help="planted duplicates among them (default 1000)"
    )
    duplicates.set_defaults(handler=run_duplicates)
    queue = benchmarks.add_parser(
        "duplicate-queue",
        help="registrations per second of the directory projection keeping the queue of "
        "possible duplicates, beside without it; the query plans of search and queue",
    )
    queue.add_argument(
        "--customers", type=int, default=100_000, help="registrations (default 100000)"
    )
    queue.add_argument(
        "--planted", type=int, default=1000, help="planted duplicates among them (default 1000)"
    )
    queue.set_defaults(handler=run_duplicate_queue)
    publishing = benchmarks.add_parser(
        "publishing",
        help="CPU per relayed message published through the relay's aiokafka producer, "
        "beside FastStream's publisher",
    )
    publishing.add_argument(
        "--count", type=int, default=50_000, help="events per round (default 50000)"
    )
    publishing.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    publishing.set_defaults(handler=run_publishing)
    idle = benchmarks.add_parser(
        "idle",
        help="CPU the whole stack uses at rest, with notified relays beside polling ones, "
        "and the command-to-projection latency of each",
    )
    idle.add_argument(
        "--seconds", type=float, default=60, help="length of the measurement (default 60)"
    )
    idle.add_argument(
        "--latency-count",
        type=int,
        default=500,
        help="registrations timed after the measurement (default 500; 0: none)",
    )
    idle.add_argument(
        "--only",
        choices=("polling", "notified"),
        default=None,
        help="measure one configuration only",
    )
    idle.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        type=_setting,
        help="a setting for the services of every configuration (repeatable)",
    )
    idle.add_argument(
        "--attach",
        type=int,
        default=None,
        metavar="PID",
        help="measure the processes of a running `crm up` (its process id) instead",
    )
    idle.set_defaults(handler=run_idle)


def _setting(text: str) -> str:
    name, equals, _ = text.partition("=")
    if not equals or not name.startswith("CRM_"):
        raise argparse.ArgumentTypeError(f"expected CRM_NAME=VALUE, got {text!r}")
    return text


def run_projection_latency(args: argparse.Namespace) -> int:
    from bench.projection_latency import run_projection_latency as measure

    return measure(args)


def run_purchase_ingestion(args: argparse.Namespace) -> int:
    from bench.purchase_ingestion import run_purchase_ingestion as measure

    if args.count < 1 or args.fold_processes < 1 or args.quix_processes < 1:
        raise SystemExit("--count, --fold-processes and --quix-processes must be at least 1")
    measure(args.count, args.fold_processes, args.quix_processes)
    return 0


def run_keyword_search(args: argparse.Namespace) -> int:
    from bench.keyword_search import run_keyword_search as measure

    measure(args.count)
    return 0


def run_analytics_fold(args: argparse.Namespace) -> int:
    from bench.analytics_fold import run_analytics_fold as measure

    if args.customers < 1 or args.baseline_events < 1 or args.fold_processes < 1:
        raise SystemExit("--customers and --baseline-events must be at least 1")
    measure(args.customers, args.baseline_events, args.fold_processes)
    return 0


def run_fold_memory(args: argparse.Namespace) -> int:
    from bench.fold_memory import CACHE
    from bench.fold_memory import run_fold_memory as measure

    if args.customers < 1 or (args.cache is not None and args.cache < 0):
        raise SystemExit("--customers must be at least 1 and --cache at least 0")
    measure(args.customers, CACHE if args.cache is None else args.cache)
    return 0


def run_rfm_rescore(args: argparse.Namespace) -> int:
    from bench.rfm_rescore import run_rfm_rescore as measure

    if args.customers < 1 or not 1 <= args.purchases <= args.customers:
        raise SystemExit("--customers must be at least 1, --purchases 1 to --customers")
    measure(args.customers, args.purchases)
    return 0


def run_customer_import(args: argparse.Namespace) -> int:
    from bench.customer_import import run_customer_import as measure

    try:
        workers = [int(count) for count in args.workers.split(",")]
    except ValueError:
        raise SystemExit("--workers: worker counts separated by commas, such as 1,2") from None
    if args.rows < 1 or args.batch_size < 1 or min(workers) < 1:
        raise SystemExit("--rows, --batch-size and each --workers must be at least 1")
    measure(args.rows, args.batch_size, workers)
    return 0


def run_refill(args: argparse.Namespace) -> int:
    from bench.refill import run_refill as measure

    return measure(args)


def run_duplicates(args: argparse.Namespace) -> int:
    from bench.duplicates import run_duplicates as measure

    if not 0 <= args.planted < args.customers:
        raise SystemExit("--planted must be at least 0 and fewer than --customers")
    measure(args.customers, args.planted)
    return 0


def run_duplicate_queue(args: argparse.Namespace) -> int:
    from bench.duplicate_queue import run_duplicate_queue as measure

    if not 0 <= args.planted < args.customers:
        raise SystemExit("--planted must be at least 0 and fewer than --customers")
    measure(args.customers, args.planted)
    return 0


def run_publishing(args: argparse.Namespace) -> int:
    from bench.publishing import run_publishing as measure

    if args.count < 1 or args.rounds < 1:
        raise SystemExit("--count and --rounds must be at least 1")
    measure(args.count, args.rounds)
    return 0


def run_idle(args: argparse.Namespace) -> int:
    from bench.idle import run_idle as measure

    return measure(args)
