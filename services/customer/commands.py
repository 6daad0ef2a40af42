"""HTTP commands of the customer service: register and change customers, their
contacts, addresses, classification, tags, channel consent and references, and erase
them. Queries are in `views.py`."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

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
from contracts.values import LINE, Email, Line
from services.customer.dependencies import (
    App,
    OwnContactDetails,
    OwnCustomer,
    Pool,
    Runtime,
    Version,
)
from services.customer.domain import Customer
from services.customer.duplicate_answers import PossibleDuplicate
from services.customer.duplicate_checks import (
    DuplicateRefusal,
    IfDuplicate,
    phone_region_of,
    refusal,
    registration_duplicates,
)
from services.runtime.errors import RuleViolation
from services.runtime.http import answers
from services.runtime.http.answers import etag
from services.runtime.http.authorization import requires
from services.runtime.http.commands import StrictBody

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


# Request bodies --------------------------------------------------------------------


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
    emails: list[Annotated[Email, LINE]] | None = Field(default=None, max_length=10)


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
    postal_code: Line | None = Field(default=None, max_length=20)
    country: Line = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code.")


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


# Answers -----------------------------------------------------------------------------


class Accepted(answers.Accepted):
    customer_id: UUID
    version: int = Field(description="The customer's version after the command.")
    contact_id: str | None = None


def accepted(response: Response, customer: Customer, **extra: Any) -> Accepted:
    """The answer naming the changed customer and its new version (also the `ETag`)."""
    etag(response, customer.version)
    return Accepted(customer_id=customer.id, version=customer.version, **extra)


# Commands ----------------------------------------------------------------------------


class Registered(Accepted):
    possible_duplicates: list[PossibleDuplicate] = Field(
        default_factory=list,
        description="Customers of the directory this one may be the same as, the most "
        "likely first (registered all the same; `if_duplicate=refuse` refuses instead).",
    )


@router.post(
    "/customers",
    dependencies=[requires("customers:write-any")],
    status_code=201,
    summary="Register a customer",
    description="The answer lists the directory's customers the new one may be the same "
    "as (`possible_duplicates`). With `if_duplicate=refuse` a registration that has any "
    "is refused with 409 and the list, and nothing is recorded; send it again without "
    "(or with `if_duplicate=register`) to confirm that it is a new customer.",
    response_model=Registered,
    responses={409: {"model": DuplicateRefusal, "description": "Possible duplicates."}},
)
async def register_customer(
    body: RegisterCustomer,
    app: App,
    db: Pool,
    request: Request,
    response: Response,
    if_duplicate: Annotated[
        IfDuplicate, Query(description="What to do when the customer may exist already.")
    ] = IfDuplicate.REGISTER,
) -> Registered | JSONResponse:
    values = body.model_dump(mode="json")
    candidates = await registration_duplicates(db, values, phone_region_of(request))
    if candidates and if_duplicate is IfDuplicate.REFUSE:
        return refusal(candidates)
    customer = await asyncio.to_thread(app.register, **values)
    response.headers["Location"] = f"/customers/{customer.id}"
    answer = accepted(response, customer)
    return Registered(**answer.model_dump(), possible_duplicates=candidates)


@router.patch(
    "/customers/{customer_id}/profile",
    dependencies=[requires("customers:write"), OwnCustomer],
    summary="Change profile fields",
)
def change_profile(
    customer_id: UUID, body: ProfileChanges, app: App, version: Version, response: Response
) -> Accepted:
    changes = body.model_dump(mode="json", include=body.model_fields_set)
    if not changes:
        raise RuleViolation("name at least one field to change")
    return accepted(response, app.change_profile(customer_id, changes, version))


@router.put(
    "/customers/{customer_id}/addresses/{label}",
    dependencies=[requires("customers:write-contact"), OwnContactDetails],
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
    return accepted(
        response, app.set_address(customer_id, address.model_dump(mode="json"), version)
    )


@router.delete(
    "/customers/{customer_id}/addresses/{label}",
    dependencies=[requires("customers:write-contact"), OwnContactDetails],
    summary="Remove an address",
)
def remove_address(
    customer_id: UUID, label: str, app: App, version: Version, response: Response
) -> Accepted:
    return accepted(response, app.remove_address(customer_id, label, version))


@router.post(
    "/customers/{customer_id}/contacts",
    dependencies=[requires("customers:write-contact"), OwnContactDetails],
    status_code=201,
    summary="Add a contact person",
)
def add_contact(
    customer_id: UUID, body: NewContact, app: App, version: Version, response: Response
) -> Accepted:
    customer, contact_id = app.add_contact(customer_id, body.model_dump(mode="json"), version)
    return accepted(response, customer, contact_id=contact_id)


@router.patch(
    "/customers/{customer_id}/contacts/{contact_id}",
    dependencies=[requires("customers:write-contact"), OwnContactDetails],
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
    return accepted(response, app.change_contact(customer_id, contact_id, changes, version))


@router.delete(
    "/customers/{customer_id}/contacts/{contact_id}",
    dependencies=[requires("customers:write-contact"), OwnContactDetails],
    summary="Remove a contact person",
)
def remove_contact(
    customer_id: UUID, contact_id: str, app: App, version: Version, response: Response
) -> Accepted:
    return accepted(response, app.remove_contact(customer_id, contact_id, version))


@router.patch(
    "/customers/{customer_id}/classification",
    dependencies=[requires("customers:write"), OwnCustomer],
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
    return accepted(response, app.classify(customer_id, changes, version))


@router.post(
    "/customers/{customer_id}/tags",
    dependencies=[requires("customers:write"), OwnCustomer],
    summary="Tag a customer",
)
def tag_customer(
    customer_id: UUID, body: TagBody, app: App, version: Version, response: Response
) -> Accepted:
    return accepted(response, app.tag(customer_id, body.all_tags(), version))


@router.delete(
    "/customers/{customer_id}/tags/{tag}",
    dependencies=[requires("customers:write"), OwnCustomer],
    summary="Remove a tag",
)
def untag_customer(
    customer_id: UUID, tag: str, app: App, version: Version, response: Response
) -> Accepted:
    return accepted(response, app.untag(customer_id, tag, version))


@router.put(
    "/customers/{customer_id}/channel-preferences",
    dependencies=[requires("customers:write-contact"), OwnContactDetails],
    summary="Set preferred channels and opt-outs",
)
def set_channel_preferences(
    customer_id: UUID,
    body: ChannelPreferencesBody,
    app: App,
    version: Version,
    response: Response,
) -> Accepted:
    return accepted(
        response, app.set_channel_preferences(customer_id, body.model_dump(mode="json"), version)
    )


@router.post(
    "/customers/{customer_id}/references",
    dependencies=[requires("customers:write"), OwnCustomer],
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
    return accepted(response, app.add_reference(customer_id, body.model_dump(mode="json"), version))


# Erasure ----------------------------------------------------------------------------


class EraseCustomer(StrictBody):
    request_reference: Line | None = Field(
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
    customer_id: UUID, body: EraseCustomer, app: App, rt: Runtime, response: Response
) -> Erased:
    await asyncio.to_thread(app.customer, customer_id)  # 404 for an unknown customer
    await asyncio.to_thread(rt.keyring.destroy, customer_id)
    customer = await asyncio.to_thread(app.erase, customer_id, body.request_reference)
    etag(response, customer.version)
    return Erased(customer_id=customer_id, version=customer.version)
