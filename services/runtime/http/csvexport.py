"""CSV downloads of list endpoints: one page of rows, or every page streamed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi.responses import StreamingResponse

from services.runtime.http.paging import Position, SortKey


def csv_cell(value: Any) -> Any:
    """A value as spreadsheet users expect it: lists joined by `|`, times in ISO 8601."""
    if isinstance(value, list):
        return "|".join(
            v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
            for v in value
        )
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str], header: bool = True) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def csv_response(lines: AsyncIterator[str], filename: str) -> StreamingResponse:
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def rows_csv(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], filename: str
) -> StreamingResponse:
    """A download of rows already in hand."""

    async def body() -> AsyncIterator[str]:
        yield csv_text(rows, columns)

    return csv_response(body(), filename)


async def paged_csv(
    fetch: Callable[[Position | None], Awaitable[list[dict[str, Any]]]],
    columns: Sequence[str],
    key: SortKey,
    page_size: int = 1000,
) -> AsyncIterator[str]:
    """Every row `fetch` pages through (`page_size` at a time, after the position it is
    given), as CSV."""
    after: Position | None = None
    header = True
    while True:
        rows = await fetch(after)
        yield csv_text(rows, columns, header)
        header = False
        if len(rows) < page_size:
            return
        after = key.position_of(rows[-1])
