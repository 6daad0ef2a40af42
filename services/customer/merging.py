"""Merging customers into one survivor, and undoing a merge: the rules. Pure; no I/O.

`plan_merge` decides, from the survivor and the customers to absorb, what the merge
changes on the survivor (`MergePlan`, recorded as its `Absorbed` event):

- each profile field and classification by the rule, or by the caller's choice of the
  customer whose value it takes (`choices`: field → customer id):
  - `survivor`: the survivor's value where it has one; an empty one takes the value of
    the most recently changed absorbed customer that has one;
  - `newest`: the value of the most recently changed customer (survivor included) that
    has one;
- contact persons, addresses, tags and other systems' references of the absorbed
  customers are carried over (a contact person or address whose id or label the survivor
  uses already is carried under a new one; one identical to the survivor's is not
  carried twice);
- every channel any of them opted out of stays opted out.

`plan_undo` decides what undoing it takes back: the fields the merge set return to what
they were before, unless changed since (a change made on the survivor during the merge
stays); the contacts, addresses, tags and references the merge added are removed if
still there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.customer.domain import CLASSIFICATION_FIELDS, PROFILE_FIELDS, Customer
from services.runtime.errors import Conflict, RuleViolation

MERGEABLE_FIELDS = (*PROFILE_FIELDS, *CLASSIFICATION_FIELDS)
MAX_ABSORBED = 20


class MergeRule(StrEnum):
    SURVIVOR = "survivor"
    NEWEST = "newest"


@dataclass
class MergePlan:
    """What a merge changes on the survivor (the survivor's `Absorbed` event)."""

    profile: dict[str, Any] = field(default_factory=dict)
    classification: dict[str, Any] | None = None
    channel_preferences: dict[str, Any] | None = None
    contacts: list[dict[str, Any]] = field(default_factory=list)
    addresses: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    references: list[dict[str, str]] = field(default_factory=list)


@dataclass
class UndoPlan:
    """What undoing a merge takes back from the survivor (its `AbsorptionUndone` event)."""

    profile: dict[str, Any] = field(default_factory=dict)
    classification: dict[str, Any] | None = None
    channel_preferences: dict[str, Any] | None = None
    removed_contacts: list[str] = field(default_factory=list)
    removed_addresses: list[str] = field(default_factory=list)
    removed_tags: list[str] = field(default_factory=list)
    removed_references: list[dict[str, str]] = field(default_factory=list)


def check_mergeable(survivor: Customer, absorbed: list[Customer]) -> None:
    """Refuse a merge that cannot be made, saying why."""
    if not absorbed:
        raise RuleViolation("name at least one customer to merge into the survivor")
    if len(absorbed) > MAX_ABSORBED:
        raise RuleViolation(f"merge at most {MAX_ABSORBED} customers at once")
    ids = [c.id for c in absorbed]
    if len(set(ids)) != len(ids):
        raise RuleViolation("a customer is named twice among those to merge")
    if survivor.id in ids:
        raise RuleViolation("the survivor cannot also be merged into itself")
    for customer in (survivor, *absorbed):
        if customer.merged_into is not None:
            raise RuleViolation(
                f"customer {customer.id} was merged into {customer.merged_into} already; "
                "name that customer instead, or undo that merge first"
            )
        if getattr(customer, "erased", False):
            raise RuleViolation(f"customer {customer.id} was erased and cannot be merged")
    for customer in absorbed:
        if customer.active_merges:
            raise RuleViolation(
                f"customer {customer.id} is the survivor of merge "
                f"{customer.active_merges[0]}; merge into it instead, or undo that merge first"
            )


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _value(customer: Customer, name: str) -> Any:
    if name in CLASSIFICATION_FIELDS:
        return customer.classification.get(name)
    return getattr(customer, name)


def chosen_values(
    survivor: Customer,
    absorbed: list[Customer],
    rule: MergeRule,
    choices: dict[str, UUID],
) -> dict[str, Any]:
    """Every mergeable field's value after the merge."""
    everyone = {c.id: c for c in (survivor, *absorbed)}
    newest_first = sorted(absorbed, key=lambda c: c.modified_on, reverse=True)
    if rule is MergeRule.NEWEST:
        order = sorted(everyone.values(), key=lambda c: c.modified_on, reverse=True)
    else:
        order = [survivor, *newest_first]
    values: dict[str, Any] = {}
    for name in MERGEABLE_FIELDS:
        chosen = choices.get(name)
        if chosen is not None:
            if chosen not in everyone:
                raise RuleViolation(
                    f"the value of {name} is chosen from {chosen}, which is not in this merge"
                )
            values[name] = _value(everyone[chosen], name)
            continue
        found = next((v for c in order if not _empty(v := _value(c, name))), None)
        values[name] = found if found is not None else _value(survivor, name)
    unknown = set(choices) - set(MERGEABLE_FIELDS)
    if unknown:
        raise RuleViolation(
            f"no such field to choose: {', '.join(sorted(unknown))} "
            f"(fields: {', '.join(MERGEABLE_FIELDS)})"
        )
    for required in ("name", "kind"):
        if _empty(values[required]):
            raise RuleViolation(f"{required} cannot be empty after the merge")
    return values


def plan_merge(
    survivor: Customer,
    absorbed: list[Customer],
    rule: MergeRule = MergeRule.SURVIVOR,
    choices: dict[str, UUID] | None = None,
) -> MergePlan:
    check_mergeable(survivor, absorbed)
    values = chosen_values(survivor, absorbed, rule, choices or {})
    plan = MergePlan()
    plan.profile = {n: values[n] for n in PROFILE_FIELDS if values[n] != getattr(survivor, n)}
    classification = {
        **survivor.classification,
        **{
            n: values[n]
            for n in CLASSIFICATION_FIELDS
            if values[n] is not None or n in survivor.classification
        },
    }
    if classification != survivor.classification:
        plan.classification = classification
    contacts = _Carried("contact_id", _details, survivor.contacts.values())
    addresses = _Carried("label", _place, survivor.addresses.values())
    tags = list(survivor.tags)
    references = list(survivor.references)
    opted_out = list(survivor.channel_preferences.get("opted_out", []))
    for customer in absorbed:
        prefix = customer.id.hex[:8]
        plan.contacts += contacts.carry(customer.contacts.values(), prefix)
        plan.addresses += addresses.carry(customer.addresses.values(), prefix)
        for tag in customer.tags:
            if tag not in tags:
                tags.append(tag)
                plan.tags.append(tag)
        for reference in customer.references:
            if reference not in references:
                references.append(reference)
                plan.references.append(dict(reference))
        opted_out += [
            c for c in customer.channel_preferences.get("opted_out", []) if c not in opted_out
        ]
    preferences = survivor.channel_preferences
    if opted_out != list(preferences.get("opted_out", [])):
        plan.channel_preferences = {
            "preferred": [c for c in preferences.get("preferred", []) if c not in opted_out],
            "opted_out": opted_out,
        }
    return plan


class _Carried:
    """Contact persons (addresses) carried over to the survivor: one the survivor has
    already (the same details) is not carried twice; an id (label) in use is changed."""

    def __init__(
        self,
        key: str,
        sameness: Callable[[dict[str, Any]], tuple[Any, ...]],
        survivors: Iterable[dict[str, Any]],
    ) -> None:
        present = list(survivors)
        self.key = key
        self.sameness = sameness
        self.known = [sameness(item) for item in present]
        self.taken = {item[key] for item in present}

    def carry(self, items: Iterable[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
        carried = []
        for item in items:
            if self.sameness(item) in self.known:
                continue
            name = _free(item[self.key], prefix, self.taken)
            carried.append({**item, self.key: name})
            self.taken.add(name)
            self.known.append(self.sameness(item))
        return carried


def _details(contact: dict[str, Any]) -> tuple[Any, ...]:
    return (contact.get("name"), tuple(contact.get("phones", [])), tuple(contact.get("emails", [])))


def _place(address: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(v for k, v in sorted(address.items()) if k != "label")


def _free(wanted: str, prefix: str, taken: set[str]) -> str:
    """`wanted`, or (when taken) `<prefix>-<wanted>`, numbered if that is taken too."""
    if wanted not in taken:
        return wanted
    candidate = f"{prefix}-{wanted}"[:50]
    number = 2
    while candidate in taken:
        candidate = f"{prefix}-{number}-{wanted}"[:50]
        number += 1
    return candidate


def plan_undo(before: Customer, merged: Customer, now: Customer, plan: MergePlan) -> UndoPlan:
    """What undoing the merge takes back from the survivor: `before` and `merged` are the
    survivor just before and just after the merge, `now` as it is; `plan` what the merge
    recorded."""
    undo = UndoPlan()
    undo.profile = {
        n: getattr(before, n) for n in plan.profile if getattr(now, n) == getattr(merged, n)
    }
    if plan.classification is not None and now.classification == merged.classification:
        undo.classification = dict(before.classification)
    if plan.channel_preferences is not None and (
        now.channel_preferences == merged.channel_preferences
    ):
        undo.channel_preferences = dict(before.channel_preferences)
    undo.removed_contacts = [
        c["contact_id"] for c in plan.contacts if c["contact_id"] in now.contacts
    ]
    undo.removed_addresses = [a["label"] for a in plan.addresses if a["label"] in now.addresses]
    undo.removed_tags = [t for t in plan.tags if t in now.tags]
    undo.removed_references = [r for r in plan.references if r in now.references]
    return undo


class CustomerMerge(Aggregate):
    """One merge: who survived, who was absorbed, and whether it was undone. Kept in the
    event store beside the customers (not published: the customers' events tell it)."""

    @staticmethod
    def create_id(merge_id: UUID) -> UUID:
        return merge_id

    @event("Done")
    def __init__(
        self,
        *,
        merge_id: UUID,
        survivor_id: UUID,
        absorbed: list[UUID],
        rule: str,
        choices: dict[str, str],
        merged_version: int,
    ) -> None:
        self.survivor_id = survivor_id
        self.absorbed = list(absorbed)
        self.rule = rule
        self.choices = dict(choices)
        self.merged_version = merged_version
        """The survivor's version recording the merge (its `Absorbed` event)."""
        self.undone = False

    def undo(self) -> None:
        if self.undone:
            raise Conflict(f"merge {self.id} was undone already")
        self._undone()

    @event("Undone")
    def _undone(self) -> None:
        self.undone = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "merge_id": str(self.id),
            "survivor_id": str(self.survivor_id),
            "absorbed": [str(a) for a in self.absorbed],
            "rule": self.rule,
            "choices": dict(self.choices),
            "undone": self.undone,
            "merged_at": self.created_on.isoformat(),
            "updated_at": self.modified_on.isoformat(),
        }
