"""The models in the demo: once the analytics service has folded the published purchase
history and the sales history, the models are fitted on request, so that the demo shows
lifetime values, probabilities of being active and learned win probabilities at once
rather than after the first scheduled fit; and the ledger of predictions settles the
deals closed after the fit.

`await fit_models(analytics_url, token, closed_deals=n)` waits until the purchases the
analytics profiles count stop changing (the history is published in one go, and folded
within seconds), asks for a fit (again, until the win model learned from `n` closed
deals), and answers a line saying what each model concluded;
`await settled_predictions(analytics_url, token, deals)` waits until the ledger settled
the deals closed after the fit, and answers how their predictions held.
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


async def _fit(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.post("/models/fit")
    if response.status_code != 200:
        raise DemoLoadError(f"POST /models/fit answered {response.status_code}: {response.text}")
    fits: list[dict[str, Any]] = response.json()["fits"]
    return fits


def _population(fits: list[dict[str, Any]], model: str) -> int:
    return next((int(f["population"]) for f in fits if f["model"] == model), 0)


async def fit_models(
    analytics_url: str, token: str, *, closed_deals: int = 0, timeout: float = 180.0
) -> str:
    """Fit once the purchases are folded, and again (a second apart) until the win model
    learned from at least `closed_deals` closed deals."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=analytics_url, headers=headers, timeout=60.0) as client:
        deadline = time.monotonic() + timeout
        seen: list[int] = []
        while len(seen) < QUIET_POLLS or len(set(seen[-QUIET_POLLS:])) > 1 or not seen[-1]:
            if time.monotonic() > deadline:
                raise DemoLoadError(f"the demo purchases were not folded in {timeout:.0f}s")
            seen.append(await folded_purchases(client))
            await asyncio.sleep(1.0)
        fits = await _fit(client)
        while _population(fits, "win_probability") < closed_deals:
            if time.monotonic() > deadline:
                raise DemoLoadError(f"the demo's closed deals were not folded in {timeout:.0f}s")
            await asyncio.sleep(1.0)
            fits = await _fit(client)
    said = [
        f"{f['model']} version {f['version']} {f['outcome'].replace('_', ' ')}"
        f" ({f['population']} {'closed deals' if f['model'] == 'win_probability' else 'customers'})"
        for f in fits
    ]
    return f"Fitted the models on {seen[-1]} purchases: " + "; ".join(said)


async def settled_predictions(
    analytics_url: str, token: str, deals: int, *, timeout: float = 120.0
) -> str:
    """Wait until the ledger settled the win probabilities of `deals` deals closed after
    the fit (the learned one and the stage's default of each), and say how they held."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=analytics_url, headers=headers, timeout=60.0) as client:
        deadline = time.monotonic() + timeout
        while True:
            response = await client.get(
                "/predictions/ledger", params={"kind": "win", "status": "settled", "limit": 1}
            )
            response.raise_for_status()
            summary = response.json()["summary"]
            if summary["predictions"] >= 2 * deals:
                break
            if time.monotonic() > deadline:
                raise DemoLoadError(
                    f"the ledger settled {summary['predictions']} of the {2 * deals} predictions "
                    f"of the deals closed after the fit in {timeout:.0f}s"
                )
            await asyncio.sleep(1.0)
        tables = (await client.get("/predictions/calibration", params={"kind": "win"})).json()
    brier = ", ".join(f"{t['model']} {t['brier_score']:.3f}" for t in tables["items"])
    return (
        f"The ledger settled {summary['predictions']} win probabilities of {deals} deals "
        f"closed since the fit ({summary['held']} held); Brier scores: {brier}"
    )
