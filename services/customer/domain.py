"""The Customer aggregate: the rules a customer record obeys. Pure; no I/O.

Values arrive already validated against the contract vocabularies (the application
layer does that); the aggregate guards what depends on its own state: contact persons
that exist, addresses by label, tags, consent that does not contradict itself. A command
that changes nothing records no event.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from services.runtime.errors import NotFound, RuleViolation

PROFILE_FIELDS = ("name", "kind", "industry", "region", "source_channel", "owner")
FIRST_SEEN_CONTACT = "primary"
"""The contact person a customer first seen in another system gets from its hints."""
HINT_FIELDS = ("name", "phone", "email")
"""What another system may report of a customer (`contracts.references.CustomerHint`)."""


def placeholder_name(source: str, source_customer_id: str) -> str:
    """The name a customer first seen in another system has until a name is known."""
    return f"{source} customer {source_customer_id}"


DEFAULT_CLASSIFICATION: dict[str, str | None] = {
    "importance_tier": "ordinary",
    "loyalty_stage": "potential",
    "value_behaviour": None,
    "relationship_level": "basic",
}
"""The classification of a customer registered without one (`contracts.customer.Classification`)."""

CLASSIFICATION_FIELDS = (
    "importance_tier",
    "loyalty_stage",
    "value_behaviour",
    "relationship_level",
)


class Customer(Aggregate):
    @staticmethod
    def create_id(requested_id: UUID | None = None) -> UUID:
        """A new random id, unless the caller derived one (e.g. from another system's
        reference, so that every service names the same customer the same way)."""
        return requested_id or uuid4()

    @event("Registered")
    def __init__(
        self,
        *,
        name: str,
        kind: str,
        industry: str | None,
        region: str | None,
        source_channel: str | None,
        owner: str | None,
        tags: list[str],
        contacts: list[dict[str, Any]],
        addresses: list[dict[str, Any]],
        classification: dict[str, Any],
        channel_preferences: dict[str, Any],
        references: list[dict[str, str]],
        first_seen_in: str | None,
        requested_id: UUID | None,
    ) -> None:
        _check_unique([c["contact_id"] for c in contacts], "contact id")
        _check_unique([a["label"] for a in addresses], "address label")
        _check_consent(channel_preferences)
        self.name = name
        self.kind = kind
        self.industry = industry
        self.region = region
        self.source_channel = source_channel
        self.owner = owner
        self.tags = list(dict.fromkeys(tags))
        self.contacts = {c["contact_id"]: dict(c) for c in contacts}
        self.addresses = {a["label"]: dict(a) for a in addresses}
        self.classification = dict(classification)
        self.channel_preferences = dict(channel_preferences)
        self.references = [dict(r) for r in references]
        self.first_seen_in = first_seen_in
        self.erased = False
        self.name_unknown = first_seen_in is not None and name in self._placeholders()
        """Still the placeholder of a first sighting: no one, person or system, told it."""

    @classmethod
    def registration(cls, **details: Any) -> Any:
        """The `Registered` event that `Customer(**details)` records, without making the
        customer (its rules are checked all the same): a bulk import storing new
        customers skips building each one; `from_registration` makes the customer
        should a later row change it."""
        _check_unique([c["contact_id"] for c in details["contacts"]], "contact id")
        _check_unique([a["label"] for a in details["addresses"]], "address label")
        _check_consent(details["channel_preferences"])
        registered = cls.Registered  # type: ignore[attr-defined]  # made by @event
        return registered(
            originator_topic=get_topic(cls),
            originator_id=cls.create_id(details["requested_id"]),
            originator_version=cls.INITIAL_VERSION,
            timestamp=registered.create_timestamp(),
            **details,
        )

    @classmethod
    def from_registration(cls, registered: Any) -> Customer:
        """The customer a `registration` makes, the event pending (as `Customer(...)`)."""
        customer: Customer = registered.mutate(None)
        customer.pending_events.append(registered)
        return customer

    def _placeholders(self) -> set[str]:
        return {placeholder_name(r["source"], r["source_customer_id"]) for r in self.references}

    # What other systems report ---------------------------------------------------------

    def complete_details(self, hint: dict[str, str | None]) -> None:
        """Fill, from what another system reported of the customer (`HINT_FIELDS`), what
        is still unknown: the name while it is a first sighting's placeholder, a phone
        (an email) while no contact person has one, the first-seen contact's name while
        it is the reference's id. A known value is never replaced, whoever entered it."""
        if self.erased:
            return
        name = hint.get("name")
        if name and self.name_unknown:
            self._profile_changed(changes={"name": name})
        contacts = self.contacts.values()
        phone = None if any(c.get("phones") for c in contacts) else hint.get("phone")
        email = None if any(c.get("emails") for c in contacts) else hint.get("email")
        current = self.contacts.get(FIRST_SEEN_CONTACT)
        if current is None:
            if phone or email:
                self._contact_added(
                    contact={
                        "contact_id": FIRST_SEEN_CONTACT,
                        "name": self.name if not self.name_unknown else self._reference_id(),
                        "title": None,
                        "phones": [phone] if phone else [],
                        "emails": [email] if email else [],
                    }
                )
            return
        completed = dict(current)
        if phone:
            completed["phones"] = [*current.get("phones", []), phone]
        if email:
            completed["emails"] = [*current.get("emails", []), email]
        if name and current["name"] in {r["source_customer_id"] for r in self.references}:
            completed["name"] = name
        if completed != current:
            self._contact_changed(contact=completed)

    def _reference_id(self) -> str:
        return self.references[0]["source_customer_id"] if self.references else str(self.id)

    # References from other systems ---------------------------------------------------

    def add_reference(self, reference: dict[str, str]) -> None:
        if reference not in self.references:
            self._reference_added(reference=dict(reference))

    @event("ReferenceAdded")
    def _reference_added(self, reference: dict[str, str]) -> None:
        self.references.append(dict(reference))

    # Profile -------------------------------------------------------------------------

    def change_profile(self, changes: dict[str, Any]) -> None:
        unknown = set(changes) - set(PROFILE_FIELDS)
        if unknown:
            raise RuleViolation(f"unknown profile fields: {', '.join(sorted(unknown))}")
        if changes.get("name", self.name) is None or changes.get("kind", self.kind) is None:
            raise RuleViolation("name and kind cannot be cleared")
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if effective:
            self._profile_changed(changes=effective)

    @event("ProfileChanged")
    def _profile_changed(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        if "name" in changes:
            self.name_unknown = False

    # Addresses -----------------------------------------------------------------------

    def set_address(self, address: dict[str, Any]) -> None:
        if self.addresses.get(address["label"]) != address:
            self._address_set(address=dict(address))

    @event("AddressSet")
    def _address_set(self, address: dict[str, Any]) -> None:
        self.addresses[address["label"]] = dict(address)

    def remove_address(self, label: str) -> None:
        if label not in self.addresses:
            raise NotFound(f"customer {self.id} has no address labelled {label!r}")
        self._address_removed(label=label)

    @event("AddressRemoved")
    def _address_removed(self, label: str) -> None:
        del self.addresses[label]

    # Contact persons -----------------------------------------------------------------

    def add_contact(self, contact: dict[str, Any]) -> None:
        if contact["contact_id"] in self.contacts:
            raise RuleViolation(f"contact {contact['contact_id']} already exists")
        self._contact_added(contact=dict(contact))

    @event("ContactAdded")
    def _contact_added(self, contact: dict[str, Any]) -> None:
        self.contacts[contact["contact_id"]] = dict(contact)

    def change_contact(self, contact_id: str, changes: dict[str, Any]) -> None:
        current = self._contact(contact_id)
        changed = {**current, **changes, "contact_id": contact_id}
        if not changed.get("name"):
            raise RuleViolation("a contact person's name cannot be cleared")
        if changed != current:
            self._contact_changed(contact=changed)

    @event("ContactChanged")
    def _contact_changed(self, contact: dict[str, Any]) -> None:
        self.contacts[contact["contact_id"]] = dict(contact)

    def remove_contact(self, contact_id: str) -> None:
        self._contact(contact_id)
        self._contact_removed(contact_id=contact_id)

    @event("ContactRemoved")
    def _contact_removed(self, contact_id: str) -> None:
        del self.contacts[contact_id]

    def _contact(self, contact_id: str) -> dict[str, Any]:
        try:
            return self.contacts[contact_id]
        except KeyError:
            raise NotFound(f"customer {self.id} has no contact person {contact_id}") from None

    # Classifications -----------------------------------------------------------------

    def classify(self, changes: dict[str, Any]) -> None:
        unknown = set(changes) - set(CLASSIFICATION_FIELDS)
        if unknown:
            raise RuleViolation(f"unknown classifications: {', '.join(sorted(unknown))}")
        classification = {**self.classification, **changes}
        if classification != self.classification:
            self._classified(classification=classification)

    @event("Classified")
    def _classified(self, classification: dict[str, Any]) -> None:
        self.classification = dict(classification)

    # Tags ----------------------------------------------------------------------------

    class Tagged(Aggregate.Event):
        """Tags added. Version 2 carries several; version 1 carried one (`tag`)."""

        class_version = 2
        tags: list[str]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["tags"] = [state.pop("tag")]

    def tag(self, tags: list[str]) -> None:
        new = [t for t in dict.fromkeys(tags) if t not in self.tags]
        if new:
            self._tagged(tags=new)

    @event(Tagged)
    def _tagged(self, tags: list[str]) -> None:
        self.tags.extend(tags)

    def untag(self, tag: str) -> None:
        if tag not in self.tags:
            raise NotFound(f"customer {self.id} is not tagged {tag!r}")
        self._untagged(tag=tag)

    @event("Untagged")
    def _untagged(self, tag: str) -> None:
        self.tags.remove(tag)

    # Channel preferences and consent -------------------------------------------------

    def set_channel_preferences(self, preferences: dict[str, Any]) -> None:
        _check_consent(preferences)
        if preferences != self.channel_preferences:
            self._channel_preferences_changed(channel_preferences=dict(preferences))

    @event("ChannelPreferencesChanged")
    def _channel_preferences_changed(self, channel_preferences: dict[str, Any]) -> None:
        self.channel_preferences = dict(channel_preferences)

    # Erasure -------------------------------------------------------------------------

    def erase(self, request_reference: str | None) -> None:
        """Record that the customer was forgotten (their key is destroyed by then, so
        their personal values already read as erased). Erasing again changes nothing."""
        if not self.erased:
            self._erased(request_reference=request_reference)

    @event("Erased")
    def _erased(self, request_reference: str | None) -> None:
        self.erased = True
        self.contacts = {}
        self.addresses = {}

    # Duplicates ----------------------------------------------------------------------

    def dismiss_duplicate(self, other_customer_id: UUID) -> None:
        """Record that this customer and `other_customer_id` are not one customer (the
        queue of possible duplicates leaves the pair out for good). Again: no change."""
        if other_customer_id == self.id:
            raise RuleViolation("a customer is not a duplicate of itself")
        if other_customer_id not in getattr(self, "not_duplicates", set()):
            self._duplicate_dismissed(other_customer_id=other_customer_id)

    @event("DuplicateDismissed")
    def _duplicate_dismissed(self, other_customer_id: UUID) -> None:
        self.not_duplicates = {*getattr(self, "not_duplicates", set()), other_customer_id}

    # Merges (the rules of what a merge carries over are in `merging.py`) ---------------

    @property
    def merged_into(self) -> UUID | None:
        """The survivor this customer was merged into, while the merge holds."""
        merged: UUID | None = getattr(self, "_merged_into", None)
        return merged

    @property
    def active_merges(self) -> list[UUID]:
        """The merges into this customer that hold (not undone)."""
        return list(getattr(self, "_active_merges", []))

    def merge_into(self, merge_id: UUID, survivor_id: UUID) -> None:
        self._merged(merge_id=merge_id, survivor_id=survivor_id)

    def unmerge(self, merge_id: UUID) -> None:
        if self.merged_into is None:
            raise RuleViolation(f"customer {self.id} is not merged")
        self._unmerged(merge_id=merge_id, survivor_id=self.merged_into)

    def absorb(self, merge_id: UUID, absorbed: list[UUID], changes: dict[str, Any]) -> None:
        """Record a merge into this customer; `changes` as `merging.MergePlan` holds them."""
        self._absorbed(merge_id=merge_id, absorbed=list(absorbed), **changes)

    def release(self, merge_id: UUID, released: list[UUID], changes: dict[str, Any]) -> None:
        """Record the undoing of a merge; `changes` as `merging.UndoPlan` holds them."""
        self._absorption_undone(merge_id=merge_id, released=list(released), **changes)

    @event("Merged")
    def _merged(self, merge_id: UUID, survivor_id: UUID) -> None:
        self._merged_into: UUID | None = survivor_id

    @event("Unmerged")
    def _unmerged(self, merge_id: UUID, survivor_id: UUID) -> None:
        self._merged_into = None

    @event("Absorbed")
    def _absorbed(
        self,
        merge_id: UUID,
        absorbed: list[UUID],
        profile: dict[str, Any],
        classification: dict[str, Any] | None,
        channel_preferences: dict[str, Any] | None,
        contacts: list[dict[str, Any]],
        addresses: list[dict[str, Any]],
        tags: list[str],
        references: list[dict[str, str]],
    ) -> None:
        self._active_merges = [*self.active_merges, merge_id]
        for name, value in profile.items():
            setattr(self, name, value)
        if "name" in profile:
            self.name_unknown = False
        if classification is not None:
            self.classification = dict(classification)
        if channel_preferences is not None:
            self.channel_preferences = dict(channel_preferences)
        self.contacts.update({c["contact_id"]: dict(c) for c in contacts})
        self.addresses.update({a["label"]: dict(a) for a in addresses})
        self.tags.extend(tags)
        self.references.extend(dict(r) for r in references)

    @event("AbsorptionUndone")
    def _absorption_undone(
        self,
        merge_id: UUID,
        released: list[UUID],
        profile: dict[str, Any],
        classification: dict[str, Any] | None,
        channel_preferences: dict[str, Any] | None,
        removed_contacts: list[str],
        removed_addresses: list[str],
        removed_tags: list[str],
        removed_references: list[dict[str, str]],
    ) -> None:
        self._active_merges = [m for m in self.active_merges if m != merge_id]
        for name, value in profile.items():
            setattr(self, name, value)
        if classification is not None:
            self.classification = dict(classification)
        if channel_preferences is not None:
            self.channel_preferences = dict(channel_preferences)
        for contact_id in removed_contacts:
            self.contacts.pop(contact_id, None)
        for label in removed_addresses:
            self.addresses.pop(label, None)
        self.tags = [t for t in self.tags if t not in removed_tags]
        self.references = [r for r in self.references if r not in removed_references]

    # Views ---------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": str(self.id),
            "version": self.version,
            "name": self.name,
            "kind": self.kind,
            "industry": self.industry,
            "region": self.region,
            "source_channel": self.source_channel,
            "owner": self.owner,
            "tags": list(self.tags),
            "contacts": list(self.contacts.values()),
            "addresses": list(self.addresses.values()),
            "classification": dict(self.classification),
            "channel_preferences": dict(self.channel_preferences),
            "references": [dict(r) for r in self.references],
            "first_seen_in": self.first_seen_in,
            "erased": getattr(self, "erased", False),
            "merged_into": str(self.merged_into) if self.merged_into else None,
            "registered_at": self.created_on.isoformat(),
            "updated_at": self.modified_on.isoformat(),
        }


def _check_unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise RuleViolation(f"duplicate {what}: {value!r}")
        seen.add(value)


def _check_consent(preferences: dict[str, Any]) -> None:
    both = set(preferences.get("preferred", ())) & set(preferences.get("opted_out", ()))
    if both:
        raise RuleViolation(
            f"a channel cannot be both preferred and opted out: {', '.join(sorted(both))}"
        )
