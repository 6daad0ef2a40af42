"""CSV downloads of list endpoints: one page of rows, or every page streamed.

Every download is made to be opened in a spreadsheet:
- it starts with a UTF-8 byte order mark, without which Excel on a Chinese (or any
  non-UTF-8) desktop reads the bytes in the local code page (GBK shows `涓婃捣...`);
- it always has its header line, also when no row matches;
- a text cell that a spreadsheet would read as a formula (starting with `=`, `+`, `-`,
  `@`, a tab or a carriage return) is written with a leading `'`, OWASP's rule against
  CSV injection; numbers, amounts and times are written as they are.
"""

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

BYTE_ORDER_MARK = "\ufeff"

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP, CSV injection)."""


def neutralised(text: str) -> str:
    """`text` as a cell no spreadsheet evaluates."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cell(value: Any) -> Any:
    """A value as spreadsheet users expect it: lists joined by `|`, times in ISO 8601,
    amounts without exponent, text never read as a formula."""
    if isinstance(value, list):
        return neutralised(
            "|".join(
                v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
                for v in value
            )
        )
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return neutralised(value)
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
    """The download of `lines` (the first of them the header), after the byte order mark."""

    async def with_mark() -> AsyncIterator[str]:
        yield BYTE_ORDER_MARK
        async for line in lines:
            yield line

    return StreamingResponse(
        with_mark(),
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
