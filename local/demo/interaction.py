"""Demo data for the interaction service, loaded through its HTTP API.

`load(interaction_url, customer_ids)` gives the first customers a believable history:
calls and meetings over the past weeks (Chinese subjects), a complaint that missed its
response target and was resolved, an open service request, survey answers, feedback and
contact plans, one of them overdue. A refused request raises `local.demo.customers.DemoLoadError`
(`crm up` reports it and carries on). `demo_requests` is pure: the same customers always
give the same requests (times are relative to `now`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from local.demo.customers import DemoLoadError

CALLS = (
    (
        "phone",
        "inbound",
        "咨询增值税专用发票开具",
        "客户询问发票开具时间。已告知三个工作日内寄出。",
        312,
    ),
    ("meeting", "outbound", "年度合同续签洽谈", "客户希望增加华南区配送服务。下周提交报价。", 5400),
    ("wechat", "inbound", "订单发货进度查询", "客户询问上周订单的发货时间。已提供物流单号。", None),
    ("visit", "outbound", "新品演示与试用安排", "演示了新一代产品。客户同意试用两周。", 7200),
    (
        "email",
        "outbound",
        "Quarterly business review",
        "Sent the Q4 review deck and pricing.",
        None,
    ),
    ("phone", "outbound", "回访满意度", "客户对售后服务表示满意。建议加快备件供应。", 420),
)


def demo_requests(
    customer_ids: list[str], now: datetime, opted_out: dict[str, list[str]] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of every command the demo sends, in order. No outbound contact on a
    channel the customer opted out of (`opted_out`: customer id → channels)."""
    requests: list[tuple[str, dict[str, Any]]] = []
    for n, customer_id in enumerate(customer_ids):
        refused = (opted_out or {}).get(customer_id, [])
        for k, (channel, direction, subject, notes, seconds) in enumerate(CALLS):
            if (n + k) % 2 or (direction == "outbound" and channel in refused):
                continue
            requests.append(
                (
                    "/interactions",
                    {
                        "customer_id": customer_id,
                        "channel": channel,
                        "direction": direction,
                        "started_at": (now - timedelta(days=3 + 5 * k + n % 4)).isoformat(),
                        "duration_seconds": seconds,
                        "participants": [
                            {"role": "staff", "name": ("李娜", "王芳", "张伟")[n % 3]},
                        ],
                        "subject": subject,
                        "notes": notes,
                    },
                )
            )
        if n % 3 == 0:
            requests.append(
                (
                    f"/customers/{customer_id}/contact-plan",
                    {
                        "channel": ("phone", "wechat", "email")[n % 3],
                        "every_days": 14 if n % 2 else 30,
                        "owner": ("李娜", "王芳")[n % 2],
                        "note": "定期回访",
                        "starts_at": (now - timedelta(days=60)).isoformat(),
                    },
                )
            )
    return requests


async def load(interaction_url: str, customer_ids: list[str], token: str) -> None:
    """Give the first (up to twelve) customers a history of contacts, tickets and surveys,
    sending `token`."""
    chosen = customer_ids[:12]
    if not chosen:
        return
    now = datetime.now(UTC)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=interaction_url, timeout=30, headers=headers) as client:
        opted_out = {c: await _opted_out(client, c) for c in chosen}
        for path, body in demo_requests(chosen, now, opted_out):
            await _send(client, "PUT" if path.endswith("contact-plan") else "POST", path, body)
        first = chosen[0]
        complaint = await _send(
            client,
            "POST",
            "/tickets",
            {
                "customer_id": first,
                "kind": "complaint",
                "channel": "phone",
                "category": "delivery",
                "severity": "high",
                "subject": "货物延迟三天未送达",
                "description": "订单 SO-1029 承诺 11 月 18 日送达。客户至今未收到。",
                "opened_at": (now - timedelta(hours=6)).isoformat(),
            },
        )
        ticket = complaint["id"]
        await _send(client, "POST", f"/tickets/{ticket}/assignment", {"assignee": "王芳"})
        await _send(
            client,
            "POST",
            f"/tickets/{ticket}/responses",
            {"responder": "王芳", "message": "已联系物流。今日送达", "responded_at": _ago(now, 3)},
        )
        await _send(
            client,
            "POST",
            f"/tickets/{ticket}/resolution",
            {"resolution": "货物已送达并补偿优惠券 50 元", "resolved_at": _ago(now, 1)},
        )
        await _send(
            client,
            "POST",
            "/tickets",
            {
                "customer_id": chosen[min(1, len(chosen) - 1)],
                "kind": "service_request",
                "channel": "email",
                "category": "billing",
                "severity": "medium",
                "subject": "申请补开发票",
            },
        )
        for n, customer_id in enumerate(chosen):
            await _send(
                client,
                "POST",
                "/survey-answers",
                {
                    "customer_id": customer_id,
                    "survey": "post-contact",
                    "csat": 2 + n % 4,
                    "nps": (10, 9, 7, 4, 8, 0)[n % 6],
                    "comment": ("服务很好", "响应速度可以更快", "", "希望价格更优惠")[n % 4],
                    "channel": ("phone", "wechat", "email")[n % 3],
                    "ticket_id": ticket if n == 0 else None,
                    "answered_at": _ago(now, 24 * (n % 20)),
                },
            )
        await _send(
            client,
            "POST",
            "/feedback",
            {
                "customer_id": first,
                "kind": "suggestion",
                "text": "希望增加微信下单功能",
                "channel": "wechat",
            },
        )


async def _opted_out(client: httpx.AsyncClient, customer_id: str) -> list[str]:
    """The channels the customer opted out of, once the interaction service knows the
    customer (customers registered a moment ago reach it within moments)."""
    deadline = time.monotonic() + 10
    while True:
        response = await client.get(f"/customers/{customer_id}/timeline", params={"limit": 1})
        consent = response.json().get("consent") if response.status_code == 200 else None
        if consent is not None or time.monotonic() > deadline:
            return list(consent["opted_out"]) if consent else []
        await asyncio.sleep(0.2)


def _ago(now: datetime, hours: float) -> str:
    return (now - timedelta(hours=hours)).isoformat()


async def _send(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.request(method, path, json=body)
    if response.status_code >= 400:
        raise DemoLoadError(f"{method} {path} answered {response.status_code}: {response.text}")
    result: dict[str, Any] = response.json()
    return result
