"""Work a service repeats for as long as it runs: sweeps, re-scoring, gauge refreshes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from services.runtime.transient import TRANSIENT_ERRORS

log = logging.getLogger(__name__)


async def every(seconds: float, step: Callable[[], Awaitable[object]], what: str) -> None:
    """Run `step` now and then every `seconds`, forever. A run that fails on a transient
    error or a query error (a table whose rebuild is pending) is logged and the next one
    comes on time; any other error ends the task, and the process with it
    (`services.runtime.supervision`)."""
    while True:
        try:
            await step()
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("%s failed, will retry: %r", what, exc)
        await asyncio.sleep(seconds)
