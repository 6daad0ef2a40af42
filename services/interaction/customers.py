"""What the interaction service knows of customers, folded from the customer topic.

- `interaction_customers`: name, preferred and opted-out channels, for the views and for
  contact plans that must not use a channel the customer refused;
- `customer_references`: how other systems name a customer, so that an
  inbound call or survey answer naming the customer by reference lands on the right one;
- on `customer.erased`, the personal columns of every interaction view
  (`PERSONAL_COLUMNS`).
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
    EMPTY_JSON_LIST,
    EMPTY_TEXT,
    EMPTY_TEXT_ARRAY,
    ERASED_TEXT,
    PersonalColumns,
    erase_personal_columns,
    erased_customers,
)

DDL = """
CREATE TABLE IF NOT EXISTS interaction_customers (
    customer_id uuid PRIMARY KEY,
    name text NOT NULL,
    preferred_channels text[] NOT NULL DEFAULT '{}',
    opted_out_channels text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL
);
"""

Row = dict[str, Any]

PERSONAL_COLUMNS = (
    PersonalColumns(
        "interactions",
        {
            "participants": EMPTY_JSON_LIST,
            "participant_names": EMPTY_TEXT_ARRAY,
            "subject": ERASED_TEXT,
            "notes": EMPTY_TEXT,
            "search_text": EMPTY_TEXT,
            "search_grams": EMPTY_TEXT_ARRAY,
        },
    ),
    PersonalColumns(
        "tickets",
        {"subject": ERASED_TEXT, "description": EMPTY_TEXT, "resolution": ERASED_TEXT},
    ),
    PersonalColumns("survey_answers", {"comment": EMPTY_TEXT}),
    PersonalColumns("feedback", {"text": ERASED_TEXT}),
    PersonalColumns("contact_plans", {"note": EMPTY_TEXT}),
)
"""The interaction views' personal columns; a customer's erasure overwrites them
(channels, times, scores, SLA states stay)."""


def fold_customer(row: Row | None, event: EventEnvelope[Any]) -> Row | None:
    """The customer row after `event`; None before the customer is registered."""
    payload = event.payload
    if event.event_type == "customer.registered":
        preferences = payload.channel_preferences
        return {
            "name": payload.name,
            "preferred_channels": [c.value for c in preferences.preferred],
            "opted_out_channels": [c.value for c in preferences.opted_out],
            "updated_at": event.occurred_at,
        }
    if row is None:
        return None
    if event.event_type == "customer.profile_changed" and "name" in payload.changed:
        return {**row, "name": payload.name or row["name"], "updated_at": event.occurred_at}
    if event.event_type == "customer.erased":
        return {**row, "name": ERASED, "updated_at": event.occurred_at}
    if event.event_type == "customer.channel_preferences_changed":
        preferences = payload.channel_preferences
        return {
            **row,
            "preferred_channels": [c.value for c in preferences.preferred],
            "opted_out_channels": [c.value for c in preferences.opted_out],
            "updated_at": event.occurred_at,
        }
    return row


class InteractionCustomers:
    name = "interaction_customers"
    topics: Sequence[str] = (Topic.CUSTOMER,)

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await connection.execute(DDL)
        await connection.execute(REFERENCES_DDL)

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        ids = list({e.customer_id for e in events})
        rows: dict[UUID, Row | None] = {
            r["customer_id"]: dict(r)
            for r in await connection.fetch(
                "SELECT * FROM interaction_customers WHERE customer_id = ANY($1::uuid[]) "
                "FOR UPDATE",
                ids,
            )
        }
        touched: set[UUID] = set()
        references: list[Reference] = []
        for event in events:
            before = rows.get(event.customer_id)
            after = fold_customer(before, event)
            if after is not before and after is not None:
                rows[event.customer_id] = after
                touched.add(event.customer_id)
            references += references_in(event)
        written = [(i, r) for i in touched if (r := rows[i]) is not None]
        if written:
            await connection.executemany(
                """INSERT INTO interaction_customers
                       (customer_id, name, preferred_channels, opted_out_channels, updated_at)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (customer_id) DO UPDATE SET name = excluded.name,
                       preferred_channels = excluded.preferred_channels,
                       opted_out_channels = excluded.opted_out_channels,
                       updated_at = excluded.updated_at""",
                [
                    (i, r["name"], r["preferred_channels"], r["opted_out_channels"],
                     r["updated_at"])
                    for i, r in written
                ],
            )  # fmt: skip
        await remember_references(connection, references)
        await erase_personal_columns(connection, erased_customers(events), PERSONAL_COLUMNS)


async def customer_known(connection: asyncpg.Connection | asyncpg.Pool, customer_id: UUID) -> bool:
    return bool(
        await connection.fetchval(
            "SELECT 1 FROM interaction_customers WHERE customer_id = $1", customer_id
        )
    )
