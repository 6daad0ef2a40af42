"""The profile of a merge group is the profile one customer with all their facts would have."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.analytics.domain.merge_groups import adopt_conclusions, combine, transition
from services.analytics.domain.profile import Profile, _purchase

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def bought(profile: Profile, days_ago: int, amount: str) -> None:
    _purchase(profile, NOW - timedelta(days=days_ago), Decimal(amount), uuid.uuid4())


def test_purchases_combine_as_if_folded_into_one_profile() -> None:
    survivor, absorbed, one = (Profile(uuid.uuid4()) for _ in range(3))
    for profile, days, amount in ((survivor, 10, "100.00"), (survivor, 40, "20.00")):
        bought(profile, days, amount)
        bought(one, days, amount)
    for days, amount in ((5, "7.50"), (300, "1.00")):
        bought(absorbed, days, amount)
        bought(one, days, amount)
    survivor.name = "华信贸易"
    absorbed.name = "华信"
    combined = combine(survivor, [absorbed])
    assert combined.name == "华信贸易"
    for field in (
        "purchase_count",
        "total_spend",
        "first_purchase_at",
        "last_purchase_at",
        "previous_purchase_at",
    ):
        assert getattr(combined, field) == getattr(one, field), field
    assert combined.first_spend == Decimal("1.00")
    assert survivor.purchase_count == 2  # the stored profiles are left as they are


def test_answers_tickets_and_contacts_are_put_together() -> None:
    survivor, absorbed = Profile(uuid.uuid4()), Profile(uuid.uuid4())
    survivor.csat_sum, survivor.csat_count = 4, 1
    absorbed.csat_sum, absorbed.csat_count = 2, 1
    absorbed.nps_latest, absorbed.nps_at, absorbed.nps_event = 3, NOW, "e"
    absorbed.tickets = {"t1": {"kind": "complaint", "v": 1, "open": True, "dv": 0}}
    absorbed.contacts = {"i1": [1, NOW]}
    absorbed.last_contact_at = NOW
    absorbed.recent_contacts = [NOW]
    combined = combine(survivor, [absorbed])
    assert (combined.csat_average, combined.nps_latest, combined.complaints_open) == (3.0, 3, 1)
    assert combined.last_contact_at == NOW and combined.recent_contacts == [NOW]


def test_a_customer_merged_away_leaves_every_segment_and_its_warning_with_the_reason() -> None:
    absorbed = Profile(uuid.uuid4())
    bought(absorbed, 3, "50.00")
    absorbed.segments = {"lifecycle.new": 1, "east_buyers": 2}
    absorbed.churn_reasons = ["detractor"]
    note = {"merged_into": "s", "merge_id": "m"}
    outcome = transition(absorbed, None, NOW, [], note)
    assert {(c.segment, c.direction, c.rule_version) for c in outcome.changes} == {
        ("lifecycle.new", "left", 1),
        ("east_buyers", "left", 2),
    }
    assert all(c.values == note for c in outcome.changes)
    assert outcome.churn_event == "cleared" and not outcome.memberships
    assert absorbed.segments == {"lifecycle.new": 1, "east_buyers": 2}  # left as it was


def test_undoing_a_merge_leads_from_the_groups_memberships_to_the_customers_own() -> None:
    group, own = Profile(uuid.uuid4()), Profile(uuid.uuid4())
    bought(own, 3, "50.00")
    group.segments = {"lifecycle.new": 1, "repeat_buyers": 1, "east_buyers": 1}
    own.segments = {"lifecycle.new": 1, "east_buyers": 2, "tier.low": 1}
    own.churn_reasons = ["detractor"]
    outcome = transition(group, own, NOW, [], {"merge_undone": "m"})
    assert {(c.segment, c.direction) for c in outcome.changes} == {
        ("repeat_buyers", "left"),
        ("tier.low", "entered"),
    }
    assert outcome.revised == ["east_buyers"]  # stays, under its own rule version
    assert outcome.churn_event == "raised"
    entered = next(c for c in outcome.changes if c.direction == "entered")
    assert entered.values["merge_undone"] == "m" and entered.values["total_spend"] == "50.00"
    assert set(outcome.memberships) == set(own.segments)


def test_a_combined_profile_takes_the_conclusions_recorded_for_its_group() -> None:
    survivor, recorded = Profile(uuid.uuid4()), Profile(uuid.uuid4())
    recorded.segments, recorded.churn_reasons = {"tier.top": 1}, ["detractor"]
    recorded.concluded_at = recorded.changed_at = NOW
    combined = combine(survivor, [])
    adopt_conclusions(combined, recorded)
    assert (combined.segments, combined.churn_reasons) == ({"tier.top": 1}, ["detractor"])
    assert combined.concluded_at == combined.changed_at == NOW
    recorded.segments["tier.low"] = 1
    assert "tier.low" not in combined.segments
