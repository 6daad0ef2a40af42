"""Demo sales data, loaded through the sales API: `await load(sales_url, customer_ids)`.

A handful of opportunities across the pipeline (lead to won and lost, one gone backwards,
one overdue), key activities with predicted and actual results, versioned quotes, and a
won deal with its signed contract and two payments. Dates are relative to today, so the
pipeline, overdue list and monthly analysis look alive whenever the demo is loaded.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

CENT = Decimal("0.01")

# description, products (name, quantity, unit price), currency, region, owner,
# days until expected close, stages to move through, lost reason
_Deal = tuple[str, list[tuple[str, int, str]], str, str, str, int, list[str], str | None]
DEALS: tuple[_Deal, ...] = (
    ("ERP 升级项目: 企业版年度许可及实施服务",
     [("企业版年度许可", 50, "1200.00"), ("实施服务", 20, "1500.00")],
     "CNY", "华东", "李娜", 20, ["qualified", "proposal", "negotiation", "won"], None),
    ("全国门店收银系统替换",
     [("标准版年度许可", 120, "480.00"), ("硬件集成服务", 1, "36000.00")],
     "CNY", "华南", "王磊", 45, ["qualified", "proposal", "qualified", "proposal"], None),
    ("数据分析平台试点",
     [("数据分析模块", 10, "2600.00")],
     "CNY", "华北", "刘洋", -12, ["qualified"], None),
    ("海外子公司 CRM 许可",
     [("企业版年度许可", 15, "180.00")],
     "USD", "华东", "陈静", 60, ["qualified", "proposal", "negotiation"], None),
    ("仓储管理系统二期",
     [("仓储模块年度许可", 8, "5200.00"), ("培训服务", 3, "4000.00")],
     "CNY", "西南", "Kevin Xu", 10, ["qualified", "proposal", "lost"],
     "客户选择了价格更低的本地供应商"),
    ("呼叫中心坐席扩容",
     [("坐席许可", 40, "900.00")],
     "CNY", "华东", "李娜", 90, [], None),
)  # fmt: skip

DEMO_TEAMS: dict[str, list[str]] = {
    "国内": ["wang.jun", "李娜", "王磊", "刘洋", "陈静", "li.na", "wang.fang", "zhang.wei"],
    "海外": ["Kevin Xu"],
}
"""The sales teams of `crm up` (`CRM_SALES_TEAMS`): the demo manager (`wang.jun`) leads
the owners of the demo deals but one, whose deal the demo rep and manager do not see."""

# kind, days from today, people, description, predicted result, actual result, held
_Activity = tuple[str, int, list[str], str, str | None, str | None, bool | None]
ACTIVITIES: tuple[_Activity, ...] = (
    ("visit", -20, ["张伟", "李娜"], "首次拜访采购经理, 了解现有系统痛点",
     "客户同意安排产品演示", "客户同意下周演示", True),
    ("demo", -14, ["张伟", "IT 主管 王强"], "现场演示企业版报表与审批流",
     "客户确认进入报价阶段", "IT 主管要求先做两周试点", False),
    ("negotiation", -5, ["财务总监 赵敏"], "价格与付款条件谈判",
     "以九五折成交, 分两期付款", "以九五折成交, 分两期付款", True),
    ("signing", 5, ["张伟", "李娜"], "合同签署仪式", "顺利签约", None, None),
)  # fmt: skip


async def open_opportunity(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """Open an opportunity; a customer registered a moment ago may take a second to
    reach the sales service, so a 'not known' answer is retried for a while, and so is
    a 429 (these retries count against the caller's rate limit) after its Retry-After."""
    deadline = time.monotonic() + 30
    while True:
        response = await client.post("/opportunities", json=body)
        if response.status_code == 201:
            opportunity_id: str = response.json()["opportunity_id"]
            return opportunity_id
        limited = response.status_code == 429
        if not (limited or "not known" in response.text) or time.monotonic() > deadline:
            response.raise_for_status()
            raise RuntimeError(f"opening an opportunity failed: {response.text}")
        wait = float(response.headers.get("Retry-After", "1")) if limited else 0.2
        await asyncio.sleep(min(wait, 5.0))


async def post_json(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    if response.status_code >= 400:
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text}")
    result: dict[str, Any] = response.json()
    return result


async def load(sales_url: str, customer_ids: list[str], token: str) -> None:
    """Create the demo opportunities for the given customers (at least one), sending
    `token` (it must be allowed to work anyone's opportunities: a manager or administrator)."""
    if not customer_ids:
        raise ValueError("the sales demo needs at least one customer id")
    today = datetime.now(UTC).date()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=sales_url, timeout=30, headers=headers) as client:
        for index, deal in enumerate(DEALS):
            await _load_deal(client, deal, customer_ids[index % len(customer_ids)], today)


async def _load_deal(client: httpx.AsyncClient, deal: _Deal, customer_id: str, today: date) -> None:
    description, products, currency, region, owner, close_in, stages, lost_reason = deal
    lines = [{"product": p, "quantity": q, "unit_price": price} for p, q, price in products]
    opportunity_id = await open_opportunity(
        client,
        {
            "customer_id": customer_id,
            "description": description,
            "products": lines,
            "currency": currency,
            "expected_close_date": str(today + timedelta(days=close_in)),
            "region": region,
            "owner": owner,
        },
    )
    path = f"/opportunities/{opportunity_id}"
    won = stages[-1:] == ["won"]
    if won:
        for kind, days, people, text, predicted, actual, held in ACTIVITIES:
            await post_json(
                client,
                f"{path}/activities",
                {
                    "kind": kind,
                    "date": str(today + timedelta(days=days)),
                    "people": people,
                    "description": text,
                    "predicted_result": predicted,
                    "actual_result": actual,
                    "prediction_held": held,
                },
            )
    for stage in stages:
        if stage == "won":
            quote = await post_json(
                client,
                f"{path}/quotes",
                {
                    "lines": lines,
                    "currency": currency,
                    "valid_until": str(today + timedelta(days=14)),
                },
            )
            discounted = [
                {**line, "unit_price": _discount(str(line["unit_price"]))} for line in lines
            ]
            await post_json(
                client,
                f"{path}/quotes",
                {
                    "quote_id": quote["quote_id"],
                    "lines": discounted,
                    "currency": currency,
                    "valid_until": str(today + timedelta(days=14)),
                    "note": "九五折, 分两期付款",
                },
            )
        body: dict[str, Any] = {"stage": stage}
        if stage == "lost":
            body["lost_reason"] = lost_reason
        await post_json(client, f"{path}/stage", body)
    if won:
        amount = (sum(_amount(line) for line in lines) * Decimal("0.95")).quantize(CENT)
        await post_json(
            client,
            f"{path}/contract",
            {"amount": str(amount), "currency": currency, "signed_on": str(today)},
        )
        first = (amount * Decimal("0.6")).quantize(CENT)
        # Two payments received; the last tenth of the second instalment is still owed.
        for paid, days in ((first, -2), ((amount - first) * Decimal("0.9"), 0)):
            await post_json(
                client,
                f"{path}/contract/payments",
                {
                    "amount": str(paid.quantize(CENT)),
                    "currency": currency,
                    "received_on": str(today + timedelta(days=days)),
                    "reference": "银行回单",
                },
            )


def _amount(line: dict[str, Any]) -> Decimal:
    return Decimal(line["quantity"]) * Decimal(line["unit_price"])


def _discount(price: str) -> str:
    return str((Decimal(price) * Decimal("0.95")).quantize(CENT))
