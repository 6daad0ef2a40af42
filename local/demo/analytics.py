"""Lifetime values in the demo: once the analytics service has folded the published
purchase history, the lifetime value models are fitted on request, so that the demo shows
lifetime values and probabilities of being active at once rather than after the first
scheduled fit.

`await fit_models(analytics_url, token)` waits until the purchases the analytics profiles
count stop changing (the history is published in one go, and folded within seconds),
asks for a fit, and answers a line saying what each model concluded.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from local.demo.customers import DemoLoadError

QUIET_POLLS = 3
"""Polls a second apart with the same purchase count: the history is folded."""


async def folded_purchases(client: httpx.AsyncClient) -> int:
    """Purchases every analytic profile counts, read page by page."""
    total = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/profiles", params=params)
        response.raise_for_status()
        page = response.json()
        total += sum(p["purchase_count"] for p in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return total


async def fit_models(analytics_url: str, token: str, *, timeout: float = 180.0) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=analytics_url, headers=headers, timeout=60.0) as client:
        deadline = time.monotonic() + timeout
        seen: list[int] = []
        while len(seen) < QUIET_POLLS or len(set(seen[-QUIET_POLLS:])) > 1 or not seen[-1]:
            if time.monotonic() > deadline:
                raise DemoLoadError(f"the demo purchases were not folded in {timeout:.0f}s")
            seen.append(await folded_purchases(client))
            await asyncio.sleep(1.0)
        response = await client.post("/models/fit")
        if response.status_code != 200:
            raise DemoLoadError(
                f"POST /models/fit answered {response.status_code}: {response.text}"
            )
        fits = response.json()["fits"]
    said = [
        f"{f['model']} version {f['version']} {f['outcome'].replace('_', ' ')}"
        f" ({f['population']} customers)"
        for f in fits
    ]
    return f"Fitted the lifetime value models on {seen[-1]} purchases: " + "; ".join(said)
