"""The types of query parameters every service shares, and the guard every request
passes before a route sees it.

- `Moment`: a moment in ISO 8601 with its UTC offset (`2026-11-23T00:00:00+00:00` or
  `...Z`), between `EARLIEST` and `LATEST`. A number (`0.5`, a Unix time) is refused,
  and so is a moment PostgreSQL or Python's calendar cannot hold once moved to UTC
  (`0001-01-01T00:00:00+14:00`): each answers 422 saying what to send.
- `Day`: a calendar date `YYYY-MM-DD` in the same range.
- No query parameter and no path segment may hold a control character (NUL, ESC, DEL and
  the other C0 characters): PostgreSQL refuses NUL in text, and none belongs in a name,
  key or filter. `refuse_control_characters` answers 400 naming the parameter, before
  any route runs; `document_text_parameters` writes the rule into the OpenAPI document
  (a `pattern` on each text parameter), so clients and fuzzers know it.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, unquote

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""The range of moments and dates the APIs accept, in queries and in cursors."""

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
"""What a text parameter may hold (the OpenAPI `pattern` of each)."""

_ISO_MOMENT = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}:?\d{2})$"
)
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def in_range(moment: datetime) -> datetime:
    """`moment` (aware) when it lies between `EARLIEST` and `LATEST`; ValueError else."""
    if moment.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2026-11-23T00:00:00+00:00")
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(_range_message())
    return moment


def _range_message() -> str:
    return f"must lie between {EARLIEST.date()} and {LATEST.date()}"


def _iso_moment(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_MOMENT.match(value):
        raise ValueError(
            "must be a moment in ISO 8601 with its UTC offset, e.g. 2026-11-23T00:00:00+00:00"
        )
    return value


def _iso_day(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DAY.match(value):
        raise ValueError("must be a date written YYYY-MM-DD, e.g. 2026-11-23")
    return value


def _day_in_range(day: date) -> date:
    if not EARLIEST.date() <= day <= LATEST.date():
        raise ValueError(_range_message())
    return day


Moment = Annotated[
    datetime,
    BeforeValidator(_iso_moment),
    AfterValidator(in_range),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": f"ISO 8601 with a UTC offset, from {EARLIEST.date()} to "
            f"{LATEST.date()}.",
        }
    ),
]
"""A moment given as a query parameter (see the module's description)."""

Day = Annotated[
    date,
    BeforeValidator(_iso_day),
    AfterValidator(_day_in_range),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "description": f"YYYY-MM-DD, from {EARLIEST.date()} to {LATEST.date()}.",
        }
    ),
]
"""A calendar date given as a query parameter."""


def control_character_in(scope: MutableMapping[str, Any]) -> str | None:
    """What part of the request holds a control character, if one does."""
    raw_path = scope.get("raw_path") or scope.get("path", "").encode()
    if CONTROL_CHARACTERS.search(unquote(raw_path.decode("latin-1"))):
        return "the path"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, encoding="latin-1"):
        if CONTROL_CHARACTERS.search(name) or CONTROL_CHARACTERS.search(value):
            return f"the query parameter {name!r}"
    return None


def document_text_parameters(schema: dict[str, Any]) -> None:
    """Give every text parameter of `schema` (an OpenAPI document) the pattern
    `refuse_control_characters` enforces."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") not in ("query", "path"):
                    continue
                for candidate in _text_schemas(parameter.get("schema", {})):
                    candidate.setdefault("pattern", TEXT_PATTERN)


def _text_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for candidate in (schema, *schema.get("anyOf", []), schema.get("items", {})):
        if (
            candidate.get("type") == "string"
            and "format" not in candidate
            and "enum" not in candidate
            and "const" not in candidate
        ):
            found.append(candidate)
    return found


class ControlCharacterGuard:
    """Answers 400 to a request whose path or query holds a control character, naming
    where, before any route (or database) sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            where = control_character_in(scope)
            if where is not None:
                message = f"{where} holds a control character (such as NUL); remove it"
                await JSONResponse({"error": message}, 400)(scope, receive, send)
                return
        await self.app(scope, receive, send)
