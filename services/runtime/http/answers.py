"""Answers several services give alike.

- `Accepted`: the answer to a command. Each service subclasses it with the id of what
  changed (`customer_id`, `opportunity_id`, `id`) and its own description of `version`;
  `etag` sends the version as the `ETag`, to be sent back as `If-Match`.
- `HistoryEntry`: one change in an aggregate's history, as
  `EventSourcedApplication.change_history` gives it; `AsOf`, the query parameter of a
  read as of a past moment (`EventSourcedApplication.load_as_of`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonDict

from contracts.personal import PERSONAL


def _version_last(schema: JsonDict) -> None:
    """Pydantic lists the inherited `version` before the fields a subclass adds; the
    published schemas have always named the id first among the required fields."""
    required = schema.get("required")
    if isinstance(required, list):
        required.sort(key=lambda name: name == "version")


class Accepted(BaseModel):
    """The answer to a command; each service adds the id of what it changed."""

    model_config = ConfigDict(json_schema_extra=_version_last)

    version: int = Field(description="The aggregate's version after the command.")


def etag(response: Response, version: int) -> None:
    """Send `version` as the answer's `ETag`, to be sent back as `If-Match`."""
    response.headers["ETag"] = f'"{version}"'


class HistoryEntry(BaseModel):
    version: int
    event_type: str
    recorded_at: datetime
    actor: str | None
    correlation_id: str | None
    change: Annotated[dict[str, Any], PERSONAL] = Field(
        description="The event's payload, personal values included."
    )


AsOf = Annotated[
    AwareDatetime | None,
    Query(description="A past moment with its UTC offset; read from the event store."),
]
"""The `as_of` parameter of a read that can answer the past."""
