"""What the sales service knows of customers, folded from the customer topic.

- `sales_customers`: each customer's current name and region, for the sales views;
- `customer_references`: how other systems name a customer (source, their id) → the
  CRM's customer id, so that an inbound purchase naming the customer by reference lands
  on the right customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from contracts.envelope import EventEnvelope
from contracts.topics import Topic

DDL = """
CREATE TABLE IF NOT EXISTS sales_customers (
    customer_id uuid PRIMARY KEY,
    name text NOT NULL,
    region text,
    first_seen_in text,
    updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_references (
    source text NOT NULL,
    source_customer_id text NOT NULL,
    customer_id uuid NOT NULL,
    PRIMARY KEY (source, source_customer_id)
);
"""


class SalesCustomers:
    name = "sales_customers"
    topics: Sequence[str] = (Topic.CUSTOMER,)

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await connection.execute(DDL)

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
        references: list[tuple[str, str, UUID]] = []
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
                references += [
                    (r.source, r.source_customer_id, event.customer_id) for r in payload.references
                ]
            elif event.event_type == "customer.profile_changed" and row is not None:
                if "name" in payload.changed and payload.name:
                    row["name"] = payload.name
                if "region" in payload.changed:
                    row["region"] = payload.region
                row["updated_at"] = event.occurred_at
                touched.add(event.customer_id)
            elif event.event_type == "customer.reference_added":
                ref = payload.reference
                references.append((ref.source, ref.source_customer_id, event.customer_id))
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
        if references:
            await connection.executemany(
                """INSERT INTO customer_references (source, source_customer_id, customer_id)
                   VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
                references,
            )


async def resolve_references(
    connection: asyncpg.Connection | asyncpg.Pool, references: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], UUID]:
    """The known customers among `references`, in one query."""
    if not references:
        return {}
    rows = await connection.fetch(
        """SELECT r.source, r.source_customer_id, r.customer_id
           FROM customer_references r
           JOIN unnest($1::text[], $2::text[]) AS wanted(source, source_customer_id)
             USING (source, source_customer_id)""",
        [s for s, _ in references],
        [c for _, c in references],
    )
    return {(r["source"], r["source_customer_id"]): r["customer_id"] for r in rows}


async def customer_known(pool: asyncpg.Pool, customer_id: UUID) -> bool:
    return bool(
        await pool.fetchval("SELECT 1 FROM sales_customers WHERE customer_id = $1", customer_id)
    )
