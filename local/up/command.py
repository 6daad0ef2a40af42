"""`crm up`, the subcommand: its arguments, and the supervisor run until it stops."""

import argparse
import asyncio
from pathlib import Path

from local.up.supervisor import Supervisor


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "up",
        help="run PostgreSQL, a Kafka broker and every service locally",
        description="Run the whole CRM on this machine: an embedded PostgreSQL (data kept "
        "in DIR/postgres), an embedded Kafka-protocol broker (in memory) and every "
        "service, with demo customers. Ports come from CRM_POSTGRES_PORT (5432), "
        "CRM_KAFKA_PORT (9092), CRM_CUSTOMER_PORT (8001), CRM_SALES_PORT (8002), "
        "CRM_INTERACTION_PORT (8003) and CRM_ANALYTICS_PORT (8004). Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".crm"),
        metavar="DIR",
        help="where the database and the logs live (default: ./.crm)",
    )
    parser.add_argument("--fresh", action="store_true", help="delete the database and logs first")
    parser.add_argument(
        "--no-demo", action="store_true", help="do not load demo customers into an empty directory"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).expanduser().absolute()
    try:
        supervisor = Supervisor(data_dir, fresh=args.fresh, demo=not args.no_demo)
        return asyncio.run(supervisor.run())
    except KeyboardInterrupt:  # before the signal handlers were installed
        return 130
