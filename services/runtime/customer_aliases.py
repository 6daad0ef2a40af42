"""Customers merged into others: each service's alias table, folded from the customer topic.

Every service keeps its records under the customer ids they named. A merge
(`customer.merged` on each absorbed customer) adds an alias, absorbed id → survivor and
merge id, in the service's own `customer_aliases` table; undoing it (`customer.unmerged`)
removes it. Through the alias:

- a read of an absorbed customer (`/customers/{customer_id}/...`, or `?customer_id=`)
  answers 307 Temporary Redirect to the same read of the survivor, with `merged_into`
  and `merge_id` in the body (`follow_merges`; reads of the customer's own history, key
  and past states are not redirected);
- a read of the survivor shows its records and those of the customers merged into it
  (`merge_group`);
- a new fact naming an absorbed customer (an inbound purchase, a logged call, a new
  opportunity) is recorded on the survivor (`survivors`); it stays there when the merge
  is undone, while the facts that named the absorbed customer go back to it with the alias.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import Request
from fastapi.responses import JSONResponse

from contracts.envelope import EventEnvelope

ALIASES_DDL = """
CREATE TABLE IF NOT EXISTS customer_aliases (
    customer_id uuid PRIMARY KEY,
    survivor_id uuid NOT NULL,
    merge_id uuid NOT NULL
);
CREATE INDEX IF NOT EXISTS customer_aliases_survivor ON customer_aliases (survivor_id);
"""

NOT_REDIRECTED = ("/history", "/key")
"""Reads of an absorbed customer that answer about that customer itself."""


async def create_alias_table(connection: asyncpg.Connection) -> None:
    await connection.execute(ALIASES_DDL)


async def apply_aliases(
    connection: asyncpg.Connection, events: Sequence[EventEnvelope[Any]]
) -> None:
    """Add and remove the aliases the batch's merges and undone merges make, in order."""
    for event in events:
        if event.event_type == "customer.merged":
            await connection.execute(
                """INSERT INTO customer_aliases (customer_id, survivor_id, merge_id)
                   VALUES ($1, $2, $3) ON CONFLICT (customer_id)
                   DO UPDATE SET survivor_id = excluded.survivor_id,
                                 merge_id = excluded.merge_id""",
                event.customer_id,
                event.payload.survivor_id,
                event.payload.merge_id,
            )
        elif event.event_type == "customer.unmerged":
            await connection.execute(
                "DELETE FROM customer_aliases WHERE customer_id = $1 AND merge_id = $2",
                event.customer_id,
                event.payload.merge_id,
            )


async def survivors(
    connection: asyncpg.Connection | asyncpg.Pool, customer_ids: Sequence[UUID]
) -> dict[UUID, UUID]:
    """The survivor of each of `customer_ids` that was merged into another customer."""
    if not customer_ids:
        return {}
    rows = await connection.fetch(
        "SELECT customer_id, survivor_id FROM customer_aliases WHERE customer_id = ANY($1::uuid[])",
        list(set(customer_ids)),
    )
    return {UUID(str(r["customer_id"])): UUID(str(r["survivor_id"])) for r in rows}


async def current_customer(
    connection: asyncpg.Connection | asyncpg.Pool, customer_id: UUID
) -> UUID:
    """The customer a new fact naming `customer_id` is recorded on: its survivor while
    it is merged into one, itself otherwise."""
    return (await survivors(connection, [customer_id])).get(customer_id, customer_id)


async def merge_group(
    connection: asyncpg.Connection | asyncpg.Pool, customer_id: UUID
) -> list[UUID]:
    """The customer and those merged into it: whose records a read of it shows."""
    rows = await connection.fetch(
        "SELECT customer_id FROM customer_aliases WHERE survivor_id = $1 ORDER BY customer_id",
        customer_id,
    )
    return [customer_id, *(UUID(str(r["customer_id"])) for r in rows)]


async def merge_group_of(
    connection: asyncpg.Connection | asyncpg.Pool, customer_id: UUID | None
) -> list[UUID] | None:
    """`merge_group` of a customer a filter names; None when it names none."""
    return None if customer_id is None else await merge_group(connection, customer_id)


class MergedAway(Exception):
    """A read named a customer merged into another one."""

    def __init__(self, customer_id: UUID, survivor_id: UUID, merge_id: UUID, location: str):
        super().__init__(f"customer {customer_id} was merged into {survivor_id}")
        self.customer_id = customer_id
        self.survivor_id = survivor_id
        self.merge_id = merge_id
        self.location = location


def merged_away_answer(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MergedAway)
    return JSONResponse(
        {
            "error": f"customer {exc.customer_id} was merged into {exc.survivor_id} "
            f"(merge {exc.merge_id}); its records are shown under that customer",
            "merged_into": str(exc.survivor_id),
            "merge_id": str(exc.merge_id),
        },
        status_code=307,
        headers={"Location": exc.location},
    )


def _named_customer(request: Request) -> tuple[UUID, str] | None:
    """The customer a read names (path first, then query), and where it is named."""
    for where, values in (("path", request.path_params), ("query", request.query_params)):
        raw = values.get("customer_id")
        if raw is not None:
            try:
                return UUID(str(raw)), where
            except ValueError:
                return None  # the route's own validation answers
    return None


async def follow_merges(request: Request) -> None:
    """Route dependency of every read: a read of a merged customer is redirected to its
    survivor (`MergedAway`, answered 307)."""
    if request.method not in ("GET", "HEAD") or "as_of" in request.query_params:
        return
    if request.url.path.endswith(NOT_REDIRECTED):
        return
    named = _named_customer(request)
    pool = getattr(getattr(request.app.state, "runtime", None), "pool", None)
    if named is None or pool is None:
        return
    customer_id, where = named
    row = None
    with contextlib.suppress(asyncpg.UndefinedTableError):
        row = await pool.fetchrow(
            "SELECT survivor_id, merge_id FROM customer_aliases WHERE customer_id = $1",
            customer_id,
        )
    if row is None:
        return
    survivor = UUID(str(row["survivor_id"]))
    if where == "path":
        location = request.url.path.replace(str(customer_id), str(survivor))
        if request.url.query:
            location += f"?{request.url.query}"
    else:
        moved = request.url.include_query_params(customer_id=str(survivor))
        location = f"{moved.path}?{moved.query}"
    raise MergedAway(customer_id, survivor, UUID(str(row["merge_id"])), location)
