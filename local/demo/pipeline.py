"""A sales history the win model can learn from, loaded through the sales API.

`await load(sales_url, customer_ids, token)` opens `CLOSED` deals and closes them, won or
lost, and opens `OPEN` more that stay in the pipeline. Whether a deal is won truly
depends on its product (the enterprise licence is won three times in four, the standard
licence every other time, the analytics module once in five), so the win model learns
something the stages' defaults do not know. A third of the closed deals carry a demo
whose owner predicted that the customer would ask for a quote, which held when the deal
was won.

Once the models are fitted (`local.demo.analytics`), `await close_after_fit(...)` closes
`CLOSE_AFTER_FIT` of the open deals the same way, so that the ledger of predictions
settles the probabilities the model and the stages' defaults gave them. Every outcome
is drawn beforehand from one seeded generator: loading twice closes the same deals the
same way.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from local.demo.sales import open_opportunity, post_json

SEED = 20261202
PRODUCTS: dict[str, tuple[float, str]] = {
    "企业版年度许可": (0.75, "1200.00"),
    "标准版年度许可": (0.5, "480.00"),
    "数据分析模块": (0.2, "2600.00"),
}
"""Product -> (the chance a deal for it is won, its unit price in CNY)."""
OWNERS = ("李娜", "王磊", "刘洋", "陈静")
REGIONS = ("华东", "华南", "华北", "西南")
OPEN_STAGES = ("qualified", "proposal", "negotiation")
LOST_REASONS = ("客户选择了价格更低的供应商", "预算被削减", "项目延期到明年")
CLOSED = 90
OPEN = 30
CLOSE_AFTER_FIT = 20
CONCURRENCY = 8
"""Deals loaded at the same time."""


@dataclass(frozen=True)
class Plan:
    """One deal: what it is opened with, and how it closes (if it does)."""

    product: str
    quantity: int
    region: str
    owner: str
    stage: str
    close_in_days: int
    won: bool
    lost_reason: str
    predicted: bool
    """A demo with its owner's prediction before it closes."""

    def closing(self) -> dict[str, Any]:
        return {"stage": "won"} if self.won else {"stage": "lost", "lost_reason": self.lost_reason}


def plans(count: int, rng: random.Random) -> list[Plan]:
    found = []
    for n in range(count):
        product = list(PRODUCTS)[n % len(PRODUCTS)]
        found.append(
            Plan(
                product=product,
                quantity=rng.randint(5, 60),
                region=rng.choice(REGIONS),
                owner=OWNERS[n % len(OWNERS)],
                stage=rng.choice(OPEN_STAGES),
                close_in_days=rng.randint(7, 90),
                won=rng.random() < PRODUCTS[product][0],
                lost_reason=rng.choice(LOST_REASONS),
                predicted=n % 3 == 0,
            )
        )
    return found


@dataclass
class Pipeline:
    """What was loaded: how many deals closed, and the open ones with their plan."""

    closed: int = 0
    open: dict[str, Plan] = field(default_factory=dict)


async def _opened(client: httpx.AsyncClient, plan: Plan, customer_id: str) -> str:
    return await open_opportunity(
        client,
        {
            "customer_id": customer_id,
            "description": f"{plan.product} {plan.quantity} 套",
            "products": [
                {
                    "product": plan.product,
                    "quantity": plan.quantity,
                    "unit_price": PRODUCTS[plan.product][1],
                }
            ],
            "currency": "CNY",
            "expected_close_date": str(
                datetime.now(UTC).date() + timedelta(days=plan.close_in_days)
            ),
            "region": plan.region,
            "owner": plan.owner,
            "stage": plan.stage,
        },
    )


async def _closed(client: httpx.AsyncClient, plan: Plan, customer_id: str) -> None:
    opportunity_id = await _opened(client, plan, customer_id)
    path = f"/opportunities/{opportunity_id}"
    if plan.predicted:
        await post_json(
            client,
            f"{path}/activities",
            {
                "kind": "demo",
                "date": str(datetime.now(UTC).date()),
                "description": "产品演示",
                "predicted_result": "客户要求报价",
                "actual_result": "客户要求报价" if plan.won else "客户暂不考虑",
                "prediction_held": plan.won,
            },
        )
    await post_json(client, f"{path}/stage", plan.closing())


async def load(sales_url: str, customer_ids: list[str], token: str) -> Pipeline:
    """The closed and open deals, spread over the customers (with a manager's or an
    administrator's token)."""
    if not customer_ids:
        raise ValueError("the pipeline demo needs at least one customer id")
    rng = random.Random(SEED)
    closed, still_open = plans(CLOSED, rng), plans(OPEN, rng)
    pipeline = Pipeline()
    headers = {"Authorization": f"Bearer {token}"}
    slots = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=sales_url, timeout=30, headers=headers) as client:

        async def close_one(n: int, plan: Plan) -> None:
            async with slots:
                await _closed(client, plan, customer_ids[n % len(customer_ids)])
            pipeline.closed += 1

        async def open_one(n: int, plan: Plan) -> None:
            async with slots:
                customer = customer_ids[(CLOSED + n) % len(customer_ids)]
                pipeline.open[await _opened(client, plan, customer)] = plan

        await asyncio.gather(
            *(close_one(n, p) for n, p in enumerate(closed)),
            *(open_one(n, p) for n, p in enumerate(still_open)),
        )
    return pipeline


async def close_after_fit(sales_url: str, token: str, pipeline: Pipeline) -> int:
    """Close `CLOSE_AFTER_FIT` of the open deals as planned; answers how many."""
    headers = {"Authorization": f"Bearer {token}"}
    chosen = sorted(pipeline.open)[:CLOSE_AFTER_FIT]
    async with httpx.AsyncClient(base_url=sales_url, timeout=30, headers=headers) as client:
        for opportunity_id in chosen:
            plan = pipeline.open.pop(opportunity_id)
            await post_json(client, f"/opportunities/{opportunity_id}/stage", plan.closing())
    return len(chosen)
