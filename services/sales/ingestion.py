"""Ingestion of completed purchases from other systems (`Topic.PURCHASES_INBOUND`).

`PurchaseIngestion` records each purchase once (`services.runtime.messaging.reported_facts`:
per batch, the customers named by reference resolved in one query, the purchases already
recorded found in one query, the new ones saved in one `save()`, one transaction); its
id derives from the source and the order id. The outbox relay then publishes them on the
sales topic. A re-delivered batch finds its purchases recorded and records nothing twice.

Parsing gives a reason a publisher can act on. Reasons (the `dlq.reason` header of the
dead-lettered message) are a small fixed set, so that they can label metrics: `empty
message`, `malformed JSON`, `not a JSON object`, `missing field`, `wrong type`, `negative
amount`, `unknown currency`, `no customer named`, `bad customer reference`, `date in
the future`, `date out of range`, `control character`, `too long`, `invalid purchase`.
`dlq.detail` names the field and the problem.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from contracts.inbound.purchases import PurchaseCompleted
from contracts.registry import describe_validation_error
from contracts.sales_values import SUPPORTED_CURRENCIES
from contracts.topics import Topic
from services.runtime.messaging.deadletter import Rejection
from services.runtime.messaging.inbound import parse_inbound
from services.runtime.messaging.reported_facts import NewFact, ReportedFacts
from services.sales.application import NewPurchase, SalesApplication
from services.sales.domain import purchase_id

# Parsing -----------------------------------------------------------------------------


def parse_purchase(raw: bytes | None) -> PurchaseCompleted:
    return parse_inbound(
        raw, PurchaseCompleted, invalid="invalid purchase", specific=_reason, detail=_detail
    )


def _reason(field: str, kind: str, error: ErrorDetails) -> str | None:
    if field == "currency" and kind == "enum":
        return "unknown currency"
    if field == "amount" and kind in ("greater_than", "greater_than_equal"):
        return "negative amount"  # 0 is a free order, and a purchase
    if kind == "value_error" and not error["loc"]:
        return "no customer named"
    return None


def _detail(error: ValidationError) -> str:
    detail = describe_validation_error(error)
    if any(e["type"] == "enum" and e["loc"][:1] == ("currency",) for e in error.errors()):
        currency = next(e["input"] for e in error.errors() if e["loc"][:1] == ("currency",))
        detail = (
            f"currency: {currency!r} is not a supported ISO 4217 code "
            f"(supported: {', '.join(SUPPORTED_CURRENCIES)})"
        )
    return detail


# Recording ---------------------------------------------------------------------------


NAME = "sales_purchases_inbound"
GROUP_ID = "crm.sales.purchases-inbound"


class PurchaseIngestion(ReportedFacts[PurchaseCompleted]):
    def __init__(self, application: SalesApplication, pool: asyncpg.Pool) -> None:
        super().__init__(
            name=NAME,
            group_id=GROUP_ID,
            topic=Topic.PURCHASES_INBOUND,
            label="purchase",
            application=application,
            pool=pool,
        )
        self._application = application

    def parse(self, record: ConsumerRecord[Any, Any]) -> PurchaseCompleted:
        return parse_purchase(record.value)

    def fact_id(self, message: PurchaseCompleted) -> UUID:
        return purchase_id(message.source, message.order_id)

    async def record(
        self, fresh: list[NewFact[PurchaseCompleted]]
    ) -> tuple[list[UUID], list[Rejection]]:
        purchases = [new_purchase(f.item.value, f.customer_id) for f in fresh]
        return await asyncio.to_thread(self._application.record_purchases, purchases), []


def new_purchase(message: PurchaseCompleted, customer_id: UUID) -> NewPurchase:
    """The purchase to record, on the customer the message names (`customer_of`)."""
    reference = message.customer_reference
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
