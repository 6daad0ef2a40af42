"""`crm rebuild SERVICE`: rebuild a service's projections from their topics, with a
progress bar, while the service keeps answering from the current ones."""

from __future__ import annotations

import argparse
import asyncio
import importlib
from typing import Any

from services import SERVICE_NAMES


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rebuild",
        help="rebuild a service's projections from the topics, without downtime",
        description="Build the projections afresh beside the current ones, from the start "
        "of their topics, then swap them in. The service keeps answering from the current "
        "tables until then. Uses CRM_DATABASE_URL and CRM_KAFKA_BOOTSTRAP_SERVERS.",
    )
    parser.add_argument("service", choices=SERVICE_NAMES)
    parser.add_argument(
        "--projection", action="append", help="only this projection (repeatable); default all"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaConsumer
    from tqdm import tqdm

    from services.runtime.messaging.kafka import connection_options
    from services.runtime.messaging.rebuild import Progress, rebuild_projections
    from services.runtime.messaging.signatures import SigningConfigError, verifier_from
    from services.runtime.privacy.keyring import Keyring, KeyringConfigError
    from services.runtime.privacy.sealing import PersonalData
    from services.runtime.settings import ServiceSettings, load_settings

    try:
        definition = importlib.import_module(f"services.{args.service}.service").DEFINITION
    except ModuleNotFoundError:
        raise SystemExit(f"the {args.service} service is not built yet") from None
    projections = list(definition.projections())
    if args.projection:
        unknown = set(args.projection) - {p.name for p in projections}
        if unknown:
            known = ", ".join(p.name for p in projections)
            raise SystemExit(f"no projection {', '.join(sorted(unknown))}; known: {known}")
        projections = [p for p in projections if p.name in args.projection]
    settings = load_settings(ServiceSettings)
    options = connection_options(settings)
    try:
        keyring = Keyring.from_settings(settings)
        verifier = verifier_from(settings)
    except (KeyringConfigError, SigningConfigError) as exc:
        raise SystemExit(f"invalid configuration: {exc}") from None
    keyring.open()
    bars: list[tqdm[Any]] = []

    def progress_for(name: str) -> Progress:
        bar: tqdm[Any] = tqdm(desc=name, unit=" events", dynamic_ncols=True)
        bars.append(bar)

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        return update

    reports = asyncio.run(
        rebuild_projections(
            projections,
            database_dsn=settings.database_dsn,
            schema=definition.name,
            consumer_factory=lambda **kw: AIOKafkaConsumer(**options, **kw),
            progress_for=progress_for,
            opener=PersonalData(keyring, definition.translate).open_records,
            verifier=verifier,
        )
    )
    keyring.close()
    for bar in bars:
        bar.close()
    for report in reports:
        print(report.summary())
    return 0
