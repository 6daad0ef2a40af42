"""How the fold's writes reach PostgreSQL quickly: a batch of rows as one JSON parameter
(`rows_json`, read by `json_to_recordset`), and statements that run while Python goes on
computing (`alongside`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson


def rows_json(rows: Sequence[dict[str, Any]]) -> bytes:
    """Rows for one `json_to_recordset` parameter (`recordset`, `json_parameter`): a whole
    batch of rows in one JSON text, read by PostgreSQL, instead of one array per column
    (asyncpg checks every element of an array parameter in Python). UUIDs, dates and
    times are written by orjson in the forms PostgreSQL reads; decimals as their exact
    text. The text is passed as its UTF-8 bytes (`bytea`): no Python string is made of
    it, nor encoded again by asyncpg."""
    return orjson.dumps(rows, default=json_default)


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal | UUID):  # asyncpg's own UUID type, too
        return str(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def json_parameter(parameter: int) -> str:
    """The JSON of parameter `$parameter`, given as `rows_json` bytes."""
    return f"convert_from(${parameter}::bytea, 'UTF8')::json"


def recordset(parameter: int, columns: Sequence[tuple[str, str]]) -> str:
    """`json_to_recordset(<$parameter, rows_json>) AS u(column type, ...)`."""
    definitions = ", ".join(f'"{name}" {kind}' for name, kind in columns)
    return f"json_to_recordset({json_parameter(parameter)}) AS u({definitions})"


@contextlib.asynccontextmanager
async def alongside(statements: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `statements` (on the transaction's connection) while the body computes.

    The statements start at once (their rows made, the first one sent); the body runs
    while PostgreSQL executes them, and must not use the connection. Leaving the block
    waits for them, and raises their error if they failed; if the body fails, they are
    still waited for (the connection is free again) and the body's error is raised."""
    task = asyncio.ensure_future(statements)
    await asyncio.sleep(0)
    try:
        yield
    except BaseException:
        await asyncio.gather(task, return_exceptions=True)
        raise
    await task
