"""Events of the customer service, published on `Topic.CUSTOMER`.

Value vocabularies (kinds, tiers, channels) are closed enumerations: a producer cannot
invent a tier that consumers do not know.
"""

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from contracts.envelope import EventPayload
from contracts.references import CustomerReference

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()\-]{3,30}$")]


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

    name: ShortText
    title: ShortText | None = None
    phones: list[Phone] = Field(default_factory=list, max_length=10)
    emails: list[EmailStr] = Field(default_factory=list, max_length=10)


class ContactPerson(ContactDetails):
    contact_id: str = Field(min_length=1, max_length=64)


class Address(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    label: Tag = Field(description="What the address is for, e.g. office, billing, shipping.")
    line1: ShortText
    line2: ShortText | None = None
    city: ShortText
    region: ShortText | None = None
    postal_code: Annotated[str, StringConstraints(max_length=20)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
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

    name: ShortText
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
    first_seen_in: str | None = Field(
        default=None,
        description="Set when the customer became known through another system's event "
        "(a purchase, a call) rather than being registered in the CRM.",
    )


class CustomerReferenceAdded(EventPayload):
    """Another system's name for the customer; facts it publishes land on this customer."""

    event_type = "customer.reference_added"

    reference: CustomerReference


class CustomerProfileChanged(EventPayload):
    """Only the fields that changed are present; an explicit null clears a field."""

    event_type = "customer.profile_changed"

    name: ShortText | None = None
    kind: CustomerKind | None = None
    industry: ShortText | None = None
    region: ShortText | None = None
    source_channel: ShortText | None = None
    owner: ShortText | None = None
    changed: list[str] = Field(description="Names of the fields that changed.")


class CustomerAddressSet(EventPayload):
    """An address was added, or the address with the same label replaced."""

    event_type = "customer.address_set"

    address: Address


class CustomerAddressRemoved(EventPayload):
    event_type = "customer.address_removed"

    label: Tag


class ContactPersonAdded(EventPayload):
    event_type = "customer.contact_added"

    contact: ContactPerson


class ContactPersonChanged(EventPayload):
    """The contact person as it is after the change."""

    event_type = "customer.contact_changed"

    contact: ContactPerson


class ContactPersonRemoved(EventPayload):
    event_type = "customer.contact_removed"

    contact_id: str


class CustomerClassified(EventPayload):
    """The four classifications as they are after the change."""

    event_type = "customer.classified"

    classification: Classification


class CustomerTaggedV1(EventPayload):
    """Version 1: one tag per event. Still accepted; read as version 2 (`tags: [tag]`)."""

    event_type = "customer.tagged"
    schema_version = 1

    tag: Tag


class CustomerTagged(EventPayload):
    """Tags added to the customer, one or several at once (version 2)."""

    event_type = "customer.tagged"
    schema_version = 2

    tags: list[Tag] = Field(min_length=1, max_length=50)


def tagged_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in payload.items() if k != "tag"}
    return {**rest, "tags": [payload["tag"]]}


class CustomerUntagged(EventPayload):
    event_type = "customer.untagged"

    tag: Tag


class ChannelPreferencesChanged(EventPayload):
    """Preferences and opt-outs as they are after the change."""

    event_type = "customer.channel_preferences_changed"

    channel_preferences: ChannelPreferences


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
)

UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("customer.tagged", 1): tagged_v1_to_v2,
}
"""(event type, version) → the function turning that version's payload into the next's."""
