"""The fold's conclusions as contract envelopes (`services.analytics.projections.conclusions`)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from contracts.registry import parse_event
from services.analytics.domain.event_time import conclude_at, day_offsets
from services.analytics.domain.profile import Profile
from services.analytics.projections.conclusions import Concluded, RandomIds, envelope

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


def test_the_fold_writes_conclusions_as_contract_envelopes() -> None:
    raw = envelope(
        "analytics.segment_changed",
        uuid.uuid4(),
        {"segment": "rfm.champions", "direction": "entered", "rule_version": 1,
         "values": {"recency_score": 5}},
        NOW.isoformat(),
        NOW.isoformat(),
    )  # fmt: skip
    event: Any = parse_event(raw)
    assert event.payload.segment == "rfm.champions"
    churned: Any = parse_event(
        envelope(
            "analytics.churn_risk_raised",
            uuid.uuid4(),
            {"reasons": ["detractor"], "value_tier": "top", "values": {}},
            NOW.isoformat(),
            NOW.isoformat(),
        )
    )
    assert churned.payload.reasons == ["detractor"]


def test_a_conclusion_keeps_the_values_of_its_moment_when_an_earlier_fact_follows() -> None:
    """The fold concludes a batch's facts in event order; should an earlier fact be
    folded after a later one, the later one's conclusion stays the latest, with the
    values of the profile as it was concluded, not as the earlier fact left it."""
    profile = Profile(uuid.uuid4(), registered=True)
    offsets = day_offsets([])
    conclude_at(profile, NOW - timedelta(days=30), [], offsets)
    done = Concluded(profile)

    def contact(moment: datetime) -> None:
        profile.last_contact_at = moment

    def purchase(moment: datetime) -> None:
        profile.purchase_count, profile.total_spend = 1, Decimal("100.00")
        profile.first_purchase_at = profile.last_purchase_at = moment

    done.conclude_fact(NOW, [], offsets, contact)
    done.conclude_fact(NOW - timedelta(days=10), [], offsets, purchase)
    assert profile.purchase_count == 1
    assert done.final.values["purchase_count"] == 0
    assert done.final.values["last_purchase_date"] is None
    assert done.final.values["days_since_last_contact"] == 0


def test_conclusions_get_random_ids_and_a_forked_process_never_draws_its_parents() -> None:
    ids = RandomIds()
    drawn = [ids.next() for _ in range(3 * RandomIds.DRAWN)]
    assert len(set(drawn)) == len(drawn)
    assert all(str(uuid.UUID(i)) == i and uuid.UUID(i).version == 4 for i in drawn)
    assert all(uuid.UUID(i).variant == uuid.RFC_4122 for i in drawn)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child only reports what it drew
        os.write(write, ids.next().encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 64).decode() != ids.next()
