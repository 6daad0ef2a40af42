"""Talking to a running service over HTTP in tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx


async def wait_for(
    client: httpx.AsyncClient,
    path: str,
    check: Callable[[Any], bool],
    timeout: float = 15.0,
    **params: Any,
) -> Any:
    """GET `path` until it answers 200 with a body `check` accepts (projections are
    eventually consistent); on timeout, fail with the last answer and the readiness."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(path, params=params)
        if response.status_code == 200 and check(response.json()):
            return response.json()
        if time.monotonic() > deadline:
            ready = (await client.get("/health/ready")).text
            raise AssertionError(
                f"{path} never matched: {response.status_code} {response.text} {ready}"
            )
        await asyncio.sleep(0.05)
