"""The profile of a merge group: a survivor and the customers merged into it (pure).

The fold keeps one profile per customer id, whatever merges say, so that undoing a merge
leaves every profile as it was. A read of the survivor combines the profiles of its
group (`combine`), as if every purchase, contact, answer and ticket had been folded into
one profile: purchases and spend add up, the first purchase is the earliest of all and
the latest two are the latest two of all; contacts, survey answers and tickets are put
together; the customer's own fields, classifications and tags are the survivor's (the
merge set them on it). The RFM scores and what follows from them are then concluded
for the combined profile as for any other, by the fold (`projections.groups`) and when
the survivor is read (`queries.merge_groups`).

What a merge and its undoing change in what is recorded is a `transition`: from the
conclusions recorded for a customer (or its group) to those of another profile, or to
none for a customer merged away.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.analytics.domain.profile import Profile
from services.analytics.domain.segments import (
    BUILTIN_PREFIXES,
    Change,
    Outcome,
    SegmentRule,
    deciding_fields,
    field_values,
    pick,
)


def combine(survivor: Profile, absorbed: Sequence[Profile]) -> Profile:
    """One profile of the survivor with everything of the absorbed customers' profiles."""
    combined = copy.deepcopy(survivor)
    for other in absorbed:
        _add_purchases(combined, other)
        combined.contacts = {**other.contacts, **combined.contacts}
        combined.recent_contacts = sorted([*combined.recent_contacts, *other.recent_contacts])
        combined.last_contact_at = _latest(combined.last_contact_at, other.last_contact_at)
        combined.csat_sum += other.csat_sum
        combined.csat_count += other.csat_count
        if other.nps_at is not None and (
            combined.nps_at is None
            or (other.nps_at, other.nps_event or "") > (combined.nps_at, combined.nps_event or "")
        ):
            combined.nps_latest, combined.nps_at = other.nps_latest, other.nps_at
            combined.nps_event = other.nps_event
        combined.tickets = {**copy.deepcopy(other.tickets), **combined.tickets}
    return combined


def _add_purchases(combined: Profile, other: Profile) -> None:
    if not other.purchase_count:
        return
    combined.purchase_count += other.purchase_count
    combined.total_spend += other.total_spend
    first = combined.first_purchase_at
    if other.first_purchase_at is not None and (
        first is None
        or (other.first_purchase_at, other.first_purchase_event or "")
        < (first, combined.first_purchase_event or "")
    ):
        combined.first_purchase_at = other.first_purchase_at
        combined.first_spend = other.first_spend
        combined.first_purchase_event = other.first_purchase_event
    moments = [
        m
        for m in (
            combined.last_purchase_at,
            combined.previous_purchase_at,
            other.last_purchase_at,
            other.previous_purchase_at,
        )
        if m is not None
    ]
    moments.sort(reverse=True)
    combined.last_purchase_at = moments[0] if moments else None
    combined.previous_purchase_at = moments[1] if len(moments) > 1 else None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


CONCLUSION_FIELDS = ("segments", "churn_reasons", "concluded_at", "changed_at")
"""What a profile keeps of its conclusions: its memberships, its churn reasons and its
event clock (`domain.event_time`)."""


def adopt_conclusions(profile: Profile, recorded: Profile) -> None:
    """Give `profile` the conclusions recorded for `recorded` (memberships, churn reasons,
    clock), so that concluding it tells what changed since them."""
    profile.segments = dict(recorded.segments)
    profile.churn_reasons = list(recorded.churn_reasons)
    profile.concluded_at, profile.changed_at = recorded.concluded_at, recorded.changed_at


def transition(
    before: Profile,
    after: Profile | None,
    at: datetime,
    rules: Sequence[SegmentRule],
    note: Mapping[str, Any],
) -> Outcome:
    """The entries, exits, new rule versions and churn warning raised or cleared that lead
    from the conclusions recorded for `before` to those `after` stands at (None: no
    segment and no warning, as for a customer merged into another), at event time `at`.

    An exit to nothing carries only `note` as its values (why it was left: the merge);
    any other change the deciding values of `after` as of `at`, with `note` beside them."""
    values = field_values(after if after is not None else before, at)
    target = after.segments if after is not None else {}
    reasons = list(after.churn_reasons) if after is not None else []
    versions = {rule.key: rule.version for rule in rules}

    def decided(segment: str) -> dict[str, Any]:
        if after is None:
            return dict(note)
        return {**pick(values, deciding_fields(segment, rules)), **note}

    changes: list[Change] = []
    revised: list[str] = []
    memberships: dict[str, int] = {}
    for segment, version in target.items():
        memberships[segment] = version
        if segment not in before.segments:
            changes.append(Change(segment, "entered", version, decided(segment)))
        elif before.segments[segment] != version:
            revised.append(segment)
    for segment, version in before.segments.items():
        if segment not in target:
            current = 1 if segment.startswith(BUILTIN_PREFIXES) else versions.get(segment, version)
            changes.append(Change(segment, "left", current, decided(segment)))
    churn_event = None
    if reasons and not before.churn_reasons:
        churn_event = "raised"
    elif before.churn_reasons and not reasons:
        churn_event = "cleared"
    return Outcome(values, changes, memberships, churn_event, reasons, revised)
