"""Ingestion of completed purchases from other systems (`Topic.PURCHASES_INBOUND`).

Per batch of inbound messages, not per message:
1. each message is parsed; what does not fit the contract is dead-lettered with a reason;
2. the customers named by reference are resolved in one query against the reference
   mapping folded from the customer topic; a reference the CRM has never seen gets the
   customer id derived from it (the customer service registers that customer);
3. the purchase ids (derived from source and order id) already in the event store are
   found in one query, and repeats within the batch are dropped;
4. the new purchases are saved in one `save()`, one transaction.
The outbox relay then publishes them on the sales topic. A re-delivered batch finds its
purchases recorded and records nothing twice.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka.structs import ConsumerRecord

from contracts.references import CustomerReference, customer_id_for_reference
from contracts.sales import PurchaseCompleted
from contracts.topics import Topic
from services.runtime.customer_replica import resolve_references
from services.runtime.messaging.consumer import Parsed
from services.runtime.messaging.deadletter import Rejection
from services.runtime.messaging.inbound import RecordedAggregates
from services.runtime.metrics import EVENTS_CONSUMED
from services.sales.application import NewPurchase, SalesApplication
from services.sales.domain import purchase_id
from services.sales.inbound import parse_purchase


class PurchaseIngestion:
    name = "sales_purchases_inbound"
    group_id = "crm.sales.purchases-inbound"
    topics: Sequence[str] = (Topic.PURCHASES_INBOUND,)

    def __init__(self, application: SalesApplication, pool: asyncpg.Pool) -> None:
        self._application = application
        self._pool = pool
        self._recorded = RecordedAggregates(application, pool)

    def parse(self, record: ConsumerRecord[Any, Any]) -> PurchaseCompleted:
        return parse_purchase(record.value)

    def describe(self, value: PurchaseCompleted) -> str:
        return "purchase"

    async def prepare(self) -> None:
        return None

    def on_caught_up(self) -> None:
        return None

    async def handle(self, batch: Sequence[Parsed[PurchaseCompleted]]) -> list[Rejection]:
        known = await resolve_references(
            self._pool,
            list(
                {
                    (r.source, r.source_customer_id)
                    for item in batch
                    if item.value.customer_id is None and (r := item.value.customer_reference)
                }
            ),
        )
        derived = functools.lru_cache(maxsize=None)(customer_id_for_reference)
        candidates: dict[UUID, NewPurchase] = {}
        for item in batch:
            candidates.setdefault(
                purchase_id(item.value.source, item.value.order_id),
                new_purchase(item.value, known, derived),
            )
        existing = await self._recorded.among(list(candidates))
        fresh = [p for i, p in candidates.items() if i not in existing]
        recorded = await asyncio.to_thread(self._application.record_purchases, fresh)
        for outcome, number in (
            ("applied", len(recorded)),
            ("duplicate", len(batch) - len(recorded)),
        ):
            if number:
                EVENTS_CONSUMED.labels(
                    consumer=self.name,
                    topic=Topic.PURCHASES_INBOUND,
                    event_type="purchase",
                    outcome=outcome,
                ).inc(number)
        return []


def new_purchase(
    message: PurchaseCompleted,
    known: dict[tuple[str, str], UUID],
    derive: Callable[[CustomerReference], UUID] = customer_id_for_reference,
) -> NewPurchase:
    """The purchase to record, with the customer it lands on."""
    reference = message.customer_reference
    if message.customer_id is not None:
        customer_id = message.customer_id
    else:
        assert reference is not None  # the contract requires one of the two
        found = known.get((reference.source, reference.source_customer_id))
        customer_id = found if found is not None else derive(reference)
    return NewPurchase(
        source=message.source,
        order_id=message.order_id,
        customer_id=customer_id,
        amount=message.amount,
        currency=message.currency.value,
        items=[i.model_dump(mode="json") for i in message.items],
        channel=message.channel,
        occurred_at=message.occurred_at,
        customer_reference=reference.model_dump(mode="json") if reference else None,
        customer_hint=(
            message.customer_hint.model_dump(mode="json") if message.customer_hint else None
        ),
    )
