"""Customer commands and event-store queries: the service layer of the customer service.

Each command loads the customer, checks the caller's expected version (optimistic
concurrency), lets the aggregate decide, and saves the new events. Two writers racing on
one customer cannot both win: the loser gets `Conflict`, never a lost update.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError

from services.customer.domain import (
    DEFAULT_CLASSIFICATION,
    FIRST_SEEN_CONTACT,
    Customer,
    placeholder_name,
)
from services.customer.publishing import to_contract
from services.runtime.errors import Conflict
from services.runtime.storage.eventstore import CommandContext, EventSourcedApplication, stamp


class CustomerApplication(EventSourcedApplication):
    name = "Customers"

    def register(
        self,
        *,
        name: str,
        kind: str,
        industry: str | None = None,
        region: str | None = None,
        source_channel: str | None = None,
        owner: str | None = None,
        tags: list[str] | None = None,
        contacts: list[dict[str, Any]] | None = None,
        addresses: list[dict[str, Any]] | None = None,
        classification: dict[str, Any] | None = None,
        channel_preferences: dict[str, Any] | None = None,
        references: list[dict[str, str]] | None = None,
    ) -> Customer:
        customer = Customer(
            name=name,
            kind=kind,
            industry=industry,
            region=region,
            source_channel=source_channel,
            owner=owner,
            tags=tags or [],
            contacts=[_with_contact_id(c) for c in contacts or []],
            addresses=addresses or [],
            classification=classification or {},
            channel_preferences=channel_preferences or {"preferred": [], "opted_out": []},
            references=references or [],
            first_seen_in=None,
            requested_id=None,
        )
        self.save(customer)
        return customer

    def add_reference(
        self, customer_id: UUID, reference: dict[str, str], expected_version: int | None = None
    ) -> Customer:
        return self._change(customer_id, expected_version, lambda c: c.add_reference(reference))

    def register_first_seen(
        self, sightings: Sequence[Sighting], existing: Collection[UUID] | None = None
    ) -> list[UUID]:
        """Register the customers other systems named by a reference the CRM had not seen,
        and let what later sightings tell fill what is still unknown of them.

        Each sighting carries the customer id derived from its reference. The first
        sighting of an unknown customer registers it; every other one (in this batch or
        later) completes it (`Customer.complete_details`): seeing the same reference with
        the same hints again changes nothing. All changes are saved in one `save()`.
        Returns the ids of the customers registered now.

        `existing`, when given, holds which of the customers the event store had when the
        caller looked (`RecordedAggregates.among`, one query for the batch): the others
        are registered without being looked for one by one, and a known customer whose
        sightings hint at nothing is left as it is without being loaded. One registered
        meanwhile by another replica makes the save conflict, and the sightings are then
        applied one customer at a time, each loaded.
        """
        by_customer: dict[UUID, list[Sighting]] = {}
        for sighting in sightings:
            by_customer.setdefault(sighting.customer_id, []).append(sighting)
        if existing is not None:
            by_customer = {
                c: seen
                for c, seen in by_customer.items()
                if c not in existing or any(any(s.hint.values()) for s in seen)
            }
        outcomes = {c: self._apply_sightings(c, seen, existing) for c, seen in by_customer.items()}
        changed = [customer for customer, _ in outcomes.values() if customer.pending_events]
        try:
            if changed:
                self.save(*changed)
            return [c for c, (_, registered) in outcomes.items() if registered]
        except RecordConflictError:
            # Another replica changed some of them meanwhile. The failed save took the
            # pending events with it: apply the sightings again, one customer at a time.
            return [c for c, seen in by_customer.items() if self._save_sightings(c, seen)]

    def _save_sightings(self, customer_id: UUID, seen: list[Sighting], attempts: int = 3) -> bool:
        """Apply and save one customer's sightings, again on a conflict; whether this
        registered the customer."""
        for _ in range(attempts):
            customer, registered = self._apply_sightings(customer_id, seen)
            try:
                if customer.pending_events:
                    self.save(customer)
                return registered
            except RecordConflictError:
                continue
        return False

    def _apply_sightings(
        self, customer_id: UUID, seen: list[Sighting], existing: Collection[UUID] | None = None
    ) -> tuple[Customer, bool]:
        """The customer after the sightings (not saved), and whether they register it;
        not looked for when `existing` says it was not there."""
        known = existing is None or customer_id in existing
        customer = self._existing(customer_id) if known else None
        registered = customer is None
        for sighting in seen:
            since = len(customer.pending_events) if customer is not None else 0
            if customer is None:
                customer = _new_first_seen_customer(sighting)
            else:
                customer.complete_details(sighting.hint)
            if sighting.cause is not None:
                stamp(customer, sighting.cause, since=since)
        assert customer is not None  # every customer here has one sighting at least
        return customer, registered

    def _existing(self, customer_id: UUID) -> Customer | None:
        try:
            found: Customer = self.repository.get(customer_id)
        except AggregateNotFoundError:
            return None
        return found

    def change_profile(
        self, customer_id: UUID, changes: dict[str, Any], expected_version: int | None = None
    ) -> Customer:
        return self._change(customer_id, expected_version, lambda c: c.change_profile(changes))

    def set_address(
        self, customer_id: UUID, address: dict[str, Any], expected_version: int | None = None
    ) -> Customer:
        return self._change(customer_id, expected_version, lambda c: c.set_address(address))

    def remove_address(
        self, customer_id: UUID, label: str, expected_version: int | None = None
    ) -> Customer:
        return self._change(customer_id, expected_version, lambda c: c.remove_address(label))

    def add_contact(
        self, customer_id: UUID, contact: dict[str, Any], expected_version: int | None = None
    ) -> tuple[Customer, str]:
        contact = _with_contact_id(contact)
        customer = self._change(customer_id, expected_version, lambda c: c.add_contact(contact))
        return customer, contact["contact_id"]

    def change_contact(
        self,
        customer_id: UUID,
        contact_id: str,
        changes: dict[str, Any],
        expected_version: int | None = None,
    ) -> Customer:
        return self._change(
            customer_id, expected_version, lambda c: c.change_contact(contact_id, changes)
        )

    def remove_contact(
        self, customer_id: UUID, contact_id: str, expected_version: int | None = None
    ) -> Customer:
        return self._change(customer_id, expected_version, lambda c: c.remove_contact(contact_id))

    def classify(
        self, customer_id: UUID, changes: dict[str, Any], expected_version: int | None = None
    ) -> Customer:
        return self._change(customer_id, expected_version, lambda c: c.classify(changes))

    def tag(
        self, customer_id: UUID, tags: list[str], expected_version: int | None = None
    ) -> Customer:
        return self._change(customer_id, expected_version, lambda c: c.tag(tags))

    def untag(self, customer_id: UUID, tag: str, expected_version: int | None = None) -> Customer:
        return self._change(customer_id, expected_version, lambda c: c.untag(tag))

    def set_channel_preferences(
        self,
        customer_id: UUID,
        preferences: dict[str, Any],
        expected_version: int | None = None,
    ) -> Customer:
        return self._change(
            customer_id, expected_version, lambda c: c.set_channel_preferences(preferences)
        )

    def erase(self, customer_id: UUID, request_reference: str | None) -> Customer:
        """Record the erasure of a customer whose key the caller destroyed (a customer
        merged into another one too: erasure is not refused)."""
        return self.change(
            customer_id, None, lambda c: c.erase(request_reference), kind=Customer, what="customer"
        )

    def dismiss_duplicate(self, customer_id: UUID, other_customer_id: UUID) -> Customer:
        """Record on `customer_id` that it and `other_customer_id` are two customers."""
        self.customer(other_customer_id)  # NotFound for an unknown one
        return self._change(customer_id, None, lambda c: c.dismiss_duplicate(other_customer_id))

    # Queries on the event store ------------------------------------------------------

    def customer(self, customer_id: UUID) -> Customer:
        return self.load(customer_id, Customer, "customer")

    def customer_as_of(self, customer_id: UUID, moment: datetime) -> Customer:
        """The customer as they were at `moment`: every event up to it, none after."""
        events = self.events_until(customer_id, moment, "customer", "registered")
        return self.repository.get(customer_id, version=events[-1].originator_version)

    def history(self, customer_id: UUID) -> list[dict[str, Any]]:
        """Every change to the customer: what, when, by whom, in which request."""
        return self.change_history(customer_id, to_contract, what="customer")

    # ---------------------------------------------------------------------------------

    def _change(
        self,
        customer_id: UUID,
        expected_version: int | None,
        command: Callable[[Customer], None],
    ) -> Customer:
        def unless_merged(customer: Customer) -> None:
            if customer.merged_into is not None:
                raise Conflict(
                    f"customer {customer_id} was merged into {customer.merged_into}; change "
                    "that customer, or undo the merge first"
                )
            command(customer)

        return self.change(
            customer_id, expected_version, unless_merged, kind=Customer, what="customer"
        )


@dataclass(frozen=True)
class Sighting:
    """A customer named by another system: the derived id, the reference, and hints."""

    customer_id: UUID
    source: str
    source_customer_id: str
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    cause: CommandContext | None = None
    """The event that named the customer: recorded as the cause of what it changed."""

    @property
    def hint(self) -> dict[str, str | None]:
        return {"name": self.name, "phone": self.phone, "email": self.email}


def _new_first_seen_customer(sighting: Sighting) -> Customer:
    reference = {"source": sighting.source, "source_customer_id": sighting.source_customer_id}
    contacts = []
    if sighting.phone or sighting.email:
        contacts.append(
            {
                "contact_id": FIRST_SEEN_CONTACT,
                "name": sighting.name or sighting.source_customer_id,
                "title": None,
                "phones": [sighting.phone] if sighting.phone else [],
                "emails": [sighting.email] if sighting.email else [],
            }
        )
    return Customer(
        requested_id=sighting.customer_id,
        name=sighting.name or placeholder_name(sighting.source, sighting.source_customer_id),
        kind="consumer",
        industry=None,
        region=None,
        source_channel=sighting.source,
        owner=None,
        tags=[],
        contacts=contacts,
        addresses=[],
        classification=dict(DEFAULT_CLASSIFICATION),
        channel_preferences={"preferred": [], "opted_out": []},
        references=[reference],
        first_seen_in=sighting.source,
    )


def _with_contact_id(contact: dict[str, Any]) -> dict[str, Any]:
    if contact.get("contact_id"):
        return dict(contact)
    return {**contact, "contact_id": uuid.uuid4().hex[:12]}
