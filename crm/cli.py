"""Entry point of the `crm` command.

Each subcommand lives in its own module exposing `register(subparsers)`, which adds its
parser and sets `handler`: a function taking the parsed arguments and returning the exit
status. Heavy imports happen inside the handlers, so importing this module is cheap and
starts nothing.
"""

import argparse
import sys
from collections.abc import Sequence

from crm import backup, bench, deadletters, demo, rebuild, tokens, topics, up

SUBCOMMANDS = (up, tokens, demo, topics, backup, rebuild, deadletters, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm",
        description="Event-sourced CRM: run it locally and load demo data.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
