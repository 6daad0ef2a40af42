"""HTTP helpers shared by the sales routes: dependencies, cursors, CSV."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import Depends
from fastapi.responses import StreamingResponse

from services.runtime.errors import RuleViolation
from services.runtime.http import ExpectedVersion
from services.runtime.service import ServiceRuntime, current_runtime
from services.sales.application import SalesApplication


def sales_application(rt: Annotated[ServiceRuntime, Depends(current_runtime)]) -> SalesApplication:
    assert isinstance(rt.application, SalesApplication)
    return rt.application


def pool(rt: Annotated[ServiceRuntime, Depends(current_runtime)]) -> asyncpg.Pool:
    assert rt.pool is not None
    return rt.pool


App = Annotated[SalesApplication, Depends(sales_application)]
Pool = Annotated[asyncpg.Pool, Depends(pool)]
Version = ExpectedVersion


def encode_cursor(moment: datetime, item_id: UUID) -> str:
    raw = json.dumps([moment.isoformat(), str(item_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, item_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(moment), UUID(item_id)
    except (ValueError, TypeError) as exc:
        raise RuleViolation("cursor is not one this service issued; start without it") from exc


def csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def csv_download(text: str, filename: str) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        yield text

    return csv_stream(body(), filename)


def csv_stream(lines: AsyncIterator[str], filename: str) -> StreamingResponse:
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def paged_csv(
    fetch: Callable[[tuple[datetime, UUID] | None], Awaitable[list[dict[str, Any]]]],
    columns: Sequence[str],
    key: tuple[str, str],
    page_size: int,
) -> AsyncIterator[str]:
    """Every row `fetch` pages through, as CSV, one page at a time."""
    header = True
    after: tuple[datetime, UUID] | None = None
    while True:
        rows = await fetch(after)
        text = csv_text(rows, columns)
        yield text if header else text.split("\n", 1)[1]
        header = False
        if len(rows) < page_size:
            return
        after = (rows[-1][key[0]], rows[-1][key[1]])
