"""The envelope every event on Kafka travels in, and how to build one."""

import functools
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar, cast
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.values import Line, Moment


class EventPayload(BaseModel):
    """Base of every event payload. Subclasses name their type and schema version."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


PayloadT = TypeVar("PayloadT", bound=BaseModel | dict[str, Any])


class EventEnvelope(BaseModel, Generic[PayloadT]):
    """Metadata common to every event, around a typed payload.

    `customer_id` is the Kafka message key, so all events of one customer are on one
    partition, in order. `event_id` is stable across re-deliveries and re-publications:
    consumers de-duplicate on it.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: UUID = Field(description="Unique and stable id of this event; de-duplicate on it.")
    event_type: Line = Field(description="Dotted name of the event, e.g. customer.registered.")
    schema_version: int = Field(ge=1, description="Version of the payload schema.")
    customer_id: UUID = Field(description="The customer the event is about; the partition key.")
    aggregate_id: UUID | None = Field(
        default=None, description="The aggregate that recorded the event, if any."
    )
    aggregate_version: int | None = Field(
        default=None, ge=1, description="Version of the aggregate after this event."
    )
    occurred_at: Moment = Field(description="When the fact happened in the world.")
    recorded_at: Moment = Field(description="When the CRM recorded the fact.")
    producer: Line = Field(description="The service or system that published the event.")
    actor: Line | None = Field(default=None, description="Who caused the event.")
    correlation_id: Line | None = Field(
        default=None, description="Id shared by everything one request or message caused."
    )
    causation_id: Line | None = Field(
        default=None, description="Id of the request or event that directly caused this one."
    )
    payload: PayloadT


P = TypeVar("P", bound=EventPayload)


@functools.cache
def envelope_class(model: type[EventPayload]) -> type[EventEnvelope[Any]]:
    """`EventEnvelope[model]`, made once and kept: pydantic keeps its parametrised
    generics only weakly, so one asked for anew, per event, is often built again, which
    costs more than validating the event."""
    return EventEnvelope[model]  # type: ignore[valid-type]


def build_envelope(
    payload: P,
    *,
    customer_id: UUID,
    producer: str,
    event_id: UUID | None = None,
    occurred_at: datetime | None = None,
    recorded_at: datetime | None = None,
    aggregate_id: UUID | None = None,
    aggregate_version: int | None = None,
    actor: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> EventEnvelope[P]:
    """A valid envelope around `payload`: its type and version come from the payload's class.

    A new random `event_id` unless given (give a stable one when the same fact may be
    published again, so that consumers recognise the repeat); `recorded_at` defaults to
    now and `occurred_at` to `recorded_at`.
    """
    recorded = recorded_at or datetime.now(UTC)
    envelope: EventEnvelope[P] = cast(Any, envelope_class(type(payload)))(
        event_id=event_id or uuid.uuid4(),
        event_type=payload.event_type,
        schema_version=payload.schema_version,
        customer_id=customer_id,
        aggregate_id=aggregate_id,
        aggregate_version=aggregate_version,
        occurred_at=occurred_at or recorded,
        recorded_at=recorded,
        producer=producer,
        actor=actor,
        correlation_id=correlation_id,
        causation_id=causation_id,
        payload=payload,
    )
    return envelope


EXAMPLE_CUSTOMER_ID = UUID("0b6f5c1e-3d2a-4c1b-9e8f-7a6b5c4d3e2f")
_EXAMPLE_NAMESPACE = UUID("3c9b8e7a-1f2d-4a5b-8c6d-7e8f9a0b1c2d")


def payload_example(model: type[BaseModel]) -> dict[str, Any]:
    """The first example a contract model shows in its JSON Schema."""
    examples = model.model_json_schema().get("examples") or []
    if not examples:
        raise LookupError(f"{model.__name__} has no example")
    example: dict[str, Any] = examples[0]
    return example


def example_envelope(model: type[EventPayload]) -> dict[str, Any]:
    """A complete example message of `model` as it travels on Kafka (JSON-ready)."""
    service = model.event_type.partition(".")[0]
    moment = datetime(2026, 11, 23, 1, 30, tzinfo=UTC)
    envelope = build_envelope(
        model.model_validate(payload_example(model)),
        customer_id=EXAMPLE_CUSTOMER_ID,
        producer=f"crm.{service}",
        event_id=uuid.uuid5(_EXAMPLE_NAMESPACE, f"{model.event_type}:{model.schema_version}"),
        occurred_at=moment,
        recorded_at=moment.replace(second=2),
        aggregate_id=uuid.uuid5(_EXAMPLE_NAMESPACE, service),
        aggregate_version=3,
        actor="li.na",
        correlation_id="8f14e45f-ceea-467f-a0e6-1c7c5b0a9d21",
        causation_id="8f14e45f-ceea-467f-a0e6-1c7c5b0a9d21",
    )
    return envelope.model_dump(mode="json")
