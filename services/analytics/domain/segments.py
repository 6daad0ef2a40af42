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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
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
    return values_and_churn_reasons(profile, now)[0]


def values_and_churn_reasons(profile: Profile, now: datetime) -> tuple[dict[str, Any], list[str]]:
    """`field_values` and the churn reasons (`churn.reasons`) that follow from them."""
    today = now.date()
    first, last = _date(profile.first_purchase_at), _date(profile.last_purchase_at)
    previous = _date(profile.previous_purchase_at)
    r, f, m = profile.recency_score, profile.frequency_score, profile.monetary_score
    csat = profile.csat_average
    tier = rfm.value_tier(m) if profile.purchase_count else "none"
    average = profile.average_spend
    reasons = churn.reasons(
        tier=tier,
        today=today,
        first=first,
        last=last,
        purchase_count=profile.purchase_count,
        nps_latest=profile.nps_latest,
        complaints_past_target=profile.complaints_past_target(now),
        probability_active=profile.probability_active,
    )
    values = {
        "kind": profile.kind,
        "industry": profile.industry,
        "region": profile.region,
        "owner": profile.owner,
        "source_channel": profile.source_channel,
        "importance_tier": profile.importance_tier,
        "loyalty_stage": profile.loyalty_stage,
        "value_behaviour": profile.value_behaviour,
        "relationship_level": profile.relationship_level,
        "tags": profile.tag_list,
        "registered": profile.registered,
        "purchase_count": profile.purchase_count,
        "total_spend": profile.total_spend,
        "average_spend": average,
        "repeat_purchases": profile.repeat_purchases,
        "average_repeat_spend": profile.average_repeat_spend,
        "first_purchase_date": first,
        "last_purchase_date": last,
        "days_since_last_purchase": (today - last).days if last else None,
        "days_since_first_purchase": (today - first).days if first else None,
        "days_between_last_purchases": (last - previous).days if last and previous else None,
        "days_since_last_contact": (
            (today - profile.last_contact_at.date()).days if profile.last_contact_at else None
        ),
        "interactions_90d": profile.interactions_since(now - timedelta(days=CONTACT_WINDOW_DAYS)),
        "csat_average": csat,
        "csat_count": profile.csat_count,
        "nps_latest": profile.nps_latest,
        "nps_category": matrix.nps_category(profile.nps_latest),
        "complaints_open": profile.complaints_open,
        "complaints_total": profile.complaints_total,
        "recency_score": r,
        "frequency_score": f,
        "monetary_score": m,
        "frequency_monetary_score": rfm.fm(f, m) if f is not None and m is not None else None,
        "rfm_segment": rfm.named_segment(r, f, m) if profile.purchase_count else None,
        "lifecycle_stage": lifecycle.stage(today, first, last, previous),
        "value_tier": tier,
        "satisfaction": matrix.satisfaction(csat, profile.nps_latest),
        **{name: getattr(profile, name) for name in SCORE_FIELDS},
        "churn_risk": bool(reasons),
    }
    return values, reasons


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
        f"lifecycle.{values['lifecycle_stage']}": BUILTIN_FIELDS["lifecycle"]
    }
    if values["rfm_segment"] is not None:
        found[f"rfm.{values['rfm_segment']}"] = BUILTIN_FIELDS["rfm"]
    if values["value_tier"] != "none":
        found[f"tier.{values['value_tier']}"] = BUILTIN_FIELDS["tier"]
    return found


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
    values, reasons = values_and_churn_reasons(profile, now)
    # the deciding values are picked only for the entries and exits, which record them
    deciding: dict[str, tuple[str, ...]] = builtin_memberships(values)
    memberships = dict.fromkeys(deciding, 1)
    for rule in rules:
        if rule.predicate(values):
            memberships[rule.key] = rule.version
            deciding[rule.key] = rule.fields
    versions_of_rules = {rule.key: rule.version for rule in rules}
    changes: list[Change] = []
    revised: list[str] = []
    before = profile.segments
    for segment, version in memberships.items():
        if segment not in before:
            changes.append(Change(segment, "entered", version, pick(values, deciding[segment])))
        elif before[segment] != version:
            revised.append(segment)
    for segment, version in before.items():
        if segment not in memberships:
            current_version = versions_of_rules.get(segment, version)
            if segment.startswith(BUILTIN_PREFIXES):
                current_version = 1
            names = deciding_fields(segment, rules)
            changes.append(Change(segment, "left", current_version, pick(values, names)))
    profile.segments = dict(memberships)

    churn_event = None
    if reasons and not profile.churn_reasons:
        churn_event = "raised"
    elif profile.churn_reasons and not reasons:
        churn_event = "cleared"
    profile.churn_reasons = reasons
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
