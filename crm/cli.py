"""Entry point of the `crm` command.

Each subcommand lives in its own module exposing `register(subparsers)`, which adds its
parser and sets `handler`: a function taking the parsed arguments and returning the exit
status. Heavy imports happen inside the handlers, so importing this module is cheap and
starts nothing.

The operations commands (`crm/`) are always there. The development commands (`crm up`,
`crm token`, `crm demo` from `local/`, and `crm bench` and `crm soak` from `bench/`) are
there when those packages are installed, as they are in a checkout; the production image
leaves them out.

Every command reads its settings from the environment (`CRM_DATABASE_URL`,
`CRM_KAFKA_BOOTSTRAP_SERVERS`, the key files...). Beside a local CRM, the settings file
`crm up` writes (`.crm/crm.env`, or the file `CRM_ENV_FILE` names) fills in what the
environment does not set, so that the commands work on the CRM `crm up` runs, on its
ports. A command that cannot reach the broker or the database says so in one line.
"""

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from crm import backup, deadletters, imports, rebuild, topics

OPERATIONS: tuple[ModuleType, ...] = (topics, backup, rebuild, deadletters, imports)
DEVELOPMENT = (
    "local.up.command",
    "local.tokens",
    "local.demo.customers",
    "bench.cli",
    "bench.soak.cli",
)
"""Modules of the development commands, registered when importable."""


def development_commands() -> list[ModuleType]:
    found = []
    for name in DEVELOPMENT:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as missing:
            if missing.name is None or not name.startswith(missing.name):
                raise
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm",
        description="Event-sourced CRM: operate it, or run it locally with demo data.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (*development_commands(), *OPERATIONS):
        module.register(subparsers)
    return parser


LOCAL_SETTINGS = Path(".crm") / "crm.env"


def load_local_settings() -> None:
    """The settings `crm up` wrote, for what the environment does not set."""
    path = Path(os.environ.get("CRM_ENV_FILE") or LOCAL_SETTINGS)
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        name, separator, value = line.partition("=")
        if separator and not line.lstrip().startswith("#"):
            os.environ.setdefault(name.strip(), value.strip())


def unreachable(error: BaseException) -> str | None:
    """A line saying which server could not be reached, or None for other errors."""
    from urllib.parse import urlsplit

    from aiokafka.errors import KafkaError

    servers = os.environ.get("CRM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    database = urlsplit(os.environ.get("CRM_DATABASE_URL", "postgresql://127.0.0.1:5432"))
    where = f"{database.hostname}:{database.port or 5432}"
    if isinstance(error, KafkaError):
        return f"cannot reach the Kafka broker at {servers} (CRM_KAFKA_BOOTSTRAP_SERVERS): {error}"
    if isinstance(error, OSError):
        return (
            f"cannot reach the database at {where} (CRM_DATABASE_URL) or the Kafka broker at "
            f"{servers} (CRM_KAFKA_BOOTSTRAP_SERVERS): {error}"
        )
    module = type(error).__module__.split(".")[0]
    if module in ("asyncpg", "psycopg", "psycopg_pool"):
        return f"cannot use the database at {where} (CRM_DATABASE_URL): {error}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "up":
        load_local_settings()
        # the clients' own complaints about an unreachable server would bury the one
        # line this command prints instead
        for client in ("aiokafka", "psycopg", "asyncpg"):
            logging.getLogger(client).setLevel(logging.CRITICAL)
    try:
        status: int = args.handler(args)
    except Exception as error:
        line = unreachable(error)
        if line is None:
            raise
        sys.stderr.write(f"crm {args.command}: {line}\n")
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
