"""What follows from a profile: its field values, built-in segments, defined segments,
churn warning; and what changed since the last conclusion (pure).

Built-in segments (rule version 1, rules fixed in code):
- `rfm.<named segment>` (exactly one for customers who bought; `services.analytics.domain.rfm`);
- `lifecycle.<stage>` (exactly one; `services.analytics.domain.lifecycle`);
- `tier.<value tier>` (`top`, `high`, `medium`, `low`; buyers only).
Defined segments have keys without a dot and rules in the rule language
(`services.analytics.domain.rules`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from contracts.money import plain_amount
from services.analytics.domain import churn, lifecycle, matrix, rfm
from services.analytics.domain.predictions import SCORE_FIELDS
from services.analytics.domain.profile import CONTACT_WINDOW_DAYS, Profile
from services.analytics.domain.rules import Predicate, compile_rule, fields_of

BUILTIN_PREFIXES = ("rfm.", "lifecycle.", "tier.")
BUILTIN_SEGMENTS = (
    *(f"rfm.{s}" for s in rfm.NAMED_SEGMENTS),
    *(f"lifecycle.{s}" for s in lifecycle.STAGES),
    *(f"tier.{t}" for t in rfm.VALUE_TIERS if t != "none"),
)
BUILTIN_FIELDS = {
    "rfm": ("recency_score", "frequency_score", "monetary_score"),
    "lifecycle": (
        "purchase_count",
        "first_purchase_date",
        "last_purchase_date",
        "days_since_last_purchase",
    ),
    "tier": ("monetary_score", "total_spend"),
}


@dataclass(frozen=True)
class SegmentRule:
    """A defined segment at one version."""

    key: str
    version: int
    name: str
    rule: dict[str, Any]
    predicate: Predicate = field(compare=False)
    fields: tuple[str, ...] = ()

    @classmethod
    def of(cls, key: str, version: int, name: str, rule: dict[str, Any]) -> SegmentRule:
        return cls(key, version, name, rule, compile_rule(rule), tuple(fields_of(rule)))


def _date(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None


def field_values(profile: Profile, now: datetime) -> dict[str, Any]:
    """Every rule field of the profile, as of `now` (days computed from stored dates)."""
    return FieldValues.of(profile, now).settled()


def _days_since(today: date, moment: datetime | None) -> int | None:
    return (today - moment.date()).days if moment is not None else None


def _days_between_last(profile: Profile, now: datetime) -> int | None:
    last, previous = profile.last_purchase_at, profile.previous_purchase_at
    if last is None or previous is None:
        return None
    return (last.date() - previous.date()).days


def _frequency_monetary(profile: Profile, now: datetime) -> int | None:
    f, m = profile.frequency_score, profile.monetary_score
    return rfm.fm(f, m) if f is not None and m is not None else None


CONTACT_WINDOW = timedelta(days=CONTACT_WINDOW_DAYS)

_LAZY: dict[str, Callable[[Profile, datetime], Any]] = {
    "kind": lambda p, now: p.kind,
    "industry": lambda p, now: p.industry,
    "region": lambda p, now: p.region,
    "owner": lambda p, now: p.owner,
    "source_channel": lambda p, now: p.source_channel,
    "importance_tier": lambda p, now: p.importance_tier,
    "loyalty_stage": lambda p, now: p.loyalty_stage,
    "value_behaviour": lambda p, now: p.value_behaviour,
    "relationship_level": lambda p, now: p.relationship_level,
    "tags": lambda p, now: p.tag_list,
    "registered": lambda p, now: p.registered,
    "purchase_count": lambda p, now: p.purchase_count,
    "total_spend": lambda p, now: p.total_spend,
    "average_spend": lambda p, now: p.average_spend,
    "repeat_purchases": lambda p, now: p.repeat_purchases,
    "average_repeat_spend": lambda p, now: p.average_repeat_spend,
    "first_purchase_date": lambda p, now: _date(p.first_purchase_at),
    "last_purchase_date": lambda p, now: _date(p.last_purchase_at),
    "days_since_last_purchase": lambda p, now: _days_since(now.date(), p.last_purchase_at),
    "days_since_first_purchase": lambda p, now: _days_since(now.date(), p.first_purchase_at),
    "days_between_last_purchases": _days_between_last,
    "days_since_last_contact": lambda p, now: _days_since(now.date(), p.last_contact_at),
    "interactions_90d": lambda p, now: p.interactions_since(now - CONTACT_WINDOW),
    "csat_average": lambda p, now: p.csat_average,
    "csat_count": lambda p, now: p.csat_count,
    "nps_latest": lambda p, now: p.nps_latest,
    "nps_category": lambda p, now: matrix.nps_category(p.nps_latest),
    "complaints_open": lambda p, now: p.complaints_open,
    "complaints_total": lambda p, now: p.complaints_total,
    "recency_score": lambda p, now: p.recency_score,
    "frequency_score": lambda p, now: p.frequency_score,
    "monetary_score": lambda p, now: p.monetary_score,
    "frequency_monetary_score": _frequency_monetary,
    "satisfaction": lambda p, now: matrix.satisfaction(p.csat_average, p.nps_latest),
    **{name: partial(lambda name, p, now: getattr(p, name), name) for name in SCORE_FIELDS},
}
"""How each field that a conclusion need not read is computed, when it is read."""

FIELDS = (
    *list(_LAZY)[: list(_LAZY).index("frequency_monetary_score") + 1],
    "rfm_segment",
    "lifecycle_stage",
    "value_tier",
    "satisfaction",
    *SCORE_FIELDS,
    "churn_risk",
)
"""Every rule field, in the order `field_values` gives them."""


class FieldValues(dict[str, Any]):
    """A profile's rule fields as of a moment (`FIELDS`). What every conclusion reads
    (the built-in segments' values, the churn reasons) is computed at once; any other
    field when it is first read (by a rule, or to record the deciding values), from the
    profile as it is then. The values are therefore those of the profile as of the
    conclusion only while the profile is not folded further: `settled` computes them all
    before it is (`Concluded`, `conclude`)."""

    __slots__ = ("churn_reasons", "now", "profile")
    profile: Profile | None
    """The profile read for fields not computed yet (None once settled)."""
    now: datetime
    churn_reasons: list[str]

    @classmethod
    def of(cls, profile: Profile, now: datetime) -> FieldValues:
        today = now.date()
        last_at, first_at = profile.last_purchase_at, profile.first_purchase_at
        count = profile.purchase_count
        tier = rfm.value_tier(profile.monetary_score) if count else "none"
        if tier in rfm.TOP_TIERS:
            reasons = churn.reasons(
                tier=tier,
                today=today,
                first=_date(first_at),
                last=_date(last_at),
                purchase_count=count,
                nps_latest=profile.nps_latest,
                complaints_past_target=profile.complaints_past_target(now),
                probability_active=profile.probability_active,
            )
        else:
            reasons = []
        if first_at is None or last_at is None:
            stage = "prospect"
        else:
            previous_at = profile.previous_purchase_at
            stage = lifecycle.stage(
                today,
                first_at.date(),
                last_at.date(),
                previous_at.date() if previous_at is not None else None,
            )
        values = cls(
            rfm_segment=(
                rfm.named_segment(
                    profile.recency_score, profile.frequency_score, profile.monetary_score
                )
                if count
                else None
            ),
            lifecycle_stage=stage,
            value_tier=tier,
            churn_risk=bool(reasons),
        )
        values.profile = profile
        values.now = now
        values.churn_reasons = reasons
        return values

    def __missing__(self, name: str) -> Any:
        compute = _LAZY.get(name)
        if compute is None or self.profile is None:
            raise KeyError(name)
        value = self[name] = compute(self.profile, self.now)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def settled(self) -> FieldValues:
        """Every field computed now, in the order of `FIELDS`; no longer read from the
        profile."""
        if self.profile is not None:
            every = {name: self[name] for name in FIELDS}
            self.clear()
            self.update(every)
            self.profile = None
        return self


def settle(values: Mapping[str, Any]) -> None:
    """Compute every field of `values` now, if some are yet to be (`FieldValues`)."""
    if isinstance(values, FieldValues):
        values.settled()


def jsonable(value: Any) -> Any:
    """A field value as a conclusion records and publishes it: dates as `YYYY-MM-DD`,
    amounts as decimal strings (`contracts.money`), never a float."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return plain_amount(value)
    return value


def pick(values: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: jsonable(values.get(name)) for name in names}


def builtin_memberships(values: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Built-in segment -> the fields that decided it."""
    found: dict[str, tuple[str, ...]] = {
        _LIFECYCLE_SEGMENTS[values["lifecycle_stage"]]: BUILTIN_FIELDS["lifecycle"]
    }
    if values["rfm_segment"] is not None:
        found[_RFM_SEGMENTS[values["rfm_segment"]]] = BUILTIN_FIELDS["rfm"]
    if values["value_tier"] != "none":
        found[_TIER_SEGMENTS[values["value_tier"]]] = BUILTIN_FIELDS["tier"]
    return found


_LIFECYCLE_SEGMENTS = {stage: f"lifecycle.{stage}" for stage in lifecycle.STAGES}
_RFM_SEGMENTS = {name: f"rfm.{name}" for name in rfm.NAMED_SEGMENTS}
_TIER_SEGMENTS = {tier: f"tier.{tier}" for tier in rfm.VALUE_TIERS}


def deciding_fields(segment: str, rules: Sequence[SegmentRule]) -> tuple[str, ...]:
    """The fields whose values decide membership of `segment` (none for a segment whose
    definition is gone)."""
    if segment.startswith(BUILTIN_PREFIXES):
        return BUILTIN_FIELDS[segment.split(".", 1)[0]]
    return next((r.fields for r in rules if r.key == segment), ())


@dataclass(frozen=True)
class Change:
    segment: str
    direction: str
    rule_version: int
    values: dict[str, Any]


@dataclass
class Outcome:
    values: dict[str, Any]
    changes: list[Change]
    memberships: dict[str, int]
    """Current segment -> its rule version, for every membership."""
    churn_event: str | None
    """`raised`, `cleared` or None."""
    churn_reasons: list[str]
    revised: list[str] = field(default_factory=list)
    """Segments the customer stays in under a new rule version (no event)."""


def conclude(profile: Profile, now: datetime, rules: Sequence[SegmentRule]) -> Outcome:
    """Evaluate every segment and the churn rules; update the profile's memberships and
    churn reasons and tell what changed."""
    values = FieldValues.of(profile, now)
    reasons = values.churn_reasons
    # the deciding values are picked only for the entries and exits, which record them
    deciding: dict[str, tuple[str, ...]] = builtin_memberships(values)
    memberships = dict.fromkeys(deciding, 1)
    for rule in rules:
        if rule.predicate(values):
            memberships[rule.key] = rule.version
            deciding[rule.key] = rule.fields
    changes: list[Change] = []
    revised: list[str] = []
    before = profile.segments
    if memberships != before:
        picked: dict[tuple[str, ...], dict[str, Any]] = {}

        def decided(names: tuple[str, ...]) -> dict[str, Any]:
            # an entry and an exit of one family record the same values: picked once
            found = picked.get(names)
            if found is None:
                found = picked[names] = pick(values, names)
            return found

        for segment, version in memberships.items():
            if segment not in before:
                changes.append(Change(segment, "entered", version, decided(deciding[segment])))
            elif before[segment] != version:
                revised.append(segment)
        for segment, version in before.items():
            if segment not in memberships:
                if segment.startswith(BUILTIN_PREFIXES):
                    current_version = 1
                else:
                    current_version = next(
                        (rule.version for rule in rules if rule.key == segment), version
                    )
                names = deciding_fields(segment, rules)
                changes.append(Change(segment, "left", current_version, decided(names)))
        profile.segments = dict(memberships)

    churn_event = None
    if reasons and not profile.churn_reasons:
        churn_event = "raised"
    elif profile.churn_reasons and not reasons:
        churn_event = "cleared"
    profile.churn_reasons = reasons
    if churn_event is not None:
        values.settled()  # its event carries them, recorded after the batch is folded
    return Outcome(values, changes, memberships, churn_event, reasons, revised)


CHURN_FIELDS = (
    "value_tier",
    "purchase_count",
    "last_purchase_date",
    "days_since_last_purchase",
    "nps_latest",
    "complaints_open",
    "probability_active",
)
