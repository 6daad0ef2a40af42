"""Waiting for a condition instead of sleeping: the one polling helper of the tests.

The services are eventually consistent (projections, relays, consumers, gauges), so a
test asks again until what it waits for holds. `eventually` does the asking: it calls a
check until it returns something truthy and returns that, or fails naming what was
awaited and what the check last gave (or raised). A check may raise (an `assert` inside it
is the usual way to say "not yet, and here is why"): the exception counts as "not yet".

A test that shows something *never* happens must not sleep "long enough" either: it
waits for a positive condition that proves the system got past the point where the
thing would have happened (a later marker seen, an outbox position reached), and only
then looks.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 0.05


class _Nothing:
    def __repr__(self) -> str:
        return "no answer yet"


@overload
async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = ...,
    interval: float = ...,
    describe: str | None = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    *,
    timeout: float = ...,
    interval: float = ...,
    describe: str | None = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    describe: str | None = None,
) -> Any:
    """The first truthy value `check` returns (it may be sync or async), asked every
    `interval` seconds; an `AssertionError` naming `describe` and the last value or
    exception when `timeout` seconds pass without one."""
    what = describe or getattr(check, "__qualname__", repr(check))
    deadline = time.monotonic() + timeout
    last: object = _Nothing()
    while True:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            last = value
        except Exception as error:  # not yet: remembered for the failure message
            last = error
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not so within {timeout:g} s; last {_shown(last)}") from (
                last if isinstance(last, Exception) else None
            )
        await asyncio.sleep(interval)  # the poll interval, not a wait for time to pass


def _shown(last: object) -> str:
    if isinstance(last, BaseException):
        return f"raised {type(last).__name__}: {last}"
    text = repr(last)
    return f"value {text[:2000]}{'...' if len(text) > 2000 else ''}"
