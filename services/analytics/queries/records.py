"""Rows as the queries answer them, and the order lists of customers page in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from contracts.values import EARLIEST, FIRST_DAY, LAST_DAY, LATEST
from services.runtime.http.paging import SortKey

BY_CUSTOMER = SortKey(("customer_id",), (UUID,))
"""Lists of customers (profiles, members, warnings) page by customer id."""


def as_dicts(records: Sequence[asyncpg.Record], *json_columns: str) -> list[dict[str, Any]]:
    """Records as dicts, the columns read as JSON text decoded."""
    found = []
    for record in records:
        item = dict(record)
        for name in json_columns:
            if item[name] is not None:
                item[name] = orjson.loads(item[name])
        found.append(item)
    return found


def as_dict(record: asyncpg.Record | None, *json_columns: str) -> dict[str, Any] | None:
    return as_dicts([record], *json_columns)[0] if record is not None else None


def within_window(column: str, *, day: bool = False) -> str:
    """The `timestamptz` (or `date`) `column` read moved into the dates the CRM holds
    (`contracts.values`), named as the column. A value stored before that window was
    enforced (a purchase dated in the year 1 lands before Christ in UTC, which the driver
    cannot decode) reads as the nearest bound instead of failing the whole answer."""
    kind = "date" if day else "timestamptz"
    first, last = (FIRST_DAY, LAST_DAY) if day else (EARLIEST, LATEST)
    name = column.rpartition(".")[2]
    return (
        f"LEAST(GREATEST({column}, '{first.isoformat()}'::{kind}), "
        f"'{last.isoformat()}'::{kind}) AS {name}"
    )
