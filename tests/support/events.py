"""Contract-shaped customer events, built as another system or a test would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson

from contracts import customer as contract
from contracts.envelope import EventEnvelope, EventPayload

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def envelope(
    customer_id: uuid.UUID, version: int, payload: EventPayload, **overrides: Any
) -> EventEnvelope[Any]:
    moment = BASE_TIME + timedelta(seconds=version)
    fields: dict[str, Any] = {
        "event_id": uuid.uuid5(customer_id, str(version)),
        "event_type": payload.event_type,
        "schema_version": payload.schema_version,
        "customer_id": customer_id,
        "aggregate_id": customer_id,
        "aggregate_version": version,
        "occurred_at": moment,
        "recorded_at": moment,
        "producer": "tests",
        "payload": payload,
        **overrides,
    }
    envelope_class: Any = cast(Any, EventEnvelope)[type(payload)]
    return envelope_class(**fields)


def customer_history(customer_id: uuid.UUID, name: str, tags: int) -> list[EventEnvelope[Any]]:
    """A registration followed by `tags` tag events: version 1 .. tags + 1."""
    events = [envelope(customer_id, 1, contract.CustomerRegistered(name=name, kind="consumer"))]
    events += [
        envelope(customer_id, v + 2, contract.CustomerTagged(tags=[f"tag-{v}"]))
        for v in range(tags)
    ]
    return events


def as_message(event: EventEnvelope[Any]) -> tuple[bytes, bytes]:
    return str(event.customer_id).encode(), event.model_dump_json().encode()


def raw_envelope(
    event_type: str, customer: uuid.UUID, payload: dict[str, Any], at: datetime, **extra: Any
) -> tuple[bytes, bytes]:
    """(key, value) of an envelope as a service publishes it, its payload as given (not
    validated: it may hold what the contracts refuse today); `recorded_at` defaults to `at`."""
    document = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "customer_id": str(customer),
        "aggregate_id": str(extra.get("aggregate_id") or uuid.uuid4()),
        "aggregate_version": extra.get("aggregate_version", 1),
        "occurred_at": at.isoformat(),
        "recorded_at": extra.get("recorded_at", at).isoformat(),
        "producer": "tests",
        "payload": payload,
    }
    return str(customer).encode(), orjson.dumps(document)
