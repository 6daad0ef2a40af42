"""What a row of an import does to its customer (in a worker thread): the customer a row
creates, and the changes a row makes to an existing one (only what it says differently).
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

from services.customer.domain import DEFAULT_CLASSIFICATION, Customer
from services.customer.import_mapping import ImportRow
from services.customer.normalisation import Refused, clean_email, clean_phone
from services.runtime.errors import RuleViolation


def contact_id_for(name: str) -> str:
    """The id of an imported contact person, derived from the name: importing the same
    person again finds them."""
    return "imp-" + hashlib.sha256(name.casefold().encode()).hexdigest()[:12]


def _contacts(row: ImportRow) -> list[dict[str, Any]]:
    """The row's contact persons, one per name (two columns naming one person merge)."""
    merged: dict[str, dict[str, Any]] = {}
    for contact in row.contacts:
        contact_id = contact_id_for(contact["name"])
        found = merged.get(contact_id)
        if found is None:
            merged[contact_id] = {**contact, "contact_id": contact_id}
        else:
            found["title"] = found["title"] or contact["title"]
            found["phones"] = list(dict.fromkeys([*found["phones"], *contact["phones"]]))
            found["emails"] = list(dict.fromkeys([*found["emails"], *contact["emails"]]))
    return list(merged.values())


def new_customer(row: ImportRow, customer_id: UUID) -> Any:
    """The `Customer.Registered` event of the customer a row naming no customer yet
    creates (`Customer.registration`: the customer itself is made only should a later
    row change it); it needs a name and a kind."""
    missing = [f"a {name}" for name in ("name", "kind") if name not in row.profile]
    if missing:
        raise Refused(
            "missing field",
            f"a new customer needs {' and '.join(missing)}; the row gives none",
        )
    profile = row.profile
    try:
        return Customer.registration(
            name=profile["name"],
            kind=profile["kind"],
            industry=profile.get("industry"),
            region=profile.get("region"),
            source_channel=profile.get("source_channel"),
            owner=profile.get("owner"),
            tags=list(row.tags),
            contacts=_contacts(row),
            addresses=list(row.addresses),
            classification={**DEFAULT_CLASSIFICATION, **row.classification},
            channel_preferences={"preferred": [], "opted_out": []},
            references=row.all_references(),
            first_seen_in=None,
            requested_id=customer_id,
        )
    except RuleViolation as exc:
        raise Refused("rule violated", str(exc)) from None


def _same_phone(value: str, region: str) -> str:
    try:
        return clean_phone(value, region, "phone") or value
    except Refused:
        return value


def _same_email(value: str) -> str:
    try:
        return clean_email(value, "email") or value
    except Refused:
        return value


def update_customer(customer: Customer, row: ImportRow, region: str) -> None:
    """Change what the row says differently of an existing customer; nothing else."""
    if row.profile:
        customer.change_profile(dict(row.profile))
    if row.classification:
        customer.classify(dict(row.classification))
    if row.tags:
        customer.tag(list(row.tags))
    for address in row.addresses:
        customer.set_address(dict(address))
    for contact in _contacts(row):
        current = _contact_named(customer, contact)
        if current is None:
            customer.add_contact(contact)
            continue
        phones = list(current.get("phones", []))
        known_phones = {_same_phone(p, region) for p in phones}
        phones += [p for p in contact["phones"] if p not in known_phones]
        emails = list(current.get("emails", []))
        known_emails = {_same_email(e) for e in emails}
        emails += [e for e in contact["emails"] if e not in known_emails]
        changes: dict[str, Any] = {"phones": phones, "emails": emails}
        if contact["title"] is not None:
            changes["title"] = contact["title"]
        customer.change_contact(current["contact_id"], changes)
    for reference in row.all_references():
        customer.add_reference(reference)


def _contact_named(customer: Customer, contact: dict[str, Any]) -> dict[str, Any] | None:
    found: dict[str, Any] | None = customer.contacts.get(contact["contact_id"])
    if found is not None:
        return found
    folded = str(contact["name"]).casefold()
    for current in customer.contacts.values():
        if str(current.get("name", "")).casefold() == folded:
            return current
    return None
