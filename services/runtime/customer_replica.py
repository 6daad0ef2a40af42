"""What a service knows of customers, folded from the customer topic: its local replica.

A service that shows customers' names beside its own facts, or accepts messages that
name customers, keeps this replica in its own schema instead of asking the customer
service (nothing on the query path calls another service):

- `<table>` (e.g. `sales_customers`): each customer's name, region, owner, the system
  through which they became known, and their preferred and opted-out channels;
- `customer_references`: how other systems name a customer (source system, its customer
  id) → the CRM's customer id, so that an inbound message naming the customer by
  reference lands on the right customer;
- on `customer.erased`, the personal columns of the service's views (`personal_columns`)
  are overwritten, after the batch's other changes, and the customer's references
  forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from contracts.envelope import EventEnvelope
from contracts.personal import ERASED
from contracts.tolerant import TolerantReader
from contracts.topics import Topic
from services.runtime.customer_aliases import apply_aliases, create_alias_table
from services.runtime.privacy.erasure import (
    PersonalColumns,
    erase_personal_columns,
    erased_customers,
)

Row = dict[str, Any]

REFERENCES_DDL = """
CREATE TABLE IF NOT EXISTS customer_references (
    source text NOT NULL,
    source_customer_id text NOT NULL,
    customer_id uuid NOT NULL,
    PRIMARY KEY (source, source_customer_id)
);
"""

COLUMNS = (
    "name",
    "region",
    "owner",
    "first_seen_in",
    "preferred_channels",
    "opted_out_channels",
    "updated_at",
)
"""The replica's columns besides `customer_id`."""

Reference = tuple[str, str, UUID]
"""(source system, its customer id, CRM customer id)."""

READER = TolerantReader(
    {
        "customer.registered": (
            "name",
            "region",
            "owner",
            "first_seen_in",
            "channel_preferences",
            "references",
        ),
        "customer.profile_changed": ("changed", "name", "region", "owner"),
        "customer.absorbed": ("profile", "channel_preferences"),
        "customer.absorption_undone": ("profile", "channel_preferences"),
        "customer.channel_preferences_changed": ("channel_preferences",),
        "customer.reference_added": ("reference",),
        "customer.merged": ("survivor_id", "merge_id"),
        "customer.unmerged": ("merge_id",),
    },
    envelope=("occurred_at", "recorded_at"),
)
"""What the replica reads of the customer topic (`fold_customer`, `references_in`, the
aliases of merges, erasures), validated alone (`contracts.tolerant`)."""


def _channels(preferences: Any) -> tuple[list[str], list[str]]:
    return [c.value for c in preferences.preferred], [c.value for c in preferences.opted_out]


def fold_customer(row: Row | None, event: EventEnvelope[Any]) -> Row | None:
    """The customer's row after `event`; None before the customer is registered."""
    payload = event.payload
    if event.event_type == "customer.registered":
        preferred, opted_out = _channels(payload.channel_preferences)
        return {
            "name": payload.name,
            "region": payload.region,
            "owner": payload.owner,
            "first_seen_in": payload.first_seen_in,
            "preferred_channels": preferred,
            "opted_out_channels": opted_out,
            "updated_at": event.occurred_at,
        }
    if row is None:
        return None
    if event.event_type == "customer.profile_changed":
        changed = {
            field: getattr(payload, field)
            for field in ("region", "owner")
            if field in payload.changed
        }
        if "name" in payload.changed and payload.name:
            changed["name"] = payload.name
        return {**row, **changed, "updated_at": event.occurred_at}
    if event.event_type in ("customer.absorbed", "customer.absorption_undone"):
        return merge_changes(row, event)
    if event.event_type == "customer.erased":
        return {**row, "name": ERASED, "updated_at": event.occurred_at}
    if event.event_type == "customer.channel_preferences_changed":
        preferred, opted_out = _channels(payload.channel_preferences)
        return {
            **row,
            "preferred_channels": preferred,
            "opted_out_channels": opted_out,
            "updated_at": event.occurred_at,
        }
    return row


def merge_changes(row: Row, event: EventEnvelope[Any]) -> Row:
    """The survivor's row after a merge into it or its undoing: the profile fields and
    channel preferences it set (references stay with the customer that had them; the
    alias leads to the survivor)."""
    payload = event.payload
    changed = {
        field: getattr(payload.profile, field)
        for field in ("name", "region", "owner")
        if field in payload.profile.changed
    }
    if payload.channel_preferences is not None:
        preferred, opted_out = _channels(payload.channel_preferences)
        changed.update(preferred_channels=preferred, opted_out_channels=opted_out)
    return {**row, **changed}  # `updated_at` stays: undoing the merge leaves the row as it was


def references_in(event: EventEnvelope[Any]) -> list[Reference]:
    """The references a customer event makes known (none for most events, and none that
    reads as erased: once the customer is erased their references are forgotten)."""
    if event.event_type == "customer.registered":
        references = list(event.payload.references)
    elif event.event_type == "customer.reference_added":
        references = [event.payload.reference]
    else:
        return []
    return [
        (r.source, r.source_customer_id, event.customer_id)
        for r in references
        if r.source_customer_id != ERASED
    ]


class CustomerReplica:
    """The projection of the customer topic into a service's replica tables."""

    topics: Sequence[str] = (Topic.CUSTOMER,)
    version = 2
    """The shape of the tables (`ddl`); raised with every change to it (2: the alias
    table of merged customers, `customer_aliases`)."""

    def __init__(self, table: str, personal_columns: Sequence[PersonalColumns] = ()) -> None:
        self.name = table
        self.table = table
        self.personal_columns = tuple(personal_columns)
        self.parse = READER.parse

    @property
    def ddl(self) -> str:
        return f"""
CREATE TABLE IF NOT EXISTS {self.table} (
    customer_id uuid PRIMARY KEY,
    name text NOT NULL,
    region text,
    owner text,
    first_seen_in text,
    preferred_channels text[] NOT NULL DEFAULT '{{}}',
    opted_out_channels text[] NOT NULL DEFAULT '{{}}',
    updated_at timestamptz NOT NULL
);
"""

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await connection.execute(self.ddl)
        await connection.execute(REFERENCES_DDL)
        await create_alias_table(connection)

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        ids = list({e.customer_id for e in events})
        rows: dict[UUID, Row | None] = {
            r["customer_id"]: dict(r)
            for r in await connection.fetch(
                f"SELECT * FROM {self.table} WHERE customer_id = ANY($1::uuid[]) FOR UPDATE",
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
            updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS)
            parameters = ", ".join(f"${n}" for n in range(1, len(COLUMNS) + 2))
            await connection.executemany(
                f"INSERT INTO {self.table} (customer_id, {', '.join(COLUMNS)}) "
                f"VALUES ({parameters}) ON CONFLICT (customer_id) DO UPDATE SET {updates}",
                [(i, *(r[c] for c in COLUMNS)) for i, r in written],
            )
        await remember_references(connection, references)
        await apply_aliases(connection, events)
        erased = erased_customers(events)
        await erase_personal_columns(connection, erased, self.personal_columns)
        await forget_references(connection, erased)

    async def known(self, connection: asyncpg.Connection | asyncpg.Pool, customer_id: UUID) -> bool:
        """Whether the customer topic has told this service of the customer."""
        return bool(
            await connection.fetchval(
                f"SELECT 1 FROM {self.table} WHERE customer_id = $1", customer_id
            )
        )


async def remember_references(
    connection: asyncpg.Connection, references: Sequence[Reference]
) -> None:
    if references:
        await connection.executemany(
            """INSERT INTO customer_references (source, source_customer_id, customer_id)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING""",
            references,
        )


async def forget_references(connection: asyncpg.Connection, customer_ids: Sequence[UUID]) -> None:
    """Another system's id for a person is personal: an erased customer's go. A message
    naming one later is about someone the CRM has not met (`contracts.references`)."""
    if customer_ids:
        await connection.execute(
            "DELETE FROM customer_references WHERE customer_id = ANY($1::uuid[])",
            list(customer_ids),
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
