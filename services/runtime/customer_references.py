"""How other systems name a customer: (source system, its customer id) -> CRM customer id.

Every service that accepts inbound messages naming customers by reference keeps this
table in its own schema, folded from the customer topic, so that it resolves references
without asking the customer service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from contracts.envelope import EventEnvelope

REFERENCES_DDL = """
CREATE TABLE IF NOT EXISTS customer_references (
    source text NOT NULL,
    source_customer_id text NOT NULL,
    customer_id uuid NOT NULL,
    PRIMARY KEY (source, source_customer_id)
);
"""

Reference = tuple[str, str, UUID]
"""(source system, its customer id, CRM customer id)."""


def references_in(event: EventEnvelope[Any]) -> list[Reference]:
    """The references a customer event makes known (none for most events)."""
    if event.event_type == "customer.registered":
        return [
            (r.source, r.source_customer_id, event.customer_id) for r in event.payload.references
        ]
    if event.event_type == "customer.reference_added":
        reference = event.payload.reference
        return [(reference.source, reference.source_customer_id, event.customer_id)]
    return []


async def remember_references(
    connection: asyncpg.Connection, references: Sequence[Reference]
) -> None:
    if references:
        await connection.executemany(
            """INSERT INTO customer_references (source, source_customer_id, customer_id)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
            references,
        )


async def resolve_references(
    connection: asyncpg.Connection | asyncpg.Pool, references: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], UUID]:
    """The known customers among `references` (source, their id), in one query."""
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
    # asyncpg's own UUID type is not the standard one the event store can serialise
    return {(r["source"], r["source_customer_id"]): UUID(str(r["customer_id"])) for r in rows}
