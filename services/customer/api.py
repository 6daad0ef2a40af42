"""HTTP routes of the customer service: commands, directory queries, history."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, model_validator

from contracts.customer import (
    Address,
    ChannelPreferences,
    Classification,
    ContactChannel,
    ContactDetails,
    CustomerKind,
    ImportanceTier,
    LoyaltyStage,
    Phone,
    RelationshipLevel,
    ShortText,
    Tag,
    ValueBehaviour,
)
from contracts.references import CustomerReference
from services.customer.application import CustomerApplication
from services.customer.projections import (
    COLUMNS,
    JSON_COLUMNS,
    DirectoryQuery,
    Row,
    find_by_reference,
    find_customers,
    get_customer,
)
from services.runtime.errors import NotFound, RuleViolation
from services.runtime.http.commands import ExpectedVersion, StrictBody
from services.runtime.http.security import requires
from services.runtime.privacy.keyring import CustomerErased as CustomerErasedError
from services.runtime.service import ServiceRuntime, current_runtime

router = APIRouter(tags=["customers"])

EXAMPLE_CUSTOMER: dict[str, Any] = {
    "name": "上海华信贸易有限公司",
    "kind": "business",
    "industry": "retail",
    "region": "华东",
    "source_channel": "trade show",
    "owner": "李娜",
    "tags": ["key-account"],
    "contacts": [
        {
            "name": "张伟",
            "title": "采购经理",
            "phones": ["+86 138 0013 8000"],
            "emails": ["zhang.wei@huaxin.example"],
        }
    ],
    "addresses": [
        {"label": "office", "line1": "浦东新区世纪大道 100 号", "city": "上海", "country": "CN"}
    ],
    "classification": {
        "importance_tier": "important",
        "loyalty_stage": "new",
        "value_behaviour": "rational",
        "relationship_level": "responsive",
    },
    "channel_preferences": {"preferred": ["wechat", "phone"], "opted_out": ["sms"]},
}


# Request and response models -------------------------------------------------------


class NewContact(ContactDetails):
    model_config = ConfigDict(extra="forbid")


class RegisterCustomer(StrictBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_CUSTOMER]})

    name: ShortText
    kind: CustomerKind
    industry: ShortText | None = None
    region: ShortText | None = None
    source_channel: ShortText | None = None
    owner: ShortText | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    contacts: list[NewContact] = Field(default_factory=list, max_length=50)
    addresses: list[Address] = Field(default_factory=list, max_length=20)
    classification: Classification = Field(default_factory=Classification)
    channel_preferences: ChannelPreferences = Field(default_factory=ChannelPreferences)


class ProfileChanges(StrictBody):
    """Only the fields present are changed; null clears an optional field."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"region": "华南", "owner": "王芳"}]}
    )

    name: ShortText | None = None
    kind: CustomerKind | None = None
    industry: ShortText | None = None
    region: ShortText | None = None
    source_channel: ShortText | None = None
    owner: ShortText | None = None


class ContactChanges(StrictBody):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"title": "采购总监"}]}
    )

    name: ShortText | None = None
    title: ShortText | None = None
    phones: list[Phone] | None = Field(default=None, max_length=10)
    emails: list[EmailStr] | None = Field(default=None, max_length=10)


class AddressBody(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"line1": "天河路 385 号", "city": "广州", "country": "CN"}]
        },
    )

    line1: ShortText
    line2: ShortText | None = None
    city: ShortText
    region: ShortText | None = None
    postal_code: str | None = Field(default=None, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code.")


class ClassificationChanges(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"importance_tier": "vip", "loyalty_stage": "loyal"}]},
    )

    importance_tier: ImportanceTier | None = None
    loyalty_stage: LoyaltyStage | None = None
    value_behaviour: ValueBehaviour | None = None
    relationship_level: RelationshipLevel | None = None


class TagBody(StrictBody):
    """One tag (`tag`) or several (`tags`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"tag": "vip-2026"}, {"tags": ["vip-2026", "华东"]}]},
    )

    tag: Tag | None = None
    tags: list[Tag] | None = Field(default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _one_or_several(self) -> TagBody:
        if (self.tag is None) == (self.tags is None):
            raise ValueError("give either `tag` or `tags`")
        return self

    def all_tags(self) -> list[str]:
        return [self.tag] if self.tag is not None else list(self.tags or [])


class ChannelPreferencesBody(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"preferred": ["email"], "opted_out": ["phone", "sms"]}]},
    )

    preferred: list[ContactChannel] = Field(default_factory=list)
    opted_out: list[ContactChannel] = Field(default_factory=list)


class Accepted(BaseModel):
    customer_id: UUID
    version: int = Field(description="The customer's version after the command.")
    contact_id: str | None = None


class CustomerView(BaseModel):
    customer_id: UUID
    version: int
    name: str
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


class HistoryEntry(BaseModel):
    version: int
    event_type: str
    recorded_at: datetime
    actor: str | None
    correlation_id: str | None
    change: dict[str, Any]


# Dependencies ------------------------------------------------------------------------


def customers(rt: Annotated[ServiceRuntime, Depends(current_runtime)]) -> CustomerApplication:
    assert isinstance(rt.application, CustomerApplication)
    return rt.application


App = Annotated[CustomerApplication, Depends(customers)]
Version = ExpectedVersion


def accepted(response: Response, customer_id: UUID, version: int, **extra: Any) -> Accepted:
    response.headers["ETag"] = f'"{version}"'
    return Accepted(customer_id=customer_id, version=version, **extra)


# Commands ----------------------------------------------------------------------------


@router.post(
    "/customers",
    dependencies=[requires("customers:write")],
    status_code=201,
    summary="Register a customer",
)
def register_customer(body: RegisterCustomer, app: App, response: Response) -> Accepted:
    customer = app.register(**body.model_dump(mode="json"))
    response.headers["Location"] = f"/customers/{customer.id}"
    return accepted(response, customer.id, customer.version)


@router.patch(
    "/customers/{customer_id}/profile",
    dependencies=[requires("customers:write")],
    summary="Change profile fields",
)
def change_profile(
    customer_id: UUID, body: ProfileChanges, app: App, version: Version, response: Response
) -> Accepted:
    changes = body.model_dump(mode="json", include=body.model_fields_set)
    if not changes:
        raise RuleViolation("name at least one field to change")
    customer = app.change_profile(customer_id, changes, version)
    return accepted(response, customer_id, customer.version)


@router.put(
    "/customers/{customer_id}/addresses/{label}",
    dependencies=[requires("customers:write")],
    summary="Add or replace an address",
)
def set_address(
    customer_id: UUID,
    label: Tag,
    body: AddressBody,
    app: App,
    version: Version,
    response: Response,
) -> Accepted:
    address = Address.model_validate({**body.model_dump(mode="json"), "label": label})
    customer = app.set_address(customer_id, address.model_dump(mode="json"), version)
    return accepted(response, customer_id, customer.version)


@router.delete(
    "/customers/{customer_id}/addresses/{label}",
    dependencies=[requires("customers:write")],
    summary="Remove an address",
)
def remove_address(
    customer_id: UUID, label: str, app: App, version: Version, response: Response
) -> Accepted:
    customer = app.remove_address(customer_id, label, version)
    return accepted(response, customer_id, customer.version)


@router.post(
    "/customers/{customer_id}/contacts",
    dependencies=[requires("customers:write")],
    status_code=201,
    summary="Add a contact person",
)
def add_contact(
    customer_id: UUID, body: NewContact, app: App, version: Version, response: Response
) -> Accepted:
    customer, contact_id = app.add_contact(customer_id, body.model_dump(mode="json"), version)
    return accepted(response, customer_id, customer.version, contact_id=contact_id)


@router.patch(
    "/customers/{customer_id}/contacts/{contact_id}",
    dependencies=[requires("customers:write")],
    summary="Change a contact person",
)
def change_contact(
    customer_id: UUID,
    contact_id: str,
    body: ContactChanges,
    app: App,
    version: Version,
    response: Response,
) -> Accepted:
    changes = body.model_dump(mode="json", include=body.model_fields_set)
    if not changes:
        raise RuleViolation("name at least one field to change")
    for listed in ("phones", "emails"):
        if listed in changes and changes[listed] is None:
            changes[listed] = []  # null clears the list
    customer = app.change_contact(customer_id, contact_id, changes, version)
    return accepted(response, customer_id, customer.version)


@router.delete(
    "/customers/{customer_id}/contacts/{contact_id}",
    dependencies=[requires("customers:write")],
    summary="Remove a contact person",
)
def remove_contact(
    customer_id: UUID, contact_id: str, app: App, version: Version, response: Response
) -> Accepted:
    customer = app.remove_contact(customer_id, contact_id, version)
    return accepted(response, customer_id, customer.version)


@router.patch(
    "/customers/{customer_id}/classification",
    dependencies=[requires("customers:write")],
    summary="Change importance tier, loyalty stage, value behaviour or relationship level",
)
def classify(
    customer_id: UUID,
    body: ClassificationChanges,
    app: App,
    version: Version,
    response: Response,
) -> Accepted:
    changes = body.model_dump(mode="json", include=body.model_fields_set)
    for required in ("importance_tier", "loyalty_stage", "relationship_level"):
        if required in changes and changes[required] is None:
            raise RuleViolation(f"{required} cannot be cleared, only changed")
    if not changes:
        raise RuleViolation("name at least one classification to change")
    customer = app.classify(customer_id, changes, version)
    return accepted(response, customer_id, customer.version)


@router.post(
    "/customers/{customer_id}/tags",
    dependencies=[requires("customers:write")],
    summary="Tag a customer",
)
def tag_customer(
    customer_id: UUID, body: TagBody, app: App, version: Version, response: Response
) -> Accepted:
    customer = app.tag(customer_id, body.all_tags(), version)
    return accepted(response, customer_id, customer.version)


@router.delete(
    "/customers/{customer_id}/tags/{tag}",
    dependencies=[requires("customers:write")],
    summary="Remove a tag",
)
def untag_customer(
    customer_id: UUID, tag: str, app: App, version: Version, response: Response
) -> Accepted:
    customer = app.untag(customer_id, tag, version)
    return accepted(response, customer_id, customer.version)


@router.put(
    "/customers/{customer_id}/channel-preferences",
    dependencies=[requires("customers:write")],
    summary="Set preferred channels and opt-outs",
)
def set_channel_preferences(
    customer_id: UUID,
    body: ChannelPreferencesBody,
    app: App,
    version: Version,
    response: Response,
) -> Accepted:
    customer = app.set_channel_preferences(customer_id, body.model_dump(mode="json"), version)
    return accepted(response, customer_id, customer.version)


@router.post(
    "/customers/{customer_id}/references",
    dependencies=[requires("customers:write")],
    summary="Record how another system names this customer",
    description="Facts that system publishes with this reference then land on this customer.",
)
def add_reference(
    customer_id: UUID,
    body: CustomerReference,
    app: App,
    version: Version,
    response: Response,
) -> Accepted:
    customer = app.add_reference(customer_id, body.model_dump(mode="json"), version)
    return accepted(response, customer_id, customer.version)


# Erasure and keys --------------------------------------------------------------------


class EraseCustomer(StrictBody):
    request_reference: str | None = Field(
        default=None, max_length=100, description="The erasure request (a case number)."
    )


class Erased(BaseModel):
    customer_id: UUID
    version: int
    erased: bool = True


@router.post(
    "/customers/{customer_id}/erasure",
    dependencies=[requires("admin")],
    summary="Forget a customer (right to erasure)",
    description="Destroys the customer's key, so every personal value of theirs in any "
    "stored event or Kafka message reads as `[erased]`, and records `customer.erased`, "
    "on which every service removes their personal data from its views. Amounts, dates, "
    "classifications and segments stay. Erasing again changes nothing.",
)
async def erase_customer(
    customer_id: UUID, body: EraseCustomer, rt: Runtime, response: Response
) -> Erased:
    app = customers(rt)
    await _in_thread(app.customer, customer_id)  # 404 for an unknown customer
    await _in_thread(rt.keyring.destroy, customer_id)
    customer = await _in_thread(app.erase, customer_id, body.request_reference)
    response.headers["ETag"] = f'"{customer.version}"'
    return Erased(customer_id=customer_id, version=customer.version)


class CustomerKey(BaseModel):
    customer_id: UUID
    key: str = Field(description="Base64 of the customer's 32-byte AES-256-GCM key.")


@router.get(
    "/customers/{customer_id}/key",
    dependencies=[requires("keys:read")],
    summary="The key that opens this customer's sealed personal values",
    description="For systems that consume the CRM's topics and must read personal fields "
    "(`contracts.personal.open_value`). 410 once the customer was erased.",
    responses={410: {"description": "The customer was erased; their key is gone."}},
)
async def customer_key(customer_id: UUID, rt: Runtime) -> CustomerKey:
    await _in_thread(customers(rt).customer, customer_id)  # 404 for an unknown customer
    key = (await _in_thread(rt.keyring.opening_keys, [customer_id])).get(customer_id)
    if key is None:
        if await _in_thread(rt.keyring.is_erased, customer_id):
            raise CustomerErasedError(customer_id)
        key = await _in_thread(rt.keyring.sealing_key, customer_id)
    return CustomerKey(customer_id=customer_id, key=base64.b64encode(key).decode())


# Queries -----------------------------------------------------------------------------


def directory_query(
    name: Annotated[
        str | None, Query(max_length=200, description="Part of the name, any case.")
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
    )


Filters = Annotated[DirectoryQuery, Depends(directory_query)]
Runtime = Annotated[ServiceRuntime, Depends(current_runtime)]


def encode_cursor(row: Row) -> str:
    raw = json.dumps([row["name"], str(row["customer_id"])], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, customer_id = json.loads(base64.urlsafe_b64decode(padded))
        return str(name), UUID(customer_id)
    except (ValueError, TypeError) as exc:
        raise RuleViolation("cursor is not one this service issued; start without it") from exc


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


@router.get(
    "/customers/by-reference/{source}/{source_customer_id}",
    dependencies=[requires("customers:read")],
    summary="The customer another system names by its own id",
    responses={404: {"description": "No customer carries that reference."}},
)
async def customer_by_reference(source: str, source_customer_id: str, rt: Runtime) -> CustomerView:
    assert rt.pool is not None
    row = await find_by_reference(rt.pool, source, source_customer_id)
    if row is None:
        raise NotFound(f"no customer is known as {source_customer_id!r} in {source!r}")
    return view_of_row(row)


@router.get(
    "/customers", dependencies=[requires("customers:read")], summary="Search the customer directory"
)
async def search_customers(
    rt: Runtime,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> CustomerPage:
    assert rt.pool is not None
    after = decode_cursor(cursor) if cursor else None
    rows = await find_customers(rt.pool, filters, limit=limit + 1, after=after)
    page, more = rows[:limit], len(rows) > limit
    return CustomerPage(
        items=[view_of_row(r) for r in page],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


CSV_COLUMNS = tuple(c for c in COLUMNS if c not in (*JSON_COLUMNS, "change_count"))


@router.get(
    "/customers/export.csv",
    dependencies=[requires("customers:read")],
    summary="Export every customer matching the filters as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_customers(rt: Runtime, filters: Filters) -> StreamingResponse:
    assert rt.pool is not None
    pool = rt.pool

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        after: tuple[str, UUID] | None = None
        while True:
            rows = await find_customers(pool, filters, limit=1000, after=after)
            for row in rows:
                writer.writerow(
                    ["|".join(row[c]) if isinstance(row[c], list) else row[c] for c in CSV_COLUMNS]
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(rows) < 1000:
                return
            after = (rows[-1]["name"], rows[-1]["customer_id"])

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )


@router.get(
    "/customers/{customer_id}",
    dependencies=[requires("customers:read")],
    summary="A customer, now or as they were at a past moment",
    responses={404: {"description": "No such customer (at that moment)."}},
)
async def read_customer(
    customer_id: UUID,
    rt: Runtime,
    response: Response,
    as_of: Annotated[
        AwareDatetime | None,
        Query(description="A past moment with its UTC offset; read from the event store."),
    ] = None,
) -> CustomerView:
    if as_of is not None:
        app = customers(rt)
        customer = await _in_thread(app.customer_as_of, customer_id, as_of)
        view = CustomerView.model_validate(customer.as_dict())
    else:
        assert rt.pool is not None
        row = await get_customer(rt.pool, customer_id)
        if row is None:
            raise NotFound(f"no customer with id {customer_id} in the directory")
        view = view_of_row(row)
    response.headers["ETag"] = f'"{view.version}"'
    return view


@router.get(
    "/customers/{customer_id}/history",
    dependencies=[requires("customers:read")],
    summary="Every change to a customer: what, when and by whom",
)
async def customer_history(customer_id: UUID, rt: Runtime) -> list[HistoryEntry]:
    app = customers(rt)
    entries = await _in_thread(app.history, customer_id)
    return [HistoryEntry.model_validate(e) for e in entries]


async def _in_thread(function: Any, *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)
