"""Rows as the queries answer them, and the order lists of customers page in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
import orjson

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
