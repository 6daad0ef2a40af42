"""Entry point of the `crm` command.

Each subcommand lives in its own module exposing `register(subparsers)`, which adds its
parser and sets `handler`: a function taking the parsed arguments and returning the exit
status. Heavy imports happen inside the handlers, so importing this module is cheap and
starts nothing.

The operations commands (`crm/`) are always there. The development commands (`crm up`,
`crm token`, `crm demo` from `local/`, and `crm bench` from `bench/`) are there when those
packages are installed, as they are in a checkout; the production image leaves them out.
"""

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from crm import backup, deadletters, rebuild, topics

OPERATIONS: tuple[ModuleType, ...] = (topics, backup, rebuild, deadletters)
DEVELOPMENT = ("local.up", "local.tokens", "local.demo.customers", "bench.cli")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
