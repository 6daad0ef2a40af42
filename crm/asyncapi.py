"""Generates the committed AsyncAPI document (`contracts/asyncapi.json`) from the brokers
the services run: `python -m crm.asyncapi`.

Each service's FastStream broker is built as its runtime builds it
(`services.runtime.service.declared_broker`): the publishers of what it publishes and
its subscribers (`ServiceDefinition.subscriptions`), declared by the same code as when
it runs, with handlers that never run here. FastStream draws the document from all of
them; `contracts.asyncapi.complete` adds what FastStream cannot express (examples,
Kafka keys, headers). The contracts package only reads the document.
"""

from __future__ import annotations

import sys
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from contracts.asyncapi import (
    ASYNCAPI_FILE,
    ASYNCAPI_VERSION,
    DESCRIPTION,
    complete,
    document_version,
    render,
)
from crm.acls import definition_of
from local.up.layout import SERVICES

BROKER_DESCRIPTION = (
    "The embedded broker of `crm up`; in production, your Kafka cluster "
    "(CRM_KAFKA_BOOTSTRAP_SERVERS)."
)


def service_brokers() -> list[KafkaBroker]:
    """Every service's broker, with its publishers and subscribers declared."""
    from services.runtime.service import declared_broker
    from services.runtime.settings import ServiceSettings

    return [
        declared_broker(definition_of(spec.name), ServiceSettings(), BROKER_DESCRIPTION)
        for spec in SERVICES
    ]


def build_document() -> dict[str, Any]:
    specification = AsyncAPI(
        *service_brokers(),
        title="CRM event contracts",
        version=document_version(),
        description=DESCRIPTION,
        schema_version=ASYNCAPI_VERSION,
    ).to_specification()
    document: dict[str, Any] = specification.to_jsonable()
    return complete(document)


def main() -> int:
    ASYNCAPI_FILE.write_text(render(build_document()), encoding="utf-8")
    print(f"wrote {ASYNCAPI_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
