"""`crm topics`: create every topic the CRM uses on a Kafka cluster; existing ones stay."""

from __future__ import annotations

import argparse
import asyncio


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "topics",
        help="create the CRM's topics on the cluster of CRM_KAFKA_BOOTSTRAP_SERVERS",
        description="Create every topic of contracts/topics.py that the cluster does not "
        "have yet, with the retention the CRM expects. Existing topics are left alone.",
    )
    parser.add_argument("--partitions", type=int, default=6, help="for new topics (default 6)")
    parser.add_argument(
        "--replication-factor", type=int, default=1, help="for new topics (default 1)"
    )
    parser.set_defaults(handler=run)


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
