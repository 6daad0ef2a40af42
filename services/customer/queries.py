"""Queries on the customer directory: search with filters in name order (the search
finds a customer by its name, its contact persons' names, phones and e-mails:
`search.py`), one customer, the customer another system names by its reference."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TypeAlias
from uuid import UUID

import asyncpg

from services.customer.projections import Row, row_from_record
from services.customer.search import search_patterns
from services.runtime.http.paging import Position, SortKey
from services.runtime.storage.filters import Where

Connection: TypeAlias = asyncpg.Connection | asyncpg.Pool

DIRECTORY_ORDER = SortKey(("name", "customer_id"), (str, UUID))
"""The directory's order: by name, then id."""


NOT_MERGED = "NOT EXISTS (SELECT 1 FROM customer_aliases a WHERE a.customer_id = {row}.customer_id)"
"""The customers not merged into another one (those are shown under their survivor)."""


@dataclass(frozen=True)
class DirectoryQuery:
    """Filters of the directory; every one is optional and they combine with AND."""

    name: str | None = None
    kind: str | None = None
    industry: str | None = None
    region: str | None = None
    tag: str | None = None
    owner: str | None = None
    importance_tier: str | None = None
    loyalty_stage: str | None = None
    phone_region: str = "CN"
    """How `name` is read when it is a phone number without a country code."""

    def where(self) -> Where:
        where = Where()
        if self.name:
            patterns = search_patterns(self.name, self.phone_region)
            matches = " OR ".join(
                f"search_text ILIKE {{{i}}} ESCAPE '\\'" for i in range(len(patterns))
            )
            where.add(f"({matches})", *patterns)
        for column in ("kind", "industry", "region", "owner", "importance_tier", "loyalty_stage"):
            where.equal(column, getattr(self, column))
        where.add("tags @> ARRAY[{}]::text[]", self.tag)
        return where.condition(NOT_MERGED.format(row="customer_directory"))


async def find_customers(
    connection: Connection,
    query: DirectoryQuery,
    *,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    """One page of the directory in name order; `after` is the last (name, id) seen."""
    where = query.where().after(DIRECTORY_ORDER.columns, after, casts=("", "uuid"))
    records = await connection.fetch(
        f"SELECT * FROM customer_directory WHERE {where.sql} "
        f"ORDER BY name, customer_id LIMIT {where.parameter(limit)}",
        *where.values,
    )
    return [row_from_record(r) for r in records]


async def get_customer(connection: Connection, customer_id: UUID) -> Row | None:
    record = await connection.fetchrow(
        "SELECT * FROM customer_directory WHERE customer_id = $1", customer_id
    )
    return row_from_record(record) if record else None


async def find_by_reference(
    connection: Connection, source: str, source_customer_id: str
) -> Row | None:
    record = await connection.fetchrow(
        "SELECT * FROM customer_directory WHERE customer_references @> $1::jsonb "
        f"AND {NOT_MERGED.format(row='customer_directory')} ORDER BY registered_at LIMIT 1",
        json.dumps([{"source": source, "source_customer_id": source_customer_id}]),
    )
    return row_from_record(record) if record else None


async def find_by_references(
    connection: Connection, references: list[tuple[str, str]]
) -> dict[tuple[str, str], UUID]:
    """The customers the directory knows by each of `references` (source, their id), in
    one query (one index probe per reference); the first registered where several are."""
    if not references:
        return {}
    records = await connection.fetch(
        """SELECT w.source, w.source_customer_id, d.customer_id
           FROM unnest($1::text[], $2::text[]) AS w(source, source_customer_id)
           CROSS JOIN LATERAL (
               SELECT customer_id FROM customer_directory
               WHERE customer_references @> jsonb_build_array(jsonb_build_object(
                   'source', w.source, 'source_customer_id', w.source_customer_id))
                 AND NOT EXISTS (SELECT 1 FROM customer_aliases a
                                 WHERE a.customer_id = customer_directory.customer_id)
               ORDER BY registered_at LIMIT 1
           ) AS d""",
        [s for s, _ in references],
        [c for _, c in references],
    )
    # asyncpg's own UUID type is not the standard one the event store can serialise
    return {(r["source"], r["source_customer_id"]): UUID(str(r["customer_id"])) for r in records}
