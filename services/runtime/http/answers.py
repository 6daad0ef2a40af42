"""Answers several services give alike, beside `commands.Accepted` itself.

- `id_before_version`: the JSON Schema hook of a service's `Accepted` (a subclass of
  `commands.Accepted` that adds the id of what changed). Pydantic lists the inherited
  `version` before the fields a subclass adds; the published schema has always named
  the id first among the required fields, and API documents compared across releases
  should not change for a refactoring.
- `HistoryEntry`: one change in an aggregate's history, as
  `EventSourcedApplication.change_history` gives it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonDict


def id_before_version(schema: JsonDict) -> None:
    """`model_config = ConfigDict(json_schema_extra=id_before_version)`: `version` last
    among the required fields (the id, the only other one, first)."""
    required = schema.get("required")
    if isinstance(required, list):
        required.sort(key=lambda name: name == "version")


class HistoryEntry(BaseModel):
    version: int
    event_type: str
    recorded_at: datetime
    actor: str | None
    correlation_id: str | None
    change: dict[str, Any]
