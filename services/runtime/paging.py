"""Cursor paging on a (moment, id) sort key, shared by every list endpoint.

A cursor is the sort key of the last row a page returned, base64url-encoded; the next
page is one index range scan after it, however deep the reader pages.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from services.runtime.errors import RuleViolation

Position = tuple[datetime, UUID]
"""Where a page ends: the sort key's moment and the row's id."""


def encode_cursor(moment: datetime, item_id: UUID) -> str:
    raw = json.dumps([moment.isoformat(), str(item_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Position | None:
    """The position a cursor names; None without a cursor; 400 for one we did not issue."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, item_id = json.loads(base64.urlsafe_b64decode(padded))
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("naive time")
        return parsed, UUID(item_id)
    except (ValueError, TypeError) as exc:
        raise RuleViolation("cursor is not one this service issued; start without it") from exc


def next_cursor(rows: Sequence[dict[str, Any]], limit: int, key: tuple[str, str]) -> str | None:
    """The cursor of the page after `rows[:limit]`, or None when `rows` held no more.

    Fetch `limit + 1` rows: the extra one only tells whether another page exists.
    """
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(last[key[0]], last[key[1]])
