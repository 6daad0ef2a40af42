"""The envelope every event on Kafka travels in."""

from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


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
    event_type: str = Field(description="Dotted name of the event, e.g. customer.registered.")
    schema_version: int = Field(ge=1, description="Version of the payload schema.")
    customer_id: UUID = Field(description="The customer the event is about; the partition key.")
    aggregate_id: UUID | None = Field(
        default=None, description="The aggregate that recorded the event, if any."
    )
    aggregate_version: int | None = Field(
        default=None, ge=1, description="Version of the aggregate after this event."
    )
    occurred_at: AwareDatetime = Field(description="When the fact happened in the world.")
    recorded_at: AwareDatetime = Field(description="When the CRM recorded the fact.")
    producer: str = Field(description="The service or system that published the event.")
    actor: str | None = Field(default=None, description="Who caused the event.")
    correlation_id: str | None = Field(
        default=None, description="Id shared by everything one request or message caused."
    )
    causation_id: str | None = Field(
        default=None, description="Id of the request or event that directly caused this one."
    )
    payload: PayloadT
