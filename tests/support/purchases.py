"""Purchases folded into the analytics tables as the sales service publishes them
(`sales.purchase_recorded`), for the integration tests of the models and the ledger."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from contracts import sales
from contracts.envelope import EventEnvelope, payload_example
from services.analytics.domain.money import Converter
from services.analytics.projections.fold import AnalyticsFold
from services.analytics.projections.rescoring import rescore
from tests.support.cdnow import Purchase
from tests.support.events import envelope

EXAMPLE = payload_example(sales.PurchaseRecorded)
BATCH = 2000


def shop_purchase(order_id: str, amount: str, **customer: Any) -> dict[str, Any]:
    """A completed purchase as the shop `shop-cn` publishes it on the inbound topic,
    naming its customer as `customer` says (`customer_id=` or `customer_reference=`)."""
    return {
        "source": "shop-cn",
        "order_id": order_id,
        **customer,
        "amount": amount,
        "currency": "CNY",
        "items": [
            {"sku": "LIC-STD", "name": "标准版月度订阅", "quantity": 1, "unit_price": amount}
        ],
        "channel": "online",
        "occurred_at": "2026-11-20T10:00:00+08:00",
    }


def recorded(purchase: Purchase) -> EventEnvelope[Any]:
    """The purchase as the sales service publishes it."""
    payload = sales.PurchaseRecorded.model_validate(
        {**EXAMPLE, "order_id": purchase.order_id, "amount": str(purchase.amount)}
    )
    return envelope(
        purchase.customer_id,
        1,
        payload,
        event_id=uuid.uuid4(),
        aggregate_id=None,
        occurred_at=purchase.occurred_at,
        recorded_at=purchase.occurred_at,
    )


async def fold(pool: asyncpg.Pool, purchases: Sequence[Purchase], now: datetime) -> None:
    """Fold the purchases (the fold's clock at `now`), then move the RFM boundaries
    (value tiers) to them, as the service does in the background."""
    analytics = AnalyticsFold(Converter("CNY"), lambda: now)
    events = [recorded(p) for p in purchases]
    for start in range(0, len(events), BATCH):
        async with pool.acquire() as connection, connection.transaction():
            await analytics.apply(connection, events[start : start + BATCH])
    async with pool.acquire() as connection, connection.transaction():
        await rescore(connection, now)
