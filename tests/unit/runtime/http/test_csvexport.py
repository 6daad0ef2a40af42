"""Every CSV download opens in a spreadsheet as it should: the byte order mark, the header
line when nothing matches, and no text cell that a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.runtime.http.csvexport import BYTE_ORDER_MARK, csv_cell, rows_csv

DANGEROUS = ['=HYPERLINK("http://x","y")', "+86 138", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]


@pytest.mark.parametrize("text", DANGEROUS)
def test_text_a_spreadsheet_would_evaluate_is_neutralised(text: str) -> None:
    assert csv_cell(text) == "'" + text
    assert csv_cell([text, "ok"]) == "'" + text + "|ok"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (Decimal("-12.50"), "-12.50"),
        (Decimal("1.2E+5"), "120000"),
        (-3, -3),
        ("上海华信", "上海华信"),
        (datetime(2026, 1, 2, 3, 4, tzinfo=UTC), "2026-01-02T03:04:00+00:00"),
    ],
)
def test_numbers_amounts_times_and_plain_text_are_written_as_they_are(
    value: object, cell: object
) -> None:
    assert csv_cell(value) == cell


async def download(rows: list[dict[str, object]]) -> str:
    response = rows_csv(rows, ["name", "amount"], "x.csv")
    chunks = [c if isinstance(c, str) else bytes(c).decode() async for c in response.body_iterator]
    return "".join(chunks)


async def test_a_download_starts_with_the_byte_order_mark_and_its_header() -> None:
    text = await download([{"name": "=1+1", "amount": Decimal("5.00")}])
    assert text.startswith(BYTE_ORDER_MARK + "name,amount\r\n")
    rows = list(csv.reader(io.StringIO(text.removeprefix(BYTE_ORDER_MARK))))
    assert rows == [["name", "amount"], ["'=1+1", "5.00"]]


async def test_an_empty_download_is_its_header_line() -> None:
    assert await download([]) == BYTE_ORDER_MARK + "name,amount\r\n"
