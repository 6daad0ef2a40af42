"""The analytic profile of one customer and the fold of contract events into it (pure).

The fold is order-independent, so that a batch can be folded in any order and a late
event never undoes a newer one:
- purchases and won contracts: count, sum, first and the two latest dates (commutative),
  and the amount of the first purchase (the earliest; among purchases at the same moment,
  the one with the smallest event id), which the lifetime value models need to tell the
  repeat purchases' spend from the first's;
- customer fields, tags and tickets: each keeps the aggregate version that last set it,
  and an event only changes what an older version set;
- the latest NPS answer is the one answered last (ties: the larger event id);
- contacts: each interaction with the version of the event that last set its time
  (`interaction.logged`, then `interaction.corrected`), kept while it is in the last 90
  days or among the three latest; the latest contact and the contacts of the last 90 days
  follow from them.

Repeats are recognised before the fold (by relay position, or by event id in
`consumed_events`: `services.runtime.messaging.positions.recognise`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from contracts.envelope import EventEnvelope
from contracts.personal import ERASED
from contracts.values import into_window
from services.analytics.domain.money import Converter, cents

CONTACT_WINDOW_DAYS = 90
LATEST_CONTACTS_KEPT = 3
"""Contacts kept beyond the window, so that the latest contact is still known when a
correction moves it back in time."""

CUSTOMER_FIELDS = ("name", "kind", "industry", "region", "source_channel", "owner")
CLASSIFICATIONS = ("importance_tier", "loyalty_stage", "value_behaviour", "relationship_level")
"""The customer's four classifications (`contracts.customer.Classification`), each kept
with the aggregate version that set it."""


def _at(text: str) -> datetime:
    """A stored moment; one stored before the window of dates was enforced is moved
    into it (`contracts.values`), so that the fold does not write it back unreadable."""
    return into_window(datetime.fromisoformat(text))


def _dt(text: str | None) -> datetime | None:
    return _at(text) if text else None


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def average_repeat_spend(
    purchase_count: int, total_spend: Decimal, first_spend: Decimal | None
) -> Decimal | None:
    """The mean amount of the purchases after the first, rounded half-up to cents (None
    without a repeat purchase)."""
    if purchase_count < 2 or first_spend is None:
        return None
    return cents((total_spend - first_spend) / (purchase_count - 1))


@dataclass(slots=True)
class Profile:
    customer_id: UUID
    registered: bool = False
    name: str | None = None
    kind: str | None = None
    industry: str | None = None
    region: str | None = None
    source_channel: str | None = None
    owner: str | None = None
    importance_tier: str | None = None
    loyalty_stage: str | None = None
    value_behaviour: str | None = None
    relationship_level: str | None = None
    tags: dict[str, list[Any]] = field(default_factory=dict)
    """tag -> [version, present]"""
    versions: dict[str, int] = field(default_factory=dict)
    """customer field -> aggregate version that last set it"""
    purchase_count: int = 0
    total_spend: Decimal = Decimal("0.00")
    first_purchase_at: datetime | None = None
    first_spend: Decimal | None = None
    """The amount of the first purchase (in the reporting currency)."""
    first_purchase_event: str | None = None
    """The event id of the first purchase, which breaks ties between purchases at the
    same moment (whatever the order they are folded in)."""
    last_purchase_at: datetime | None = None
    previous_purchase_at: datetime | None = None
    contacts: dict[str, list[Any]] = field(default_factory=dict)
    """interaction id -> [version, start time], for the contacts still kept"""
    last_contact_at: datetime | None = None
    recent_contacts: list[datetime] = field(default_factory=list)
    """start times of the kept contacts within the window (as of the last fold)"""
    csat_sum: int = 0
    csat_count: int = 0
    nps_latest: int | None = None
    nps_at: datetime | None = None
    nps_event: str | None = None
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """ticket id -> {"kind", "v" (version of the open state), "open", "due", "dv"}"""
    # derived by the conclusions, stored to tell what changed
    segments: dict[str, int] = field(default_factory=dict)
    """segment -> rule version of the current memberships"""
    churn_reasons: list[str] = field(default_factory=list)
    concluded_at: datetime | None = None
    """The customer's event clock: the event time up to which their conclusions are
    drawn (`event_time`); None for a profile folded before conclusions had one."""
    changed_at: datetime | None = None
    """The event time of their latest recorded conclusion (an entry, exit or churn
    warning raised or cleared); a later fact is never concluded before it."""
    recency_score: int | None = None
    frequency_score: int | None = None
    monetary_score: int | None = None
    # the lifetime value models' scores (`predictions.SCORE_FIELDS`): stored as columns
    # by the scoring after each fit and for customers whose purchases changed, read back
    # with the profile; None until a model scored the customer
    expected_purchases_30d: float | None = None
    expected_purchases_90d: float | None = None
    expected_purchases_365d: float | None = None
    probability_active: float | None = None
    expected_spend: Decimal | None = None
    lifetime_value: Decimal | None = None

    # Derived facts ----------------------------------------------------------------------

    @property
    def tag_list(self) -> list[str]:
        return sorted(t for t, (_, present) in self.tags.items() if present)

    @property
    def average_spend(self) -> Decimal | None:
        if not self.purchase_count:
            return None
        return (self.total_spend / self.purchase_count).quantize(Decimal("0.01"))

    @property
    def repeat_purchases(self) -> int | None:
        """Purchases after the first (None without purchases)."""
        return self.purchase_count - 1 if self.purchase_count else None

    @property
    def average_repeat_spend(self) -> Decimal | None:
        """The mean amount of the purchases after the first, rounded half-up to cents
        (None without a repeat purchase)."""
        return average_repeat_spend(self.purchase_count, self.total_spend, self.first_spend)

    @property
    def csat_average(self) -> float | None:
        return round(self.csat_sum / self.csat_count, 2) if self.csat_count else None

    @property
    def complaints_total(self) -> int:
        return sum(1 for t in self.tickets.values() if t.get("kind") == "complaint")

    @property
    def complaints_open(self) -> int:
        return sum(1 for t in self.tickets.values() if t.get("kind") == "complaint" and t["open"])

    def complaints_past_target(self, now: datetime) -> int:
        return sum(
            1
            for t in self.tickets.values()
            if t.get("kind") == "complaint" and t["open"] and t.get("due") and t["due"] < now
        )

    def interactions_since(self, since: datetime) -> int:
        return sum(1 for moment in self.recent_contacts if moment >= since)

    # Storage ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The profile as a JSON document, its moments as date-times: orjson writes them
        as `isoformat` does (the contracts refuse offsets with seconds, which it would
        not write), without a string made for each in Python first."""
        return {
            "registered": self.registered,
            "name": self.name,
            "kind": self.kind,
            "industry": self.industry,
            "region": self.region,
            "source_channel": self.source_channel,
            "owner": self.owner,
            "importance_tier": self.importance_tier,
            "loyalty_stage": self.loyalty_stage,
            "value_behaviour": self.value_behaviour,
            "relationship_level": self.relationship_level,
            "tags": self.tags,
            "versions": self.versions,
            "purchase_count": self.purchase_count,
            "total_spend": str(self.total_spend),
            "first_purchase_at": self.first_purchase_at,
            "first_spend": None if self.first_spend is None else str(self.first_spend),
            "first_purchase_event": self.first_purchase_event,
            "last_purchase_at": self.last_purchase_at,
            "previous_purchase_at": self.previous_purchase_at,
            "contacts": self.contacts,
            "last_contact_at": self.last_contact_at,
            "recent_contacts": self.recent_contacts,
            "csat_sum": self.csat_sum,
            "csat_count": self.csat_count,
            "nps_latest": self.nps_latest,
            "nps_at": self.nps_at,
            "nps_event": self.nps_event,
            "tickets": {k: {**t, "due": t.get("due")} for k, t in self.tickets.items()},
            "segments": self.segments,
            "churn_reasons": self.churn_reasons,
            "concluded_at": self.concluded_at,
            "changed_at": self.changed_at,
        }

    @classmethod
    def from_state(cls, customer_id: UUID, state: dict[str, Any]) -> Profile:
        return cls(
            customer_id=customer_id,
            registered=state["registered"],
            **{name: state.get(name) for name in CUSTOMER_FIELDS},
            **{name: state.get(name) for name in CLASSIFICATIONS},
            tags=state["tags"],
            versions=state["versions"],
            purchase_count=state["purchase_count"],
            total_spend=Decimal(state["total_spend"]),
            first_purchase_at=_dt(state["first_purchase_at"]),
            first_spend=_decimal(state.get("first_spend")),
            first_purchase_event=state.get("first_purchase_event"),
            last_purchase_at=_dt(state["last_purchase_at"]),
            previous_purchase_at=_dt(state["previous_purchase_at"]),
            contacts=_contacts_of(state),
            last_contact_at=_dt(state["last_contact_at"]),
            recent_contacts=[_at(m) for m in state["recent_contacts"]],
            csat_sum=state["csat_sum"],
            csat_count=state["csat_count"],
            nps_latest=state["nps_latest"],
            nps_at=_dt(state["nps_at"]),
            nps_event=state["nps_event"],
            tickets={k: {**t, "due": _dt(t.get("due"))} for k, t in state["tickets"].items()},
            segments=state["segments"],
            churn_reasons=state["churn_reasons"],
            concluded_at=_dt(state.get("concluded_at")),
            changed_at=_dt(state.get("changed_at")),
        )


def _decimal(text: str | None) -> Decimal | None:
    return Decimal(text) if text is not None else None


def _contacts_of(state: dict[str, Any]) -> dict[str, list[Any]]:
    """The kept contacts of a stored state. States stored before contacts were kept by
    interaction have only the times: they are kept under stand-in keys (version 0), so
    that their contacts still count; a correction of one of them counts as a contact."""
    if "contacts" in state:
        return {k: [v, _at(m)] for k, (v, m) in state["contacts"].items()}
    times = [_at(m) for m in state["recent_contacts"]]
    last = _dt(state["last_contact_at"])
    if last is not None and last not in times:  # the latest, outside the window
        times.append(last)
    return {f"earlier-{n}": [0, moment] for n, moment in enumerate(times)}


# The fold -----------------------------------------------------------------------------


def _set_field(profile: Profile, name: str, value: Any, version: int) -> None:
    if version >= profile.versions.get(name, 0):
        setattr(profile, name, None if value is None else str(value))
        profile.versions[name] = version


def _set_tag(profile: Profile, tag: str, present: bool, version: int) -> None:
    seen = profile.tags.get(tag)
    if seen is None or version >= seen[0]:
        profile.tags[tag] = [version, present]


def _classify(profile: Profile, classification: Any, version: int) -> None:
    for name in CLASSIFICATIONS:
        value = getattr(classification, name)
        _set_field(profile, name, getattr(value, "value", value), version)


def _purchase(profile: Profile, moment: datetime, amount: Decimal, event_id: UUID) -> None:
    profile.purchase_count += 1
    profile.total_spend += amount
    first = profile.first_purchase_at
    # (moment, event id) before the first's; the id as text only for a tie
    if (
        first is None
        or moment < first
        or (moment == first and str(event_id) < (profile.first_purchase_event or ""))
    ):
        profile.first_purchase_at = moment
        profile.first_spend = amount
        profile.first_purchase_event = str(event_id)
    if profile.last_purchase_at is None or moment > profile.last_purchase_at:
        profile.previous_purchase_at = profile.last_purchase_at
        profile.last_purchase_at = moment
    elif profile.previous_purchase_at is None or moment > profile.previous_purchase_at:
        profile.previous_purchase_at = moment


def _contact(profile: Profile, key: str, version: int, moment: datetime, now: datetime) -> None:
    """The interaction `key` started at `moment` (as of its aggregate `version`)."""
    seen = profile.contacts.get(key)
    if seen is not None and version < seen[0]:
        return
    contacts = profile.contacts
    contacts[key] = [version, moment]
    horizon = now - timedelta(days=CONTACT_WINDOW_DAYS)
    if len(contacts) > LATEST_CONTACTS_KEPT:
        latest = sorted(m for _, m in contacts.values())[-LATEST_CONTACTS_KEPT]
        cut = min(latest, horizon)
        contacts = profile.contacts = {k: c for k, c in contacts.items() if c[1] >= cut}
    moments = [m for _, m in contacts.values()]
    profile.last_contact_at = max(moments)
    profile.recent_contacts = sorted(m for m in moments if m >= horizon)


def _ticket(
    profile: Profile,
    ticket_id: str,
    version: int,
    *,
    kind: str | None = None,
    open_: bool | None = None,
    due: datetime | None = None,
) -> None:
    ticket = profile.tickets.setdefault(ticket_id, {"kind": None, "v": 0, "open": False, "dv": 0})
    if kind is not None:
        ticket["kind"] = kind
    if open_ is not None and version >= ticket["v"]:
        ticket["v"] = version
        ticket["open"] = open_
    if due is not None and version >= ticket["dv"]:
        ticket["dv"] = version
        ticket["due"] = due


FOLDED_TYPES = frozenset(
    {
        "customer.registered",
        "customer.profile_changed",
        "customer.classified",
        "customer.tagged",
        "customer.untagged",
        "customer.erased",
        "sales.purchase_recorded",
        "sales.contract_signed",
        "interaction.logged",
        "interaction.corrected",
        "interaction.survey_answered",
        "interaction.ticket_opened",
        "interaction.ticket_escalated",
        "interaction.ticket_resolved",
        "interaction.ticket_reopened",
        "interaction.ticket_closed",
    }
)
"""Event types that change a profile; the others leave it as it is."""


def apply(profile: Profile, event: EventEnvelope[Any], converter: Converter, now: datetime) -> None:
    """Fold one event into the profile."""
    kind = event.event_type
    p: Any = event.payload
    version = event.aggregate_version or 1
    if kind == "customer.registered":
        profile.registered = True
        for name in CUSTOMER_FIELDS:
            _set_field(profile, name, getattr(p, name), version)
        _classify(profile, p.classification, version)
        for tag in p.tags:
            _set_tag(profile, tag, True, version)
    elif kind == "customer.profile_changed":
        for name in p.changed:
            if name in CUSTOMER_FIELDS:
                _set_field(profile, name, getattr(p, name), version)
    elif kind == "customer.classified":
        _classify(profile, p.classification, version)
    elif kind == "customer.tagged":
        for tag in p.tags:
            _set_tag(profile, tag, True, version)
    elif kind == "customer.untagged":
        _set_tag(profile, p.tag, False, version)
    elif kind == "customer.erased":
        _set_field(profile, "name", ERASED, version)
    elif kind == "sales.purchase_recorded":
        amount = converter.convert(p.amount, p.currency)
        _purchase(profile, event.occurred_at, amount, event.event_id)
    elif kind == "sales.contract_signed":
        amount = converter.convert(p.amount, p.currency)
        _purchase(profile, day_start(p.signed_on), amount, event.event_id)
    elif kind == "interaction.logged":
        _contact(profile, str(event.aggregate_id or event.event_id), version, p.started_at, now)
    elif kind == "interaction.corrected":
        if "started_at" in p.changed and p.started_at is not None:
            interaction = str(event.aggregate_id or event.event_id)
            _contact(profile, interaction, version, p.started_at, now)
    elif kind == "interaction.survey_answered":
        if p.csat is not None:
            profile.csat_sum += p.csat
            profile.csat_count += 1
        if p.nps is not None:
            key = (p.answered_at, str(event.event_id))
            if profile.nps_at is None or key > (profile.nps_at, profile.nps_event or ""):
                profile.nps_latest = p.nps
                profile.nps_at = p.answered_at
                profile.nps_event = str(event.event_id)
    elif kind.startswith("interaction.ticket_"):
        ticket_id = str(event.aggregate_id)
        if kind == "interaction.ticket_opened":
            _ticket(
                profile, ticket_id, version, kind=p.kind.value, open_=True, due=p.resolution_due_at
            )
        elif kind == "interaction.ticket_escalated":
            _ticket(profile, ticket_id, version, due=p.resolution_due_at)
        elif kind == "interaction.ticket_reopened":
            _ticket(profile, ticket_id, version, open_=True, due=p.resolution_due_at)
        elif kind in ("interaction.ticket_resolved", "interaction.ticket_closed"):
            _ticket(profile, ticket_id, version, open_=False)
