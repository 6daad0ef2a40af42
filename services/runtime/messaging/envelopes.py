"""Builds contract envelopes from stored domain events.

The event id is derived from the aggregate id and version, so publishing the same stored
event twice yields the same id and consumers recognise the repeat.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from contracts.envelope import EventEnvelope, EventPayload, envelope_class
from services.runtime.storage.eventstore import event_metadata

EVENT_ID_NAMESPACE = UUID("6f1b7a52-3c1e-4e8a-9d55-2b8f6c0e4a11")


def stable_event_id(aggregate_id: UUID, version: int) -> UUID:
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}")


def envelope_from_domain_event(
    domain_event: Any,
    payload: EventPayload,
    *,
    customer_id: UUID,
    producer: str,
    occurred_at: datetime | None = None,
) -> EventEnvelope[Any]:
    meta = event_metadata(domain_event)
    recorded_at: datetime = domain_event.timestamp
    return cast(Any, envelope_class(type(payload)))(
        event_id=stable_event_id(domain_event.originator_id, domain_event.originator_version),
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        customer_id=customer_id,
        aggregate_id=domain_event.originator_id,
        aggregate_version=domain_event.originator_version,
        occurred_at=occurred_at or recorded_at,
        recorded_at=recorded_at,
        producer=producer,
        actor=meta.get("actor"),
        correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"),
        payload=payload,
    )
