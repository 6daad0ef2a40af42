"""Cursor paging on any sort key, shared by every list endpoint.

A list is ordered by a key of one or more columns ending in a unique one (a moment and
an id, a name and an id, an id alone). A cursor is the key of the last row a page
returned, as a JSON array, base64url-encoded; the next page is one index range scan after
it, however deep the reader pages. A cursor that is not one of ours is answered with 400:
one of another shape, a value of another type than its column's, a moment or date out of
the range the APIs accept (`parameters.EARLIEST` to `LATEST`), text a column cannot hold
(NUL, a lone surrogate), a number beyond 64 bits.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from services.runtime.errors import BadRequest
from services.runtime.http.parameters import CONTROL_CHARACTERS, EARLIEST, LATEST, in_range

Position = tuple[Any, ...]
"""Where a page ends: the values of the sort key's columns in the last row."""

NOT_OURS = "cursor is not one this service issued; start without it"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    return value


def _typed(value: Any, kind: type) -> Any:
    """`value` read back as `kind`; ValueError or TypeError when it cannot be."""
    if kind is datetime:
        if not isinstance(value, str):
            raise TypeError("a moment is written as text")
        return in_range(datetime.fromisoformat(value)).astimezone(UTC)
    if kind is date:
        if not isinstance(value, str):
            raise TypeError("a date is written as text")
        day = date.fromisoformat(value)
        if not EARLIEST.date() <= day <= LATEST.date():
            raise ValueError("out of range")
        return day
    if kind is UUID:
        if not isinstance(value, str):
            raise TypeError("an id is written as text")
        return UUID(value)
    if kind is Decimal:
        if not isinstance(value, str):
            raise TypeError("an amount is written as text")
        amount = Decimal(value)
        if not amount.is_finite() or abs(amount) >= Decimal(10) ** 18:
            raise ValueError("not an amount a column holds")
        return amount
    if kind is int:
        if type(value) is not int or abs(value) >= 1 << 63:
            raise TypeError("not a whole number a column holds")
        return value
    if kind is str:
        if not isinstance(value, str) or CONTROL_CHARACTERS.search(value):
            raise TypeError("not text a column holds")
        value.encode()  # UnicodeEncodeError (a ValueError) for a lone surrogate
        return value
    raise TypeError(f"no cursor reading for {kind.__name__}")


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([_plain(v) for v in values], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, types: Sequence[type]) -> Position | None:
    """The position a cursor names, each value of the type at its place; None without a
    cursor; 400 for one we did not issue."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("wrong shape")
        return tuple(_typed(v, t) for v, t in zip(values, types, strict=True))
    except (ValueError, TypeError, OverflowError, InvalidOperation) as exc:
        raise BadRequest(NOT_OURS) from exc


@dataclass(frozen=True)
class SortKey:
    """The columns a list is ordered by (the last one unique) and their types."""

    columns: tuple[str, ...]
    types: tuple[type, ...]

    def __post_init__(self) -> None:
        if len(self.columns) != len(self.types):
            raise ValueError("one type per column")

    def after(self, cursor: str | None) -> Position | None:
        """The position to continue after; None for the first page."""
        return decode_cursor(cursor, self.types)

    def cursor_of(self, row: Mapping[str, Any]) -> str:
        return encode_cursor(*(row[c] for c in self.columns))

    def next_cursor(self, rows: Sequence[Mapping[str, Any]], limit: int) -> str | None:
        """The cursor of the page after `rows[:limit]`, or None when `rows` held no more.

        Fetch `limit + 1` rows: the extra one only tells whether another page exists.
        """
        return self.cursor_of(rows[limit - 1]) if len(rows) > limit else None

    def position_of(self, row: Mapping[str, Any]) -> Position:
        return tuple(row[c] for c in self.columns)


BY_MOMENT = (datetime, UUID)
"""The types of the most common key: a moment and an id."""
