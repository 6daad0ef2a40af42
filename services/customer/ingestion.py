"""Other services' topics the customer service turns into commands.

`FirstSeenCustomers` watches the sales and interaction topics for facts about customers
named only by another system's reference (a shop's purchase, a call centre's call). A
customer the CRM has never seen is registered, as first seen in that system, under the id
derived from the reference, so that every later fact with the same reference lands on it.
What later facts tell of it (`customer_hint`: name, phone, email) fills what is still
unknown, as events caused by those facts; nothing known is replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka.structs import ConsumerRecord
from pydantic import TypeAdapter, ValidationError

from contracts.customer import PersonalEmail, PersonalPhone
from contracts.envelope import EventEnvelope
from contracts.references import CustomerHint, CustomerReference, customer_id_for_reference
from contracts.registry import read_models
from contracts.tolerant import TolerantReader
from contracts.topics import Topic
from services.customer.application import CustomerApplication, Sighting
from services.runtime.messaging.consumer import Parsed
from services.runtime.messaging.deadletter import Rejection
from services.runtime.messaging.inbound import RecordedAggregates
from services.runtime.metrics import EVENTS_CONSUMED
from services.runtime.storage.eventstore import CommandContext

READER = TolerantReader(
    {
        model.event_type: ("customer_reference", "customer_hint")
        for model in read_models()
        if "customer_reference" in model.model_fields
    },
    envelope=("producer", "correlation_id"),
)
"""What `sighting_of` reads of the sales and interaction topics: the reference and hint of
every event that can name a customer by reference, validated alone (`contracts.tolerant`)."""

PHONE: TypeAdapter[str] = TypeAdapter(PersonalPhone)
EMAIL: TypeAdapter[str] = TypeAdapter(PersonalEmail)


def _fitting(kind: TypeAdapter[str], value: str | None) -> str | None:
    """A hinted value that a contact person can hold; None for one that cannot (another
    system's idea of a phone number need not be ours), so it is not recorded."""
    if not value:
        return None
    try:
        return kind.validate_python(value)
    except ValidationError:
        return None


def sighting_of(event: EventEnvelope[Any]) -> Sighting | None:
    """The customer an event names by reference, if it names one by the derived id."""
    reference = getattr(event.payload, "customer_reference", None)
    if not isinstance(reference, CustomerReference):
        return None
    if event.customer_id != customer_id_for_reference(reference):
        return None  # the publisher resolved the reference to a known customer
    hint = getattr(event.payload, "customer_hint", None)
    hint = hint if isinstance(hint, CustomerHint) else CustomerHint()
    return Sighting(
        customer_id=event.customer_id,
        source=reference.source,
        source_customer_id=reference.source_customer_id,
        name=hint.name or None,
        phone=_fitting(PHONE, hint.phone),
        email=_fitting(EMAIL, hint.email),
        cause=CommandContext(
            actor=event.producer,
            correlation_id=event.correlation_id or str(event.event_id),
            causation_id=str(event.event_id),
        ),
    )


class FirstSeenCustomers:
    name = "customer_first_seen"
    group_id = "crm.customer.first-seen"
    topics: Sequence[str] = (Topic.SALES, Topic.INTERACTION)

    def __init__(self, application: CustomerApplication, pool: asyncpg.Pool) -> None:
        self._application = application
        self._recorded = RecordedAggregates(application, pool)

    def parse(self, record: ConsumerRecord[Any, Any]) -> EventEnvelope[Any]:
        return READER.parse(record.value)

    def describe(self, value: EventEnvelope[Any]) -> str:
        return value.event_type

    async def prepare(self) -> None:
        return None

    def on_caught_up(self) -> None:
        return None

    async def handle(self, batch: Sequence[Parsed[EventEnvelope[Any]]]) -> list[Rejection]:
        sightings = [s for item in batch if (s := sighting_of(item.value)) is not None]
        registered = set()
        if sightings:
            existing = await self._recorded.among(list({s.customer_id for s in sightings}))
            registered = set(
                await asyncio.to_thread(self._application.register_first_seen, sightings, existing)
            )
        for item in batch:
            outcome = "applied" if item.value.customer_id in registered else "ignored"
            EVENTS_CONSUMED.labels(
                consumer=self.name,
                topic=item.record.topic,
                event_type=item.value.event_type,
                outcome=outcome,
            ).inc()
        return []
