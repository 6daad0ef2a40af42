"""Recording facts other systems report (purchases, calls, messages, survey answers), each
exactly once, on the customer each one names.

A handler of an inbound topic works per batch of messages, not per message:
1. each message is parsed (`parse`, with `services.runtime.messaging.inbound.parse_inbound`);
   what does not fit the contract is dead-lettered with a reason;
2. the customers the batch names only by reference are resolved in one query against
   the reference mapping folded from the customer topic; a reference the CRM has never
   seen gets the customer id derived from it (the customer service registers that
   customer, as first seen in the sending system);
3. each fact's aggregate id derives from the sender's (source, id) (`fact_id`); those
   the event store holds already are found in one query, and repeats within the batch
   are dropped;
4. the new facts are recorded (`record`, one `save()` for the batch).
A re-delivered or re-sent message finds its fact recorded and records nothing twice.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import asyncpg
from aiokafka.structs import ConsumerRecord

from contracts.references import CustomerReference, customer_id_for_reference
from services.runtime.customer_aliases import survivors
from services.runtime.customer_replica import resolve_references
from services.runtime.messaging.consumer import Parsed
from services.runtime.messaging.deadletter import Rejection
from services.runtime.messaging.inbound import RecordedAggregates
from services.runtime.metrics import EVENTS_CONSUMED
from services.runtime.storage.eventstore import EventSourcedApplication


class NamesCustomer(Protocol):
    """An inbound message naming its customer by CRM id, by reference, or both."""

    @property
    def customer_id(self) -> UUID | None: ...

    @property
    def customer_reference(self) -> CustomerReference | None: ...


M = TypeVar("M", bound=NamesCustomer)


async def known_customers(
    pool: asyncpg.Pool, messages: Iterable[NamesCustomer]
) -> dict[tuple[str, str], UUID]:
    """The CRM customers known by the references of the messages that give no CRM id."""
    return await resolve_references(
        pool,
        list(
            {
                (r.source, r.source_customer_id)
                for message in messages
                if message.customer_id is None and (r := message.customer_reference)
            }
        ),
    )


def customer_of(
    message: NamesCustomer,
    known: dict[tuple[str, str], UUID],
    derive: Callable[[CustomerReference], UUID] = customer_id_for_reference,
) -> UUID:
    """The CRM id of the customer the message names: given, known by its reference, or
    derived from the reference."""
    if message.customer_id is not None:
        return message.customer_id
    reference = message.customer_reference
    assert reference is not None  # every inbound contract requires one of the two
    found = known.get((reference.source, reference.source_customer_id))
    return found if found is not None else derive(reference)


@dataclass(frozen=True)
class NewFact(Generic[M]):
    """A message whose fact the event store does not hold yet."""

    aggregate_id: UUID
    item: Parsed[M]
    customer_id: UUID


class ReportedFacts(ABC, Generic[M]):
    """A `BatchHandler` recording one inbound topic's facts, each exactly once."""

    def __init__(
        self,
        *,
        name: str,
        group_id: str,
        topic: str,
        label: str,
        application: EventSourcedApplication,
        pool: asyncpg.Pool,
    ) -> None:
        self.name = name
        self.group_id = group_id
        self.topics: Sequence[str] = (topic,)
        self.label = label
        """The metrics' `event_type` of every message of the topic."""
        self._pool = pool
        self._recorded = RecordedAggregates(application, pool)

    @abstractmethod
    def parse(self, record: ConsumerRecord[Any, Any]) -> M:
        """The message as its contract model, or `ContractViolation` with a reason."""

    @abstractmethod
    def fact_id(self, message: M) -> UUID:
        """The aggregate id of the message's fact, derived from the sender's (source, id)."""

    @abstractmethod
    async def record(self, fresh: list[NewFact[M]]) -> tuple[list[UUID], list[Rejection]]:
        """Record the new facts; the ids recorded now, and the messages that cannot be."""

    def describe(self, value: M) -> str:
        return self.label

    async def prepare(self) -> None:
        return None

    def on_caught_up(self) -> None:
        return None

    async def handle(self, batch: Sequence[Parsed[M]]) -> list[Rejection]:
        return (await self.ingest(batch))[1]

    async def ingest(self, batch: Sequence[Parsed[M]]) -> tuple[list[Parsed[M]], list[Rejection]]:
        """Record the batch's new facts (committed when this returns): the messages whose
        facts were recorded now, and those that cannot be; the others were recorded
        before (or repeat one of the batch)."""
        known = await known_customers(self._pool, (item.value for item in batch))
        derive = functools.lru_cache(maxsize=None)(customer_id_for_reference)
        candidates: dict[UUID, Parsed[M]] = {}
        for item in batch:
            candidates.setdefault(self.fact_id(item.value), item)
        existing = await self._recorded.among(list(candidates))
        named = {
            aggregate_id: (item, customer_of(item.value, known, derive))
            for aggregate_id, item in candidates.items()
            if aggregate_id not in existing
        }
        merged = await survivors(self._pool, [c for _, c in named.values()])
        fresh = [  # a customer merged into another: the fact lands on the survivor
            NewFact(aggregate_id, item, merged.get(customer_id, customer_id))
            for aggregate_id, (item, customer_id) in named.items()
        ]
        recorded, rejections = await self.record(fresh)
        for outcome, number in (
            ("applied", len(recorded)),
            ("duplicate", len(batch) - len(recorded) - len(rejections)),
        ):
            if number:
                EVENTS_CONSUMED.labels(
                    consumer=self.name, topic=self.topics[0], event_type=self.label, outcome=outcome
                ).inc(number)
        now = set(recorded)
        return [f.item for f in fresh if f.aggregate_id in now], rejections
