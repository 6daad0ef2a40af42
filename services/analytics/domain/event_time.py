"""Conclusions in event time (pure): each conclusion carries the time of the fact that
caused it, and a conclusion that follows from time passing carries the moment its rule
became true, whenever it is evaluated.

Every customer has an event clock (`Profile.concluded_at`): the event time up to which
their conclusions are drawn. `conclude_at` brings a profile to a moment: first through
every moment between its clock and that moment at which a time-dependent value can
change (`moments_of_change`), concluding at each as if evaluated then, and then at the
moment itself (after folding the fact that causes it, if any). A history folded at once
therefore gives the same entries and exits, at the same times, as the same history
folded as it happened.

Time-dependent values change only at computable moments:
- days since the first or last purchase or the last contact are whole days between UTC
  dates: they change at midnight, and a rule or stage compares them with constants, so a
  comparison can turn only at the anchor date plus a constant (or plus one);
- a purchase becomes overdue the day after `last + max(3 x usual interval, 30 days)`;
- a contact leaves `interactions_90d` just after its start plus 90 days;
- a complaint passes its target just after the due time.

**Late facts.** A fact older than the customer's latest recorded conclusion
(`Profile.changed_at`) is concluded at that conclusion's time, `max(occurred_at,
changed_at)`, so the customer's history stays in order and what was answered for an
earlier moment is not changed after the fact. A fact older than the clock but not older
than the latest recorded conclusion is concluded at its own time, and the moments after
it up to the clock are evaluated again with it (nothing recorded after it is
contradicted). A conclusion without a fact of its own (a new segment definition, the
re-scoring, the sweep) follows the same rule.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.analytics.domain import churn, lifecycle, rfm
from services.analytics.domain.profile import CONTACT_WINDOW_DAYS, Profile, day_start
from services.analytics.domain.segments import Outcome, SegmentRule, conclude

TOP_TIER_SCORE = min(s for s in range(1, 6) if rfm.value_tier(s) in rfm.TOP_TIERS)
"""The lowest monetary score of the value tiers that churn warnings are raised for."""
SINCE_LAST = "days_since_last_purchase"
SINCE_FIRST = "days_since_first_purchase"
SINCE_CONTACT = "days_since_last_contact"
WINDOW = "interactions_90d"

JUST_AFTER = timedelta(microseconds=1)

Conclusion = tuple[datetime, Outcome]
"""An outcome and the event time it carries."""


@dataclass(frozen=True)
class Offsets:
    """Days after each anchor date at which a comparison of the built-in rules or of the
    defined rules can turn, and whether any rule counts the interactions of the window."""

    last_purchase: tuple[int, ...]
    first_purchase: tuple[int, ...]
    last_contact: tuple[int, ...]
    window: bool


def day_offsets(rules: Sequence[SegmentRule]) -> Offsets:
    """The days after an anchor at which a rule can turn: for each constant a defined
    rule compares a day count with, that day and the next; for the built-in stages the
    day after each of their limits (they compare with `>` or `<=`)."""
    constants: dict[str, set[float]] = {SINCE_LAST: set(), SINCE_FIRST: set(), SINCE_CONTACT: set()}
    window = False

    def walk(node: Any) -> None:
        nonlocal window
        if not isinstance(node, Mapping):
            return
        name = node.get("field")
        window = window or name == WINDOW
        if name in constants:
            value = node.get("value")
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                    constants[name].add(v)
        for key in ("all", "any"):
            for part in node.get(key, ()):
                walk(part)
        walk(node.get("not"))

    for rule in rules:
        walk(rule.rule)

    def days(name: str, builtin: Iterable[int] = ()) -> tuple[int, ...]:
        found = {limit + 1 for limit in builtin}
        for c in constants[name]:
            if abs(c) < 100_000:
                found.update((math.floor(c), math.floor(c) + 1))
        return tuple(sorted(d for d in found if d >= 0))

    return Offsets(
        last_purchase=days(SINCE_LAST, (lifecycle.AT_RISK_DAYS, lifecycle.LAPSED_DAYS)),
        first_purchase=days(SINCE_FIRST, (lifecycle.NEW_DAYS, lifecycle.GROWING_DAYS)),
        last_contact=days(SINCE_CONTACT),
        window=window,
    )


def _add_after(
    found: list[datetime],
    moment: datetime | None,
    offsets: tuple[int, ...],
    after: datetime,
    until: datetime,
) -> None:
    """The midnights `offsets` days after `moment`'s date that lie in (`after`, `until`]."""
    if moment is None or not offsets:
        return
    start = _day_start(moment.date())
    for days in offsets:
        at = start + _DAYS[days] if days < len(_DAYS) else start + timedelta(days=days)
        if at > until:
            return
        if at > after:
            found.append(at)


def moments_of_change(
    profile: Profile, offsets: Offsets, after: datetime, until: datetime
) -> list[datetime]:
    """The moments in (`after`, `until`], in order, at which a time-dependent value that a
    rule reads can change for the profile."""
    # the midnights are in UTC: comparing date-times of one time zone object is ten
    # times faster than of two (the events' own is pydantic's)
    if after.tzinfo is not UTC:
        after = after.astimezone(UTC)
    if until.tzinfo is not UTC:
        until = until.astimezone(UTC)
    found: list[datetime] = []
    _add_after(found, profile.last_purchase_at, offsets.last_purchase, after, until)
    _add_after(found, profile.first_purchase_at, offsets.first_purchase, after, until)
    _add_after(found, profile.last_contact_at, offsets.last_contact, after, until)
    if offsets.window:
        for contact in profile.recent_contacts:
            at = contact + _WINDOW_PASSED
            if after < at <= until:
                found.append(at)
    if (profile.monetary_score or 0) >= TOP_TIER_SCORE:
        # churn warnings, for the top value tiers only: an overdue purchase, a complaint
        # past its target
        interval = churn.usual_interval_days(
            profile.first_purchase_at and profile.first_purchase_at.date(),
            profile.last_purchase_at and profile.last_purchase_at.date(),
            profile.purchase_count,
        )
        if interval is not None and profile.last_purchase_at is not None:
            threshold = max(churn.OVERDUE_FACTOR * interval, churn.OVERDUE_MIN_DAYS)
            overdue = (math.floor(threshold) + 1,)
            _add_after(found, profile.last_purchase_at, overdue, after, until)
        found.extend(
            at
            for t in profile.tickets.values()
            if t.get("kind") == "complaint" and t["open"] and t.get("due")
            if after < (at := t["due"] + JUST_AFTER) <= until
        )
    if len(found) > 1:
        return sorted(set(found))
    return found


_DAYS = tuple(timedelta(days=n) for n in range(1000))
"""Whole days, made once (the offsets of the rules are mostly below a thousand)."""

_WINDOW_PASSED = timedelta(days=CONTACT_WINDOW_DAYS) + JUST_AFTER


@functools.lru_cache(maxsize=4096)
def _day_start(day: date) -> datetime:
    return day_start(day)


def eventful(outcome: Outcome) -> bool:
    """Whether the outcome records anything: an entry, an exit, a churn warning raised
    or cleared."""
    return bool(outcome.changes or outcome.churn_event)


def advance(
    profile: Profile,
    rules: Sequence[SegmentRule],
    offsets: Offsets,
    after: datetime,
    until: datetime,
) -> list[Conclusion]:
    """Conclude the profile at every moment in (`after`, `until`] where a time-dependent
    value can change; returns the conclusions that record something."""
    drawn = []
    for moment in moments_of_change(profile, offsets, after, until):
        outcome = conclude(profile, moment, rules)
        if eventful(outcome):
            drawn.append((moment, outcome))
    return drawn


def concluded_moment(profile: Profile, at: datetime) -> datetime:
    """The moment a conclusion of event time `at` is drawn at: never before the
    customer's latest recorded conclusion (late facts)."""
    return at if profile.changed_at is None else max(at, profile.changed_at)


def conclude_at(
    profile: Profile,
    at: datetime,
    rules: Sequence[SegmentRule],
    offsets: Offsets,
    fold: Callable[[datetime], None] | None = None,
) -> list[Conclusion]:
    """Bring the profile's conclusions to event time `at`: `fold` (the fact that causes
    them, if any, given the time it is concluded at) folded and the profile concluded at
    `max(at, changed_at)`, after the time-dependent moments before it; every conclusion
    drawn, in order, the last one at the moment concluded (whether it records anything or
    not). Moves the profile's clock (`concluded_at`, `changed_at`)."""
    clock = profile.concluded_at
    moment = concluded_moment(profile, at)
    drawn: list[Conclusion] = []
    if clock is None or moment >= clock:
        if clock is not None:
            drawn = advance(profile, rules, offsets, clock, moment - JUST_AFTER)
        if fold is not None:
            fold(moment)
        drawn.append((moment, conclude(profile, moment, rules)))
        profile.concluded_at = moment
    else:
        if fold is not None:
            fold(moment)
        drawn.append((moment, conclude(profile, moment, rules)))
        drawn.extend(advance(profile, rules, offsets, moment, clock))
    for when, outcome in drawn:
        if eventful(outcome) and (profile.changed_at is None or when > profile.changed_at):
            profile.changed_at = when
    return drawn
