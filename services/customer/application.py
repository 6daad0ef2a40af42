"""Customer commands and event-store queries: the service layer of the customer service.

Each command loads the customer, checks the caller's expected version (optimistic
concurrency), lets the aggregate decide, and saves the new events. Two writers racing on
one customer cannot both win: the loser gets `Conflict`, never a lost update.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError

from services.customer.domain import Customer
from services.customer.publishing import to_contract
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

    def register_first_seen(self, sightings: Sequence[Sighting]) -> list[UUID]:
        """Register the customers other systems named by a reference the CRM had not seen.

        Each sighting carries the customer id derived from its reference; a customer that
        exists already is left as it is, so seeing the same reference again changes
        nothing. Returns the ids of the customers registered now.
        """
        unseen: dict[UUID, Sighting] = {}
        for sighting in sightings:
            if sighting.customer_id not in unseen and not self._exists(sighting.customer_id):
                unseen[sighting.customer_id] = sighting
        if not unseen:
            return []
        try:
            self.save(*(_first_seen_customer(s) for s in unseen.values()))
        except RecordConflictError:
            # Another replica registered some of them meanwhile. The failed save took the
            # new aggregates' events with it: build them again, and save one by one.
            registered = []
            for customer_id, sighting in unseen.items():
                try:
                    self.save(_first_seen_customer(sighting))
                    registered.append(customer_id)
                except RecordConflictError:
                    continue
            return registered
        return list(unseen)

    def _exists(self, customer_id: UUID) -> bool:
        try:
            self.repository.get(customer_id)
        except AggregateNotFoundError:
            return False
        return True

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
        """Record the erasure of a customer whose key the caller destroyed."""
        return self._change(customer_id, None, lambda c: c.erase(request_reference))

    # Queries on the event store ------------------------------------------------------

    def customer(self, customer_id: UUID) -> Customer:
        return self.load(customer_id, Customer, "customer")

    def customer_as_of(self, customer_id: UUID, moment: datetime) -> Customer:
        """The customer as they were at `moment`: every event up to it, none after."""
        return self.load_as_of(customer_id, Customer, "customer", moment)[0]

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
        return self.change(customer_id, expected_version, command, kind=Customer, what="customer")


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
    """The event that named the customer: recorded as the cause of the registration."""


def _first_seen_customer(sighting: Sighting) -> Customer:
    customer = _new_first_seen_customer(sighting)
    if sighting.cause is not None:
        stamp(customer, sighting.cause)
    return customer


def _new_first_seen_customer(sighting: Sighting) -> Customer:
    reference = {"source": sighting.source, "source_customer_id": sighting.source_customer_id}
    contacts = []
    if sighting.phone or sighting.email:
        contacts.append(
            {
                "contact_id": "primary",
                "name": sighting.name or sighting.source_customer_id,
                "title": None,
                "phones": [sighting.phone] if sighting.phone else [],
                "emails": [sighting.email] if sighting.email else [],
            }
        )
    return Customer(
        requested_id=sighting.customer_id,
        name=sighting.name or f"{sighting.source} customer {sighting.source_customer_id}",
        kind="consumer",
        industry=None,
        region=None,
        source_channel=sighting.source,
        owner=None,
        tags=[],
        contacts=contacts,
        addresses=[],
        classification={
            "importance_tier": "ordinary",
            "loyalty_stage": "potential",
            "value_behaviour": None,
            "relationship_level": "basic",
        },
        channel_preferences={"preferred": [], "opted_out": []},
        references=[reference],
        first_seen_in=sighting.source,
    )


def _with_contact_id(contact: dict[str, Any]) -> dict[str, Any]:
    if contact.get("contact_id"):
        return dict(contact)
    return {**contact, "contact_id": uuid.uuid4().hex[:12]}
