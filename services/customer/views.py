"""HTTP queries of the customer service: the directory (search, export, one customer,
the customer another system names), a customer as of a past moment and their history
(from the event store), and the key of their sealed personal values."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from contracts.customer import CustomerKind, ImportanceTier, LoyaltyStage
from contracts.personal import Personal
from contracts.references import CustomerReference
from services.customer.dependencies import App, Pool, Runtime
from services.customer.duplicate_checks import phone_region_of
from services.customer.projections import COLUMNS, JSON_COLUMNS, Row
from services.customer.queries import (
    DIRECTORY_ORDER,
    DirectoryQuery,
    find_by_reference,
    find_customers,
    get_customer,
)
from services.runtime.errors import NotFound
from services.runtime.http.answers import AsOf, HistoryEntry, etag
from services.runtime.http.audit import AUDITED_CUSTOMER
from services.runtime.http.authorization import requires
from services.runtime.http.csvexport import csv_response, paged_csv
from services.runtime.http.paging import Position
from services.runtime.privacy.keyring import CustomerErased as CustomerErasedError

router = APIRouter(tags=["customers"])


# Response models ---------------------------------------------------------------------


class CustomerView(BaseModel):
    customer_id: UUID
    version: int
    name: Personal
    kind: str
    industry: str | None
    region: str | None
    source_channel: str | None
    owner: str | None
    tags: list[str]
    contacts: list[dict[str, Any]]
    addresses: list[dict[str, Any]]
    classification: dict[str, Any]
    channel_preferences: dict[str, Any]
    references: list[CustomerReference] = Field(
        default_factory=list, description="How other systems name this customer."
    )
    first_seen_in: str | None = Field(
        default=None, description="The system through which the customer became known."
    )
    registered_at: datetime
    updated_at: datetime


class CustomerPage(BaseModel):
    items: list[CustomerView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class CustomerKey(BaseModel):
    customer_id: UUID
    key: str = Field(description="Base64 of the customer's 32-byte AES-256-GCM key.")


def view_of_row(row: Row) -> CustomerView:
    return CustomerView(
        customer_id=row["customer_id"],
        version=row["version"],
        name=row["name"],
        kind=row["kind"],
        industry=row["industry"],
        region=row["region"],
        source_channel=row["source_channel"],
        owner=row["owner"],
        tags=row["tags"],
        contacts=row["contacts"],
        addresses=row["addresses"],
        classification={
            k: row[k]
            for k in ("importance_tier", "loyalty_stage", "value_behaviour", "relationship_level")
        },
        channel_preferences={
            "preferred": row["preferred_channels"],
            "opted_out": row["opted_out_channels"],
        },
        references=row["customer_references"],
        first_seen_in=row["first_seen_in"],
        registered_at=row["registered_at"],
        updated_at=row["updated_at"],
    )


# Filters -----------------------------------------------------------------------------


def directory_query(
    request: Request,
    name: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Part of the name of the customer or of a contact person, any case "
            "and width; or part of a contact person's e-mail address; or a phone number in "
            "any format (`138 0013 8000`, `+86-138-0013-8000`), or some of its digits.",
        ),
    ] = None,
    kind: CustomerKind | None = None,
    industry: Annotated[str | None, Query(max_length=200)] = None,
    region: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    importance_tier: ImportanceTier | None = None,
    loyalty_stage: LoyaltyStage | None = None,
) -> DirectoryQuery:
    return DirectoryQuery(
        name=name,
        kind=kind.value if kind else None,
        industry=industry,
        region=region,
        tag=tag,
        owner=owner,
        importance_tier=importance_tier.value if importance_tier else None,
        loyalty_stage=loyalty_stage.value if loyalty_stage else None,
        phone_region=phone_region_of(request),
    )


Filters = Annotated[DirectoryQuery, Depends(directory_query)]


# Keys --------------------------------------------------------------------------------


@router.get(
    "/customers/{customer_id}/key",
    dependencies=[requires("keys:read")],
    summary="The key that opens this customer's sealed personal values",
    description="For systems that consume the CRM's topics and must read personal fields "
    "(`contracts.personal.open_value`). 410 once the customer was erased.",
    responses={410: {"description": "The customer was erased; their key is gone."}},
)
async def customer_key(customer_id: UUID, app: App, rt: Runtime) -> CustomerKey:
    await asyncio.to_thread(app.customer, customer_id)  # 404 for an unknown customer
    key = (await asyncio.to_thread(rt.keyring.opening_keys, [customer_id])).get(customer_id)
    if key is None:
        if await asyncio.to_thread(rt.keyring.is_erased, customer_id):
            raise CustomerErasedError(customer_id)
        key = await asyncio.to_thread(rt.keyring.sealing_key, customer_id)
    return CustomerKey(customer_id=customer_id, key=base64.b64encode(key).decode())


# The directory -----------------------------------------------------------------------


@router.get(
    "/customers/by-reference/{source}/{source_customer_id}",
    dependencies=[requires("customers:read")],
    summary="The customer another system names by its own id",
    responses={404: {"description": "No customer carries that reference."}},
)
async def customer_by_reference(
    source: str, source_customer_id: str, db: Pool, request: Request
) -> CustomerView:
    row = await find_by_reference(db, source, source_customer_id)
    if row is None:
        raise NotFound(f"no customer is known as {source_customer_id!r} in {source!r}")
    setattr(request.state, AUDITED_CUSTOMER, str(row["customer_id"]))
    return view_of_row(row)


@router.get(
    "/customers", dependencies=[requires("customers:read")], summary="Search the customer directory"
)
async def search_customers(
    db: Pool,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> CustomerPage:
    after = DIRECTORY_ORDER.after(cursor)
    rows = await find_customers(db, filters, limit=limit + 1, after=after)
    return CustomerPage(
        items=[view_of_row(r) for r in rows[:limit]],
        next_cursor=DIRECTORY_ORDER.next_cursor(rows, limit),
    )


CSV_COLUMNS = tuple(c for c in COLUMNS if c not in (*JSON_COLUMNS, "change_count"))


@router.get(
    "/customers/export.csv",
    dependencies=[requires("customers:read")],
    summary="Export every customer matching the filters as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_customers(db: Pool, filters: Filters) -> StreamingResponse:
    async def fetch(after: Position | None) -> list[Row]:
        return await find_customers(db, filters, limit=1000, after=after)

    return csv_response(paged_csv(fetch, CSV_COLUMNS, DIRECTORY_ORDER), "customers.csv")


@router.get(
    "/customers/{customer_id}",
    dependencies=[requires("customers:read")],
    summary="A customer, now or as they were at a past moment",
    responses={404: {"description": "No such customer (at that moment)."}},
)
async def read_customer(
    customer_id: UUID,
    app: App,
    db: Pool,
    response: Response,
    as_of: AsOf = None,
) -> CustomerView:
    if as_of is not None:
        customer = await asyncio.to_thread(app.customer_as_of, customer_id, as_of)
        view = CustomerView.model_validate(customer.as_dict())
    else:
        row = await get_customer(db, customer_id)
        if row is None:
            raise NotFound(f"no customer with id {customer_id} in the directory")
        view = view_of_row(row)
    etag(response, view.version)
    return view


@router.get(
    "/customers/{customer_id}/history",
    dependencies=[requires("customers:read")],
    summary="Every change to a customer: what, when and by whom",
)
async def customer_history(customer_id: UUID, app: App) -> list[HistoryEntry]:
    entries = await asyncio.to_thread(app.history, customer_id)
    return [HistoryEntry.model_validate(e) for e in entries]
