"""How the analytics views answer: the query parameters every list shares, amounts and
moments as the API writes them, and a list as CSV.

Amounts are `contracts.money.Money`, as the other services write them: a decimal string
with at least its currency's minor units (`"120000.00"`), never a float, never an
exponent. Figures the views compute (averages) are rounded to cents first. Moments keep
the form the service has always answered with (`2026-06-30T12:00:00+00:00`). A CSV
download holds the same values as the JSON answer, one column per field of the item's
model, so that an empty list is still a CSV file with its header line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, PlainSerializer, WithJsonSchema

from contracts.money import plain_amount
from services.analytics.domain.money import cents
from services.analytics.domain.rules import MONEY_FIELDS
from services.runtime.errors import RuleViolation
from services.runtime.http.csvexport import rows_csv

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=200, description="From the previous page.")]
Format = Annotated[Literal["json", "csv"], Query(description="`csv` for a CSV export.")]


Moment = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
"""A moment with its offset, in ISO 8601 as `datetime.isoformat` writes it."""


def amounts_as_text(row: Mapping[str, Any], *columns: str) -> dict[str, Any]:
    """`row` with the recorded field values in `columns` (a conclusion's deciding values)
    holding their amounts (`MONEY_FIELDS`) as decimal strings: conclusions record them as
    strings; those recorded before, as numbers, are answered as strings too."""
    found = dict(row)
    for column in columns:
        values = found[column]
        if values is not None:
            found[column] = {
                name: plain_amount(cents(Decimal(repr(value))))
                if name in MONEY_FIELDS and isinstance(value, int | float)
                else value
                for name, value in values.items()
            }
    return found


def checked_moment(value: datetime | None, name: str) -> datetime | None:
    """A moment given as a query parameter, which must carry its offset."""
    if value is not None and value.tzinfo is None:
        raise RuleViolation(f"{name} needs a UTC offset, e.g. 2026-11-23T00:00:00+00:00")
    return value


def csv_of(
    items: Sequence[BaseModel],
    model: type[BaseModel],
    filename: str,
    columns: Sequence[str] | None = None,
) -> StreamingResponse:
    """`items` (of `model`) as a CSV download with the values of the JSON answer; the
    columns are the model's fields, or `columns` where an answer names its group field
    after a parameter."""
    rows = [item.model_dump(mode="json") for item in items]
    return rows_csv(rows, list(columns or model.model_fields), filename)


def equality_filters(names: Sequence[str], what: str) -> Callable[..., dict[str, str]]:
    """A dependency taking one documented query parameter per name of `names` (so the
    OpenAPI document lists exactly what is filtered on), answering the given ones."""

    def given(**values: str | None) -> dict[str, str]:
        return {name: value for name, value in values.items() if value is not None}

    given.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=Query(None, description=f"Only {what} whose `{name}` equals this."),
                annotation=str | None,
            )
            for name in names
        ],
        return_annotation=dict[str, str],
    )
    return given
