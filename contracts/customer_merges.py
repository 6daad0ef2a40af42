"""Events of customer merges and their undoing, published on `Topic.CUSTOMER`.

A merge joins two or more records of one customer into one, the survivor. Each absorbed
customer records `customer.merged` (naming the survivor and the merge); the survivor
records `customer.absorbed`, carrying what the merge changed on it: the profile fields
and classifications chosen from the absorbed customers, and their contact persons,
addresses, tags, references and opted-out channels carried over. Undoing the merge
records `customer.unmerged` on each absorbed customer and `customer.absorption_undone`
on the survivor, which takes back what the merge brought.

Every service keeps its own records under the customer ids they named and follows the
merge through an alias (absorbed id → survivor): reads of the survivor show the absorbed
customers' records, reads of an absorbed id answer where it went, and undoing the merge
drops the alias, so every record is where it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.customer import (
    Address,
    ChannelPreferences,
    Classification,
    ContactPerson,
    CustomerKind,
    PersonalText,
    ShortText,
    Tag,
)
from contracts.envelope import EventPayload
from contracts.references import CustomerReference
from contracts.values import Line

EXAMPLE_MERGE = "5b1d9f0e-2c3a-4f8e-9d7b-6a4c2e1f0b93"
EXAMPLE_SURVIVOR = "0b6c4a52-1f0e-4c55-9c1e-3f1f7c1d2a10"
EXAMPLE_ABSORBED = "7e2f8c14-9b3d-4a61-8f05-2d9c6b3e1a47"


class ProfileFields(BaseModel):
    """Profile fields set on the survivor; `changed` names them (an explicit null clears)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: PersonalText | None = None
    kind: CustomerKind | None = None
    industry: ShortText | None = None
    region: ShortText | None = None
    source_channel: ShortText | None = None
    owner: ShortText | None = None
    changed: list[Line] = Field(default_factory=list, description="The fields set.")


class CustomerMerged(EventPayload):
    """This customer was merged into another one (the survivor): its records are shown
    under the survivor until the merge is undone. Its own record is kept unchanged."""

    event_type = "customer.merged"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"merge_id": EXAMPLE_MERGE, "survivor_id": EXAMPLE_SURVIVOR}]
        }
    )

    merge_id: UUID
    survivor_id: UUID


class CustomerAbsorbed(EventPayload):
    """Other customers were merged into this one: what the merge changed on it."""

    event_type = "customer.absorbed"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "merge_id": EXAMPLE_MERGE,
                    "absorbed": [EXAMPLE_ABSORBED],
                    "profile": {"industry": "贸易", "changed": ["industry"]},
                    "classification": None,
                    "channel_preferences": None,
                    "contacts": [
                        {
                            "contact_id": "7e2f8c14-c-1",
                            "name": "刘洋",
                            "title": "财务主管",
                            "phones": ["+86 139 1234 5678"],
                            "emails": [],
                        }
                    ],
                    "addresses": [],
                    "tags": ["华东"],
                    "references": [{"source": "shop-cn", "source_customer_id": "U-1029"}],
                }
            ]
        }
    )

    merge_id: UUID
    absorbed: list[UUID] = Field(min_length=1, description="The customers merged into this one.")
    profile: ProfileFields = Field(default_factory=ProfileFields)
    classification: Classification | None = Field(
        default=None, description="The classifications after the merge, when it changed them."
    )
    channel_preferences: ChannelPreferences | None = Field(
        default=None,
        description="Preferences after the merge, when it changed them: every channel any "
        "of the merged customers opted out of stays opted out.",
    )
    contacts: list[ContactPerson] = Field(default_factory=list, description="Contacts added.")
    addresses: list[Address] = Field(default_factory=list, description="Addresses added.")
    tags: list[Tag] = Field(default_factory=list, description="Tags added.")
    references: list[CustomerReference] = Field(
        default_factory=list, description="Other systems' names for the absorbed customers."
    )


class CustomerUnmerged(EventPayload):
    """The merge of this customer into the survivor was undone: it is a customer of its
    own again, with every record it had."""

    event_type = "customer.unmerged"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"merge_id": EXAMPLE_MERGE, "survivor_id": EXAMPLE_SURVIVOR}]
        }
    )

    merge_id: UUID
    survivor_id: UUID


class CustomerAbsorptionUndone(EventPayload):
    """A merge into this customer was undone: what the merge had brought is taken back.
    Fields the merge set are restored unless changed since; contacts, addresses, tags
    and references it added are removed."""

    event_type = "customer.absorption_undone"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "merge_id": EXAMPLE_MERGE,
                    "released": [EXAMPLE_ABSORBED],
                    "profile": {"industry": None, "changed": ["industry"]},
                    "classification": None,
                    "channel_preferences": None,
                    "removed_contacts": ["7e2f8c14-c-1"],
                    "removed_addresses": [],
                    "removed_tags": ["华东"],
                    "removed_references": [{"source": "shop-cn", "source_customer_id": "U-1029"}],
                }
            ]
        }
    )

    merge_id: UUID
    released: list[UUID] = Field(min_length=1, description="The customers separated again.")
    profile: ProfileFields = Field(default_factory=ProfileFields)
    classification: Classification | None = None
    channel_preferences: ChannelPreferences | None = None
    removed_contacts: list[Line] = Field(default_factory=list)
    removed_addresses: list[Tag] = Field(default_factory=list)
    removed_tags: list[Tag] = Field(default_factory=list)
    removed_references: list[CustomerReference] = Field(default_factory=list)


EVENTS: tuple[type[EventPayload], ...] = (
    CustomerMerged,
    CustomerAbsorbed,
    CustomerUnmerged,
    CustomerAbsorptionUndone,
)

UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}
