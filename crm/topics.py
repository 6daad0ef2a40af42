"""`crm topics`: create every topic the CRM uses on a Kafka cluster; existing ones stay.
`crm topics acls`: print the script giving each principal its users and ACLs (`crm.acls`)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "topics",
        help="create the CRM's topics on the cluster of CRM_KAFKA_BOOTSTRAP_SERVERS",
        description="Create every topic of contracts/topics.py that the cluster does not "
        "have yet, with the retention the CRM expects. Existing topics are left alone. "
        "`crm topics acls` prints the script giving each Kafka user its ACLs instead.",
    )
    parser.add_argument("--partitions", type=int, default=6, help="for new topics (default 6)")
    parser.add_argument(
        "--replication-factor", type=int, default=1, help="for new topics (default 1)"
    )
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    acls = actions.add_parser(
        "acls",
        help="print the script creating the SASL users and Kafka ACLs",
        description="Print a shell script that creates each principal's SCRAM user and "
        "the ACLs letting each service write only its own topic and the dead-letter "
        "topic, and read what it consumes (see crm/acls.py). Connects to nothing.",
    )
    acls.add_argument(
        "--output", type=Path, help="write the script to this file instead of printing it"
    )
    acls.set_defaults(handler=print_acls)


def run(args: argparse.Namespace) -> int:
    from contracts.topics import Topic
    from services.runtime.messaging.kafka import connection_options, ensure_topics
    from services.runtime.settings import ServiceSettings, load_settings

    settings = load_settings(ServiceSettings)
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap_servers,
            list(Topic),
            partitions=args.partitions,
            replication_factor=args.replication_factor,
            options=connection_options(settings),
        )
    )
    for topic in Topic:
        print(f"{topic:34} {topic.description}")
    return 0


def print_acls(args: argparse.Namespace) -> int:
    from crm.acls import grants, script

    text = script(grants())
    if args.output is None:
        print(text, end="")
    else:
        args.output.write_text(text)
        args.output.chmod(0o755)
    return 0
