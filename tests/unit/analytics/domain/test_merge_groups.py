"""The profile of a merge group is the profile one customer with all their facts would have."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.analytics.domain.merge_groups import combine
from services.analytics.domain.profile import Profile, _purchase

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def bought(profile: Profile, days_ago: int, amount: str) -> None:
    _purchase(profile, NOW - timedelta(days=days_ago), Decimal(amount), uuid.uuid4().hex)


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
