"""Events of the customer service, published on `Topic.CUSTOMER`.

Value vocabularies (kinds, tiers, channels) are closed enumerations: a producer cannot
invent a tier that consumers do not know.
"""

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.envelope import EventPayload
from contracts.personal import PERSONAL
from contracts.references import CustomerReference
from contracts.values import LINE, Email, Line

ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), LINE
]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), LINE]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()\-]{3,30}$"), LINE
]
PersonalText = Annotated[ShortText, PERSONAL]
PersonalPhone = Annotated[Phone, PERSONAL]
PersonalEmail = Annotated[Email, LINE, PERSONAL]


class CustomerKind(StrEnum):
    CONSUMER = "consumer"
    BUSINESS = "business"
    CHANNEL_PARTNER = "channel_partner"
    INTERNAL = "internal"


class ImportanceTier(StrEnum):
    VIP = "vip"
    IMPORTANT = "important"
    ORDINARY = "ordinary"


class LoyaltyStage(StrEnum):
    POTENTIAL = "potential"
    NEW = "new"
    RETURNING = "returning"
    LOYAL = "loyal"


class ValueBehaviour(StrEnum):
    LIGHTHOUSE = "lighthouse"
    FOLLOWER = "follower"
    RATIONAL = "rational"
    BARGAIN_SEEKING = "bargain_seeking"


class RelationshipLevel(StrEnum):
    BASIC = "basic"
    PASSIVE = "passive"
    RESPONSIVE = "responsive"
    PROACTIVE = "proactive"
    PARTNER = "partner"


class ContactChannel(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    EMAIL = "email"
    WECHAT = "wechat"
    MAIL = "mail"


class ContactDetails(BaseModel):
    """What the CRM knows of a person at a customer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: PersonalText
    title: ShortText | None = None
    phones: list[PersonalPhone] = Field(default_factory=list, max_length=10)
    emails: list[PersonalEmail] = Field(default_factory=list, max_length=10)


class ContactPerson(ContactDetails):
    contact_id: Line = Field(min_length=1, max_length=64)


class Address(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    label: Tag = Field(description="What the address is for, e.g. office, billing, shipping.")
    line1: PersonalText
    line2: PersonalText | None = None
    city: PersonalText
    region: ShortText | None = None
    postal_code: Annotated[str, StringConstraints(max_length=20), LINE, PERSONAL] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$"), LINE] = Field(
        description="ISO 3166-1 alpha-2 country code."
    )


class Classification(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    importance_tier: ImportanceTier = ImportanceTier.ORDINARY
    loyalty_stage: LoyaltyStage = LoyaltyStage.POTENTIAL
    value_behaviour: ValueBehaviour | None = None
    relationship_level: RelationshipLevel = RelationshipLevel.BASIC


class ChannelPreferences(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    preferred: list[ContactChannel] = Field(
        default_factory=list, description="Channels in order of preference."
    )
    opted_out: list[ContactChannel] = Field(
        default_factory=list, description="Channels the customer must not be contacted on."
    )


class CustomerRegistered(EventPayload):
    event_type = "customer.registered"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "上海华信贸易有限公司",
                    "kind": "business",
                    "industry": "贸易",
                    "region": "华东",
                    "source_channel": "展会",
                    "owner": "李娜",
                    "tags": ["key-account"],
                    "contacts": [
                        {
                            "contact_id": "c-1",
                            "name": "张伟",
                            "title": "采购经理",
                            "phones": ["+86 138 0013 8000"],
                            "emails": ["zhang.wei@huaxin.com.cn"],
                        }
                    ],
                    "addresses": [
                        {
                            "label": "office",
                            "line1": "浦东新区世纪大道100号",
                            "line2": "20楼",
                            "city": "上海",
                            "region": "上海市",
                            "postal_code": "200120",
                            "country": "CN",
                        }
                    ],
                    "classification": {
                        "importance_tier": "important",
                        "loyalty_stage": "new",
                        "value_behaviour": None,
                        "relationship_level": "responsive",
                    },
                    "channel_preferences": {"preferred": ["wechat", "phone"], "opted_out": ["sms"]},
                    "references": [{"source": "shop-cn", "source_customer_id": "U-1029"}],
                    "first_seen_in": None,
                }
            ]
        }
    )

    name: PersonalText
    kind: CustomerKind
    industry: ShortText | None = None
    region: ShortText | None = None
    source_channel: ShortText | None = None
    owner: ShortText | None = None
    tags: list[Tag] = Field(default_factory=list)
    contacts: list[ContactPerson] = Field(default_factory=list)
    addresses: list[Address] = Field(default_factory=list)
    classification: Classification = Field(default_factory=Classification)
    channel_preferences: ChannelPreferences = Field(default_factory=ChannelPreferences)
    references: list[CustomerReference] = Field(
        default_factory=list, description="How other systems name this customer."
    )
    first_seen_in: Line | None = Field(
        default=None,
        description="Set when the customer became known through another system's event "
        "(a purchase, a call) rather than being registered in the CRM.",
    )


class CustomerReferenceAdded(EventPayload):
    """Another system's name for the customer; facts it publishes land on this customer."""

    event_type = "customer.reference_added"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"reference": {"source": "callcentre", "source_customer_id": "86-13800138000"}}
            ]
        }
    )

    reference: CustomerReference


class CustomerProfileChanged(EventPayload):
    """Only the fields that changed are present; an explicit null clears a field."""

    event_type = "customer.profile_changed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"owner": "王芳", "region": "华南", "changed": ["owner", "region"]}]
        }
    )

    name: PersonalText | None = None
    kind: CustomerKind | None = None
    industry: ShortText | None = None
    region: ShortText | None = None
    source_channel: ShortText | None = None
    owner: ShortText | None = None
    changed: list[Line] = Field(description="Names of the fields that changed.")


class CustomerAddressSet(EventPayload):
    """An address was added, or the address with the same label replaced."""

    event_type = "customer.address_set"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "address": {
                        "label": "billing",
                        "line1": "天河区珠江新城华夏路8号",
                        "city": "广州",
                        "region": "广东省",
                        "postal_code": "510623",
                        "country": "CN",
                    }
                }
            ]
        }
    )

    address: Address


class CustomerAddressRemoved(EventPayload):
    event_type = "customer.address_removed"
    model_config = ConfigDict(json_schema_extra={"examples": [{"label": "shipping"}]})

    label: Tag


class ContactPersonAdded(EventPayload):
    event_type = "customer.contact_added"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "contact": {
                        "contact_id": "c-2",
                        "name": "刘洋",
                        "title": "财务主管",
                        "phones": ["+86 139 1234 5678"],
                        "emails": [],
                    }
                }
            ]
        }
    )

    contact: ContactPerson


class ContactPersonChanged(EventPayload):
    """The contact person as it is after the change."""

    event_type = "customer.contact_changed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "contact": {
                        "contact_id": "c-1",
                        "name": "张伟",
                        "title": "采购总监",
                        "phones": ["+86 138 0013 8000"],
                        "emails": ["zhang.wei@huaxin.com.cn"],
                    }
                }
            ]
        }
    )

    contact: ContactPerson


class ContactPersonRemoved(EventPayload):
    event_type = "customer.contact_removed"
    model_config = ConfigDict(json_schema_extra={"examples": [{"contact_id": "c-2"}]})

    contact_id: Line


class CustomerClassified(EventPayload):
    """The four classifications as they are after the change."""

    event_type = "customer.classified"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "classification": {
                        "importance_tier": "vip",
                        "loyalty_stage": "loyal",
                        "value_behaviour": "lighthouse",
                        "relationship_level": "partner",
                    }
                }
            ]
        }
    )

    classification: Classification


class CustomerTaggedV1(EventPayload):
    """Version 1: one tag per event. Still accepted; read as version 2 (`tags: [tag]`)."""

    event_type = "customer.tagged"
    schema_version = 1
    model_config = ConfigDict(json_schema_extra={"examples": [{"tag": "key-account"}]})

    tag: Tag


class CustomerTagged(EventPayload):
    """Tags added to the customer, one or several at once (version 2)."""

    event_type = "customer.tagged"
    schema_version = 2
    model_config = ConfigDict(json_schema_extra={"examples": [{"tags": ["key-account", "华东"]}]})

    tags: list[Tag] = Field(min_length=1, max_length=50)


def tagged_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in payload.items() if k != "tag"}
    return {**rest, "tags": [payload["tag"]]}


class CustomerUntagged(EventPayload):
    event_type = "customer.untagged"
    model_config = ConfigDict(json_schema_extra={"examples": [{"tag": "trial"}]})

    tag: Tag


class ChannelPreferencesChanged(EventPayload):
    """Preferences and opt-outs as they are after the change."""

    event_type = "customer.channel_preferences_changed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"channel_preferences": {"preferred": ["email"], "opted_out": ["phone", "sms"]}}
            ]
        }
    )

    channel_preferences: ChannelPreferences


class CustomerErased(EventPayload):
    """The customer was forgotten at their request: their key is destroyed, so every
    personal value of theirs in any event reads as `[erased]`. Every consumer removes
    their personal data from its views and keeps the non-personal facts (amounts, dates,
    classifications, segments)."""

    event_type = "customer.erased"
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"request_reference": "DSR-2026-0042"}]}
    )

    request_reference: Line | None = Field(
        default=None,
        max_length=100,
        description="The erasure request this fulfils (a ticket or case number).",
    )


class CustomerDuplicateDismissed(EventPayload):
    """Someone reviewed this customer and `other_customer_id` as possible duplicates and
    found them two customers: the pair never enters the queue of possible duplicates
    again. Recorded on the customer whose id is the smaller of the two."""

    event_type = "customer.duplicate_dismissed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"other_customer_id": "9b2f7c1e-3d4a-4f5b-8c6d-7e8f9a0b1c2d"}]
        }
    )

    other_customer_id: UUID = Field(description="The other customer of the pair.")


EVENTS: tuple[type[EventPayload], ...] = (
    CustomerRegistered,
    CustomerProfileChanged,
    CustomerAddressSet,
    CustomerAddressRemoved,
    ContactPersonAdded,
    ContactPersonChanged,
    ContactPersonRemoved,
    CustomerClassified,
    CustomerTaggedV1,
    CustomerTagged,
    CustomerUntagged,
    ChannelPreferencesChanged,
    CustomerReferenceAdded,
    CustomerErased,
    CustomerDuplicateDismissed,
)

UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("customer.tagged", 1): tagged_v1_to_v2,
}
"""(event type, version) → the function turning that version's payload into the next's."""
