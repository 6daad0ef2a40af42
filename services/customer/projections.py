"""The customer directory: one row per customer, folded from the customer topic (its
queries are in `queries.py`), with what its search finds people by (`search.py`) and the
queue of possible duplicates (`duplicate_queue.py`), kept in the same transaction.

`fold` is pure: the row as it was (or None) and one event give the row as it is after.
`CustomerDirectory.apply` loads the rows a batch touches, folds every event in order,
and writes the rows back in one statement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from contracts.envelope import EventEnvelope
from contracts.personal import ERASED
from contracts.topics import Topic
from services.customer import duplicate_queue
from services.customer.merge_projection import fold_merge
from services.customer.search import search_text_of
from services.runtime.customer_aliases import apply_aliases, create_alias_table
from services.runtime.privacy.erasure import erase_personal_columns, erased_customers

Row = dict[str, Any]

COLUMNS = (
    "customer_id",
    "name",
    "kind",
    "industry",
    "region",
    "source_channel",
    "owner",
    "importance_tier",
    "loyalty_stage",
    "value_behaviour",
    "relationship_level",
    "tags",
    "contacts",
    "addresses",
    "preferred_channels",
    "opted_out_channels",
    "customer_references",
    "first_seen_in",
    "version",
    "change_count",
    "registered_at",
    "updated_at",
)
JSON_COLUMNS = ("contacts", "addresses", "customer_references")

DDL = """
CREATE TABLE IF NOT EXISTS customer_directory (
    customer_id uuid PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL,
    industry text,
    region text,
    source_channel text,
    owner text,
    importance_tier text NOT NULL,
    loyalty_stage text NOT NULL,
    value_behaviour text,
    relationship_level text NOT NULL,
    tags text[] NOT NULL DEFAULT '{}',
    contacts jsonb NOT NULL DEFAULT '[]',
    addresses jsonb NOT NULL DEFAULT '[]',
    preferred_channels text[] NOT NULL DEFAULT '{}',
    opted_out_channels text[] NOT NULL DEFAULT '{}',
    customer_references jsonb NOT NULL DEFAULT '[]',
    first_seen_in text,
    version integer NOT NULL,
    change_count integer NOT NULL,
    registered_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    search_text text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS customer_directory_name ON customer_directory (name, customer_id);
CREATE INDEX IF NOT EXISTS customer_directory_tags ON customer_directory USING gin (tags);
CREATE INDEX IF NOT EXISTS customer_directory_owner ON customer_directory (owner);
CREATE INDEX IF NOT EXISTS customer_directory_region ON customer_directory (region);
CREATE INDEX IF NOT EXISTS customer_directory_references
    ON customer_directory USING gin (customer_references jsonb_path_ops);
"""

TRIGRAM_DDL = """
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE INDEX IF NOT EXISTS customer_directory_name_trgm
    ON customer_directory USING gin (name public.gin_trgm_ops);
CREATE INDEX IF NOT EXISTS customer_directory_search_trgm
    ON customer_directory USING gin (search_text public.gin_trgm_ops);
"""


def fold(row: Row | None, event: EventEnvelope[Any]) -> Row | None:
    """The directory row after `event`. Events before registration leave no row."""
    payload = event.payload
    kind = event.event_type
    if kind == "customer.registered":
        row = {
            "customer_id": event.customer_id,
            "name": payload.name,
            "kind": payload.kind.value,
            "industry": payload.industry,
            "region": payload.region,
            "source_channel": payload.source_channel,
            "owner": payload.owner,
            **_classification(payload.classification.model_dump(mode="json")),
            "tags": list(payload.tags),
            "contacts": [c.model_dump(mode="json") for c in payload.contacts],
            "addresses": [a.model_dump(mode="json") for a in payload.addresses],
            **_channels(payload.channel_preferences.model_dump(mode="json")),
            "customer_references": [r.model_dump(mode="json") for r in payload.references],
            "first_seen_in": payload.first_seen_in,
            "change_count": 0,
            "registered_at": event.occurred_at,
        }
    elif row is None:
        return None
    else:
        row = dict(row)
        if kind == "customer.profile_changed":
            values = payload.model_dump(mode="json")
            for name in payload.changed:
                row[name] = values.get(name)
        elif kind == "customer.address_set":
            address = payload.address.model_dump(mode="json")
            row["addresses"] = [a for a in row["addresses"] if a["label"] != address["label"]] + [
                address
            ]
        elif kind == "customer.address_removed":
            row["addresses"] = [a for a in row["addresses"] if a["label"] != payload.label]
        elif kind in ("customer.contact_added", "customer.contact_changed"):
            contact = payload.contact.model_dump(mode="json")
            others = [c for c in row["contacts"] if c["contact_id"] != contact["contact_id"]]
            if kind == "customer.contact_added":
                row["contacts"] = [*others, contact]
            else:
                row["contacts"] = [
                    contact if c["contact_id"] == contact["contact_id"] else c
                    for c in row["contacts"]
                ]
        elif kind == "customer.contact_removed":
            row["contacts"] = [c for c in row["contacts"] if c["contact_id"] != payload.contact_id]
        elif kind == "customer.classified":
            row.update(_classification(payload.classification.model_dump(mode="json")))
        elif kind == "customer.tagged":
            row["tags"] = [*row["tags"], *(t for t in payload.tags if t not in row["tags"])]
        elif kind == "customer.untagged":
            row["tags"] = [t for t in row["tags"] if t != payload.tag]
        elif kind == "customer.reference_added":
            reference = payload.reference.model_dump(mode="json")
            if reference not in row["customer_references"]:
                row["customer_references"] = [*row["customer_references"], reference]
        elif kind == "customer.channel_preferences_changed":
            row.update(_channels(payload.channel_preferences.model_dump(mode="json")))
        elif kind in ("customer.absorbed", "customer.absorption_undone"):
            row = fold_merge(row, event)
        elif kind == "customer.erased":
            row.update(name=ERASED, contacts=[], addresses=[], customer_references=[])
        elif kind == duplicate_queue.DISMISSED:
            pass  # the queue folds it (`duplicate_queue.record_dismissals`)
        else:
            return row
    row["version"] = event.aggregate_version or row.get("version", 0)
    row["change_count"] = row["change_count"] + 1
    row["updated_at"] = event.occurred_at
    return row


def _classification(values: dict[str, Any]) -> Row:
    return {
        "importance_tier": values["importance_tier"],
        "loyalty_stage": values["loyalty_stage"],
        "value_behaviour": values.get("value_behaviour"),
        "relationship_level": values["relationship_level"],
    }


def _channels(values: dict[str, Any]) -> Row:
    return {
        "preferred_channels": list(values.get("preferred", [])),
        "opted_out_channels": list(values.get("opted_out", [])),
    }


def row_from_record(record: asyncpg.Record) -> Row:
    row = dict(record)
    for name in JSON_COLUMNS:
        if isinstance(row.get(name), str):
            row[name] = json.loads(row[name])
    return row


class CustomerDirectory:
    name = "customer_directory"
    version = 3
    """The shape of the tables (`create_tables`); raised with every change to it (2: the
    alias table of merged customers, `customer_aliases`; 3: `search_text` and the queue of
    possible duplicates)."""
    topics: Sequence[str] = (Topic.CUSTOMER,)

    def __init__(self, phone_region: str = "CN") -> None:
        self.phone_region = phone_region
        """How phone numbers written without a country code are read (search, duplicates)."""

    async def create_tables(self, connection: asyncpg.Connection) -> None:
        await connection.execute(DDL)
        await create_alias_table(connection)
        await connection.execute(duplicate_queue.DDL)
        try:
            async with connection.transaction():
                await connection.execute(TRIGRAM_DDL)
        except asyncpg.InsufficientPrivilegeError:
            pass  # substring search still works, without the trigram index

    async def apply(
        self, connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
    ) -> None:
        ids = list({e.customer_id for e in events})
        rows: dict[UUID, Row | None] = {
            r["customer_id"]: row_from_record(r)
            for r in await connection.fetch(
                "SELECT * FROM customer_directory WHERE customer_id = ANY($1::uuid[]) FOR UPDATE",
                ids,
            )
        }
        touched: set[UUID] = set()
        for event in events:
            folded = fold(rows.get(event.customer_id), event)
            if folded is not None:
                rows[event.customer_id] = folded
                touched.add(event.customer_id)
        written = [r for i in touched if (r := rows[i]) is not None]
        if written:
            await upsert(connection, written, self.phone_region)
        await apply_aliases(connection, events)
        await duplicate_queue.record_dismissals(connection, events)
        await duplicate_queue.refresh(connection, written, self.phone_region)
        await erase_personal_columns(connection, erased_customers(events), ())


async def upsert(connection: asyncpg.Connection, rows: list[Row], phone_region: str) -> None:
    columns = (*COLUMNS, "search_text")
    placeholders = ", ".join(
        f"${i}::jsonb" if c in JSON_COLUMNS else f"${i}" for i, c in enumerate(columns, 1)
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    await connection.executemany(
        f"INSERT INTO customer_directory ({', '.join(columns)}) VALUES ({placeholders}) "
        f"ON CONFLICT (customer_id) DO UPDATE SET {updates}",
        [
            (
                *(json.dumps(r[c]) if c in JSON_COLUMNS else r[c] for c in COLUMNS),
                search_text_of(r, phone_region),
            )
            for r in rows
        ],
    )
