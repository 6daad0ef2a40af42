"""What every service does for the people its data is about.

- **Erasure**: a service lists the columns of its read models that hold personal data
  (`PersonalColumns`) and what each holds once erased. The projection that reads the
  customer topic calls `erase_personal_columns` with the customers of the batch's
  `customer.erased` events, after the batch's other changes, so that nothing of the
  batch writes a personal value back. Non-personal columns (amounts, dates, states)
  stay, so totals do not change. The customers are noted for the compaction that
  rewrites the old row versions out of the files and the WAL (`compaction.py`).
- **Subject access**: `GET /privacy/customers/{customer_id}` answers every row the
  service's schema holds on the customer: each table with a `customer_id` column,
  found in the catalogue, so a new read model is included without being listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from contracts.envelope import EventEnvelope
from contracts.personal import ERASED
from services.runtime.http.authorization import requires
from services.runtime.privacy.compaction import remember_erasures

ERASED_CUSTOMER = "customer.erased"

ERASED_TEXT = f"CASE WHEN {{column}} IS NULL THEN NULL ELSE '{ERASED}' END"
"""A text column that becomes `[erased]` (and stays NULL when it was NULL)."""
EMPTY_TEXT = "''"
EMPTY_JSON_LIST = "'[]'::jsonb"
EMPTY_TEXT_ARRAY = "'{}'::text[]"


@dataclass(frozen=True)
class PersonalColumns:
    """The personal columns of one table, and the SQL value each takes once erased
    (`{column}` stands for the column itself)."""

    table: str
    erased: Mapping[str, str]
    customer_column: str = "customer_id"

    def statement(self) -> str:
        assignments = ", ".join(
            f"{column} = {value.replace('{column}', column)}"
            for column, value in self.erased.items()
        )
        return f"UPDATE {self.table} SET {assignments} WHERE {self.customer_column} = ANY($1)"


def erased_customers(events: Iterable[EventEnvelope[Any]]) -> list[UUID]:
    """The customers a batch of customer-topic events erases."""
    return list({e.customer_id for e in events if e.event_type == ERASED_CUSTOMER})


async def erase_personal_columns(
    connection: asyncpg.Connection,
    customer_ids: Sequence[UUID],
    tables: Sequence[PersonalColumns],
) -> None:
    """Overwrite the personal columns of these customers in every listed table, and note
    them for the compaction that rewrites the old row versions away (`compaction.py`)."""
    if not customer_ids:
        return
    for table in tables:
        await connection.execute(table.statement(), list(customer_ids))
    await remember_erasures(connection, customer_ids)


# Subject access ---------------------------------------------------------------------

router = APIRouter(tags=["privacy"])


class PersonalDataExport(BaseModel):
    customer_id: UUID
    service: str
    exported_at: datetime
    tables: dict[str, list[dict[str, Any]]] = Field(
        description="Every row of every table of this service that names the customer."
    )


@router.get(
    "/privacy/customers/{customer_id}",
    dependencies=[requires("admin")],
    summary="Everything this service holds on one customer (subject-access request)",
)
async def export_customer(customer_id: UUID, request: Request) -> PersonalDataExport:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    schema: str = request.app.state.runtime.schema
    tables: dict[str, list[dict[str, Any]]] = {}
    async with pool.acquire() as connection:
        names = await connection.fetch(
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND column_name = 'customer_id' ORDER BY table_name",
            schema,
        )
        for row in names:
            # names from the catalogue, quoted as identifiers; the customer is a parameter
            table = f'"{schema}"."{row["table_name"]}"'
            rows = await connection.fetch(
                f"SELECT to_jsonb(t)::text AS row FROM {table} t WHERE customer_id = $1",
                customer_id,
            )
            if rows:
                tables[row["table_name"]] = [orjson.loads(r["row"]) for r in rows]
    return PersonalDataExport(
        customer_id=customer_id, service=schema, exported_at=datetime.now(UTC), tables=tables
    )
