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

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from services.analytics.domain import churn, lifecycle
from services.analytics.domain.profile import CONTACT_WINDOW_DAYS, Profile, day_start
from services.analytics.domain.segments import Outcome, SegmentRule, conclude

DAY_FIELDS = ("days_since_last_purchase", "days_since_first_purchase", "days_since_last_contact")
"""Rule fields counted in days from a stored date, as of the moment of evaluation."""

BUILTIN_DAYS = (
    lifecycle.NEW_DAYS,
    lifecycle.AT_RISK_DAYS,
    lifecycle.GROWING_DAYS,
    lifecycle.LAPSED_DAYS,
    churn.OVERDUE_MIN_DAYS,
)
"""The constants the built-in segments and churn rules compare days with."""

JUST_AFTER = timedelta(microseconds=1)

Conclusion = tuple[datetime, Outcome]
"""An outcome and the event time it carries."""


def day_offsets(rules: Sequence[SegmentRule]) -> tuple[int, ...]:
    """Days after an anchor date at which a comparison of the built-in rules or of
    `rules` can turn: every constant compared with a day count, and the day after."""
    constants: set[float] = set(BUILTIN_DAYS)

    def walk(node: Any) -> None:
        if not isinstance(node, Mapping):
            return
        if node.get("field") in DAY_FIELDS:
            value = node.get("value")
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, int | float) and not isinstance(v, bool):
                    constants.add(v)
        for key in ("all", "any"):
            for part in node.get(key, ()):
                walk(part)
        walk(node.get("not"))

    for rule in rules:
        walk(rule.rule)
    offsets: set[int] = set()
    for c in constants:
        if math.isfinite(c) and abs(c) < 100_000:
            offsets.update((math.floor(c), math.floor(c) + 1))
    return tuple(sorted(o for o in offsets if o >= 0))


def moments_of_change(
    profile: Profile, offsets: Iterable[int], after: datetime, until: datetime
) -> list[datetime]:
    """The moments in (`after`, `until`], in order, at which a time-dependent value of
    the profile can change."""
    found: set[datetime] = set()
    anchors = {
        m.date()
        for m in (profile.first_purchase_at, profile.last_purchase_at, profile.last_contact_at)
        if m is not None
    }
    days = [day_start(anchor) + timedelta(days=k) for anchor in anchors for k in offsets]
    interval = churn.usual_interval_days(
        profile.first_purchase_at and profile.first_purchase_at.date(),
        profile.last_purchase_at and profile.last_purchase_at.date(),
        profile.purchase_count,
    )
    if interval is not None and profile.last_purchase_at is not None:
        threshold = max(churn.OVERDUE_FACTOR * interval, churn.OVERDUE_MIN_DAYS)
        overdue = math.floor(threshold) + 1
        days.append(day_start(profile.last_purchase_at.date()) + timedelta(days=overdue))
    window = timedelta(days=CONTACT_WINDOW_DAYS)
    days.extend(m + window + JUST_AFTER for m in profile.recent_contacts)
    days.extend(
        t["due"] + JUST_AFTER
        for t in profile.tickets.values()
        if t.get("kind") == "complaint" and t["open"] and t.get("due")
    )
    found.update(m for m in days if after < m <= until)
    return sorted(found)


def eventful(outcome: Outcome) -> bool:
    """Whether the outcome records anything: an entry, an exit, a churn warning raised
    or cleared."""
    return bool(outcome.changes or outcome.churn_event)


def advance(
    profile: Profile,
    rules: Sequence[SegmentRule],
    offsets: Iterable[int],
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


def conclude_at(
    profile: Profile,
    at: datetime,
    rules: Sequence[SegmentRule],
    offsets: Iterable[int],
    fold: Callable[[datetime], None] | None = None,
) -> list[Conclusion]:
    """Bring the profile's conclusions to event time `at`: `fold` (the fact that causes
    them, if any, given the time it is concluded at) folded and the profile concluded at
    `max(at, changed_at)`, after the time-dependent moments before it; every conclusion
    drawn, in order, the last one at the moment concluded (whether it records anything or
    not). Moves the profile's clock (`concluded_at`, `changed_at`)."""
    offsets = tuple(offsets)
    clock = profile.concluded_at
    moment = at if profile.changed_at is None else max(at, profile.changed_at)
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
