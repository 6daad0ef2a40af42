"""Conclusions in event time (`services.analytics.domain.event_time`): each carries the
time of its fact, or the moment its time-dependent rule became true, however late it is
evaluated; a late fact is concluded after the latest recorded conclusion."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from contracts import sales
from contracts.envelope import EventEnvelope, payload_example
from services.analytics.domain.event_time import Conclusion, conclude_at, day_offsets
from services.analytics.domain.money import Converter
from services.analytics.domain.profile import Profile, apply
from services.analytics.domain.segments import SegmentRule
from tests.support.events import envelope

START = datetime(2025, 3, 10, 15, 30, tzinfo=UTC)
CNY = Converter("CNY")
QUIET = SegmentRule.of(
    "quiet", 1, "沉默", {"field": "days_since_last_purchase", "op": "between", "value": [30, 60]}
)


def bought(customer: uuid.UUID, moment: datetime) -> EventEnvelope[Any]:
    document = payload_example(sales.PurchaseRecorded)
    payload = sales.PurchaseRecorded.model_validate(
        {**document, "order_id": f"SO-{uuid.uuid4().hex[:8]}", "amount": "100.00"}
    )
    return envelope(customer, 1, payload, event_id=uuid.uuid4(), occurred_at=moment)


def fold(profile: Profile, event: EventEnvelope[Any], moment: datetime) -> None:
    apply(profile, event, CNY, moment)
    profile.recency_score = profile.frequency_score = profile.monetary_score = 3


def changes(drawn: list[Conclusion]) -> list[tuple[datetime, str, str]]:
    return [
        (when, c.segment, c.direction)
        for when, o in drawn
        for c in o.changes
        if c.segment.startswith(("lifecycle.", "quiet"))
    ]


def history(facts: list[datetime], *, sweeps: list[datetime]) -> list[tuple[datetime, str, str]]:
    """Every change drawn for one customer from `facts` and sweeps, in event-time order
    of arrival (facts and sweeps interleaved by time)."""
    customer = uuid.uuid4()
    profile = Profile(customer)
    rules, drawn = [QUIET], []
    steps = sorted([(m, "fact") for m in facts] + [(m, "sweep") for m in sweeps])
    for moment, kind in steps:
        act = partial(fold, profile, bought(customer, moment)) if kind == "fact" else None
        drawn += conclude_at(profile, moment, rules, day_offsets(rules), act)
    return sorted(changes(drawn))


def midnight(moment: datetime, days: int) -> datetime:
    day = moment.date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def test_time_dependent_changes_carry_the_moment_their_rule_became_true() -> None:
    later = START + timedelta(days=250)
    got = history([START, later], sweeps=[later + timedelta(days=400)])
    assert got == [
        (START, "lifecycle.new", "entered"),
        (midnight(START, 30), "quiet", "entered"),
        (midnight(START, 61), "quiet", "left"),
        (midnight(START, 91), "lifecycle.growing", "entered"),
        (midnight(START, 91), "lifecycle.new", "left"),
        (midnight(START, 181), "lifecycle.at_risk", "entered"),
        (midnight(START, 181), "lifecycle.growing", "left"),
        (later, "lifecycle.at_risk", "left"),
        (later, "lifecycle.reactivated", "entered"),
        (midnight(later, 30), "quiet", "entered"),
        (midnight(later, 61), "quiet", "left"),
        (midnight(later, 181), "lifecycle.at_risk", "entered"),
        (midnight(later, 181), "lifecycle.reactivated", "left"),
        (midnight(later, 366), "lifecycle.at_risk", "left"),
        (midnight(later, 366), "lifecycle.lapsed", "entered"),
    ]


def test_the_same_history_gives_the_same_changes_however_often_it_is_evaluated() -> None:
    facts = [START, START + timedelta(days=45), START + timedelta(days=300)]
    end = START + timedelta(days=700)
    hourly_then_daily = [START + timedelta(hours=h) for h in range(1, 48)] + [
        START + timedelta(days=d, minutes=7) for d in range(2, 700)
    ]
    at_once = history(facts, sweeps=[end])
    assert at_once == history(facts, sweeps=[*hourly_then_daily, end])
    assert len(at_once) > 10


def test_a_late_fact_is_concluded_after_the_latest_recorded_conclusion() -> None:
    customer = uuid.uuid4()
    profile = Profile(customer)
    rules = [QUIET]
    offsets = day_offsets(rules)
    conclude_at(profile, START, rules, offsets, partial(fold, profile, bought(customer, START)))
    swept = START + timedelta(days=50)
    conclude_at(profile, swept, rules, offsets)
    assert profile.changed_at == midnight(START, 30)  # entered quiet
    # a purchase on day 40 arrives after the sweep: concluded at its own time (nothing
    # recorded after day 30 is contradicted), then the days after it again
    on_40 = START + timedelta(days=40)
    drawn = conclude_at(
        profile, on_40, rules, offsets, partial(fold, profile, bought(customer, on_40))
    )
    assert changes(drawn) == [(on_40, "quiet", "left")]
    assert profile.concluded_at == swept
    # a purchase on day 20, older than that exit, is concluded at the exit's time
    on_20 = START + timedelta(days=20)
    drawn = conclude_at(
        profile, on_20, rules, offsets, partial(fold, profile, bought(customer, on_20))
    )
    assert [when for when, _ in drawn] == [on_40]
    assert profile.purchase_count == 3 and profile.total_spend == Decimal("300.00")
