"""What the sales service knows of customers, folded from the customer topic.

- `sales_customers`: each customer's current name and region, for the sales views;
- `customer_references`: how other systems name a customer (source, their id) → the
  CRM's customer id, so that an inbound purchase naming the customer by reference lands
  on the right customer;
- on `customer.erased`, the personal columns of every sales view (`PERSONAL_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from contracts.envelope import EventEnvelope
from contracts.personal import ERASED
from contracts.topics import Topic
from services.runtime.customer_references import (
    REFERENCES_DDL,
    Reference,
    references_in,
    remember_references,
)
from services.runtime.privacy import (
    EMPTY_TEXT_ARRAY,
    ERASED_TEXT,
    PersonalColumns,
    erase_personal_columns,
    erased_customers,
)

DDL = """
CREATE TABLE IF NOT EXISTS sales_customers (
    customer_id uuid PRIMARY KEY,
    name text NOT NULL,
    region text,
    first_seen_in text,
    updated_at timestamptz NOT NULL
);
"""

PERSONAL_COLUMNS = (
    PersonalColumns("opportunities", {"description": ERASED_TEXT, "lost_reason": ERASED_TEXT}),
    PersonalColumns(
        "activities",
        {
            "people": EMPTY_TEXT_ARRAY,
            "description": ERASED_TEXT,
            "predicted_result": ERASED_TEXT,
            "actual_result": ERASED_TEXT,
        },
    ),
    PersonalColumns("quotes", {"note": ERASED_TEXT}),
)
"""The sales views' personal columns; a customer's erasure overwrites them (amounts,
stages, dates and products stay)."""


class SalesCustomers:
    name = "sales_customers"
    topics: Sequence[str] = (Topic.CUSTOMER,)

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await connection.execute(DDL)
        await connection.execute(REFERENCES_DDL)

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        ids = list({e.customer_id for e in events})
        rows: dict[UUID, dict[str, Any]] = {
            r["customer_id"]: dict(r)
            for r in await connection.fetch(
                "SELECT * FROM sales_customers WHERE customer_id = ANY($1::uuid[]) FOR UPDATE",
                ids,
            )
        }
        touched: set[UUID] = set()
        references: list[Reference] = []
        for event in events:
            payload = event.payload
            row = rows.get(event.customer_id)
            if event.event_type == "customer.registered":
                rows[event.customer_id] = {
                    "name": payload.name,
                    "region": payload.region,
                    "first_seen_in": payload.first_seen_in,
                    "updated_at": event.occurred_at,
                }
                touched.add(event.customer_id)
            elif event.event_type == "customer.erased" and row is not None:
                row["name"] = ERASED
                touched.add(event.customer_id)
            elif event.event_type == "customer.profile_changed" and row is not None:
                if "name" in payload.changed and payload.name:
                    row["name"] = payload.name
                if "region" in payload.changed:
                    row["region"] = payload.region
                row["updated_at"] = event.occurred_at
                touched.add(event.customer_id)
            references += references_in(event)
        if touched:
            await connection.executemany(
                """INSERT INTO sales_customers
                       (customer_id, name, region, first_seen_in, updated_at)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (customer_id) DO UPDATE SET name = excluded.name,
                       region = excluded.region, first_seen_in = excluded.first_seen_in,
                       updated_at = excluded.updated_at""",
                [
                    (i, rows[i]["name"], rows[i]["region"], rows[i]["first_seen_in"],
                     rows[i]["updated_at"])
                    for i in touched
                ],
            )  # fmt: skip
        await remember_references(connection, references)
        await erase_personal_columns(connection, erased_customers(events), PERSONAL_COLUMNS)


async def customer_known(pool: asyncpg.Pool, customer_id: UUID) -> bool:
    return bool(
        await pool.fetchval("SELECT 1 FROM sales_customers WHERE customer_id = $1", customer_id)
    )
