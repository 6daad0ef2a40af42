"""`crm soak`: the load and the faults of `bench.soak` for a given time, then the table.

Development tooling, not run in CI (the fault-injection tests run a short form):
`crm soak --minutes 10` on embedded servers of its own, or `crm soak --up .crm` on the
services of a running `crm up`.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "soak",
        help="run a mixed load while killing services, pausing PostgreSQL and more; "
        "then compare what was accepted with the views, and print a table",
        description="A steady mixed load (HTTP commands; inbound purchases on Kafka and "
        "over HTTP, 5%% repeats and 10%% malformed) while every service is killed "
        "(SIGKILL) at random moments, PostgreSQL is paused and its connections are "
        "terminated, a second replica comes and goes and the broker is killed and "
        "started again; then every accepted command and acknowledged message is looked "
        "for in the views, every projection is compared with a rebuild and the analytic "
        "profiles with an independent computation. Exits 1 when anything was lost, "
        "doubled or differs.",
    )
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="how long the load runs (default 10)"
    )
    parser.add_argument(
        "--kills",
        type=int,
        default=10,
        help="SIGKILLs of each service, at random moments (default 10)",
    )
    parser.add_argument(
        "--pause", type=float, default=20.0, help="seconds PostgreSQL is paused (default 20)"
    )
    parser.add_argument("--seed", type=int, default=1, help="of the random choices (default 1)")
    parser.add_argument(
        "--up",
        type=Path,
        metavar="DIR",
        default=None,
        help="run on the services of the `crm up` whose data directory is DIR (e.g. .crm) "
        "instead of starting embedded servers; its broker is not killed (`crm up` stops "
        "when its broker dies)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where the embedded servers keep their data and the services' logs "
        "(default: a temporary directory, removed afterwards)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import tempfile

    from bench.soak.cluster import UpCluster
    from bench.soak.faults import Plan
    from bench.soak.run import SoakResult, embedded_cluster, soak

    if args.minutes <= 1 or args.kills < 0 or args.pause < 0:
        raise SystemExit("--minutes must be above 1, --kills and --pause not negative")
    logging.basicConfig(level=logging.WARNING)
    plan = Plan(seconds=args.minutes * 60, kills=args.kills, pause_seconds=args.pause, quiet=30)

    async def on_embedded(work_dir: Path) -> SoakResult:
        async with embedded_cluster(work_dir) as cluster:
            return await soak(cluster, plan, seed=args.seed)

    async def on_up(data_dir: Path, work_dir: Path) -> SoakResult:
        cluster = UpCluster(data_dir, work_dir)
        try:
            return await soak(cluster, plan, seed=args.seed)
        finally:
            await cluster.close()

    with tempfile.TemporaryDirectory(prefix="crm-soak-") as scratch:
        work_dir = args.work_dir.absolute() if args.work_dir else Path(scratch)
        work_dir.mkdir(parents=True, exist_ok=True)
        print(f"crm soak: logs in {work_dir / 'logs'}", flush=True)
        if args.up is not None:
            (work_dir / "logs").mkdir(exist_ok=True)
            result = asyncio.run(on_up(args.up.absolute(), work_dir / "logs"))
        else:
            result = asyncio.run(on_embedded(work_dir))
    print()
    print(result.table())
    problems = result.problems()
    if problems:
        print("\nproblems:")
        print("\n".join(f"  {p}" for p in problems))
    return 1 if problems else 0
