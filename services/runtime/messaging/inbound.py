"""What every service that ingests other systems' messages shares.

- `parse_inbound`: an inbound message as its contract model, or a `ContractViolation`
  whose reason comes from a small fixed set (it labels metrics and the `dlq.reason`
  header) and whose detail names the field and the problem;
- `RecordedAggregates`: which of the aggregates an inbound batch would create the event
  store holds already (the source system's id is the idempotency key).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from contracts.registry import ContractViolation, describe_validation_error
from services.runtime.storage.eventstore import EventSourcedApplication
from services.runtime.storage.statistics import PlannerStatistics

M = TypeVar("M", bound=BaseModel)

TYPE_ERRORS = (
    "_type",
    "_parsing",
    "model_attributes_type",
    "dict_type",
    "list_type",
    "uuid_parsing",
    "datetime_from_date_parsing",
)

SpecificReason = Callable[[str, str, ErrorDetails], str | None]
"""(field, pydantic error type, error) -> a reason particular to the contract, or None."""


def parse_inbound(
    raw: bytes | None,
    model: type[M],
    *,
    invalid: str,
    specific: SpecificReason = lambda field, kind, error: None,
    detail: Callable[[ValidationError], str] = describe_validation_error,
) -> M:
    """`raw` as `model`; otherwise `ContractViolation` with one of the reasons `empty
    message`, `malformed JSON`, `not a JSON object`, `bad customer reference`, `missing
    field`, `date in the future`, `date out of range`, `control character`, `too long`,
    what `specific` says, `wrong type`, or `invalid` for anything else."""
    if raw is None or raw == b"":
        raise ContractViolation("empty message", "the message has no value")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        kind = first["type"]
        field = str(first["loc"][0]) if first["loc"] else ""
        if kind == "json_invalid":
            raise ContractViolation("malformed JSON", first["msg"]) from None
        if kind == "model_type" and not first["loc"]:
            raise ContractViolation(
                "not a JSON object", "the message must be one JSON object"
            ) from None
        if field == "customer_reference":
            reason = "bad customer reference"
        elif kind == "missing":
            reason = "missing field"
        elif kind == "date_in_future":
            reason = "date in the future"
        elif kind == "date_out_of_range":
            reason = "date out of range"
        elif kind == "control_character":
            reason = "control character"
        elif kind in ("string_too_long", "too_long"):
            reason = "too long"
        elif (particular := specific(field, kind, first)) is not None:
            reason = particular
        elif kind.endswith(TYPE_ERRORS):
            reason = "wrong type"
        else:
            reason = invalid
        raise ContractViolation(reason, detail(exc)) from None


class RecordedAggregates:
    """Looks up, in one query, which aggregate ids the application's event store holds."""

    def __init__(self, application: EventSourcedApplication, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._events_table: str = getattr(application.recorder, "events_table_name", "")
        self._statistics = PlannerStatistics(pool)
        """The event store's table, filled fast by an ingestion, keeps statistics that
        let the look-up use its index."""

    async def among(self, ids: list[UUID]) -> set[UUID]:
        if not ids or not self._events_table:
            return set()
        await self._statistics.refresh_if_due()
        rows = await self._pool.fetch(
            f"SELECT originator_id FROM {self._events_table} "
            "WHERE originator_id = ANY($1::uuid[]) AND originator_version = 1",
            ids,
        )
        return {r["originator_id"] for r in rows}
