"""The analytic profile's fold (`services.analytics.domain.profile`): independent of the
order of events; contacts from logged interactions and their corrections (in either
order), the latest contact and the contacts of the last 90 days."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from contracts import interaction, sales
from contracts.envelope import EventEnvelope, payload_example
from contracts.registry import parse_event
from contracts.values import EARLIEST, LATEST
from local.synthetic_history import history
from services.analytics.domain.money import Converter, cents
from services.analytics.domain.profile import Profile, apply
from tests.support.events import envelope

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
HORIZON = NOW - timedelta(days=90)
CUSTOMER = uuid.uuid4()


def logged(call: uuid.UUID, days_ago: int) -> EventEnvelope[Any]:
    payload = interaction.InteractionLogged(
        channel="phone",
        direction="inbound",
        started_at=NOW - timedelta(days=days_ago),
        subject="回访",
    )
    return envelope(CUSTOMER, 1, payload, aggregate_id=call, event_id=uuid.uuid4())


def corrected(call: uuid.UUID, version: int, **changes: Any) -> EventEnvelope[Any]:
    if "days_ago" in changes:
        changes["started_at"] = NOW - timedelta(days=changes.pop("days_ago"))
    payload = interaction.InteractionCorrected(
        **changes, changed=sorted(changes), reason="recorded wrongly"
    )
    return envelope(CUSTOMER, version, payload, aggregate_id=call, event_id=uuid.uuid4())


def fold(*events: EventEnvelope[Any], profile: Profile | None = None) -> Profile:
    profile = profile or Profile(CUSTOMER)
    for event in events:
        apply(profile, event, Converter("CNY"), NOW)
    return profile


def fold_documents(documents: list[bytes]) -> Profile:
    """The fold of raw event documents, as read from a topic."""
    return fold(*map(parse_event, documents), profile=Profile(uuid.uuid4()))


def test_a_corrected_start_time_moves_the_contact() -> None:
    call = uuid.uuid4()
    profile = fold(logged(call, days_ago=200), corrected(call, 2, days_ago=1))
    assert profile.last_contact_at == NOW - timedelta(days=1)
    assert profile.interactions_since(HORIZON) == 1


def test_a_correction_read_before_its_interaction_still_wins() -> None:
    call = uuid.uuid4()
    in_order = fold(logged(call, days_ago=200), corrected(call, 2, days_ago=1))
    reversed_ = fold(corrected(call, 2, days_ago=1), logged(call, days_ago=200))
    assert reversed_.to_state() == in_order.to_state()


def test_the_latest_contact_moved_back_leaves_the_one_before_as_latest() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    profile = fold(logged(first, days_ago=1), logged(second, days_ago=10))
    fold(corrected(first, 2, days_ago=200), profile=profile)
    assert profile.last_contact_at == NOW - timedelta(days=10)
    assert profile.interactions_since(HORIZON) == 1


def test_a_correction_of_other_fields_leaves_the_contacts_as_they_are() -> None:
    call = uuid.uuid4()
    before = fold(logged(call, days_ago=5)).to_state()
    after = fold(logged(call, days_ago=5), corrected(call, 2, channel="email")).to_state()
    assert after == before


def test_old_contacts_are_forgotten_but_the_three_latest() -> None:
    calls = [uuid.uuid4() for _ in range(6)]
    profile = fold(*(logged(call, days_ago=100 + n) for n, call in enumerate(calls)))
    assert set(profile.contacts) == {str(c) for c in calls[:3]}
    assert profile.last_contact_at == NOW - timedelta(days=100)
    assert profile.interactions_since(HORIZON) == 0


def test_a_profile_stored_before_contacts_were_kept_by_interaction_still_counts_them() -> None:
    state = orjson.loads(orjson.dumps(fold(logged(uuid.uuid4(), days_ago=3)).to_state()))
    del state["contacts"]
    earlier = Profile.from_state(CUSTOMER, state)
    assert earlier.interactions_since(HORIZON) == 1
    fold(logged(uuid.uuid4(), days_ago=2), profile=earlier)
    assert earlier.interactions_since(HORIZON) == 2
    assert earlier.last_contact_at == NOW - timedelta(days=2)


def test_the_fold_does_not_depend_on_the_order_of_events() -> None:
    events = history(30, now=NOW)
    by_customer: dict[str, list[bytes]] = {}
    for event in events:
        by_customer.setdefault(str(event.customer_id), []).append(event.message()[2])
    rng = random.Random(5)
    for documents in by_customer.values():
        reference = fold_documents(documents).to_state()
        shuffled = list(documents)
        rng.shuffle(shuffled)
        state = fold_documents(shuffled).to_state()
        state["recent_contacts"] = sorted(state["recent_contacts"])
        reference["recent_contacts"] = sorted(reference["recent_contacts"])
        assert orjson.dumps(state, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            reference, option=orjson.OPT_SORT_KEYS
        )


def test_a_profile_stored_with_dates_outside_the_window_is_read_inside_it() -> None:
    """State an older version stored from a purchase dated in the year 1 (+08:00, before
    Christ in UTC) is moved into the window when loaded, so the fold writes back what
    PostgreSQL and the driver can read."""
    state = orjson.loads(orjson.dumps(fold(logged(uuid.uuid4(), days_ago=3)).to_state()))
    state.update(
        purchase_count=1,
        first_purchase_at="0001-01-01T00:00:00+08:00",
        last_purchase_at="9999-12-31T20:00:00-08:00",
        recent_contacts=["0001-01-01T00:00:00+08:00"],
    )
    state["contacts"] = {"old": [1, "0001-01-01T00:00:00+08:00"]}
    profile = Profile.from_state(CUSTOMER, state)
    assert (profile.first_purchase_at, profile.last_purchase_at) == (EARLIEST, LATEST)
    assert profile.recent_contacts == [EARLIEST] and profile.contacts["old"] == [1, EARLIEST]
    fold(logged(uuid.uuid4(), days_ago=2), profile=profile)
    assert profile.last_contact_at == NOW - timedelta(days=2)
    state = orjson.loads(orjson.dumps(profile.to_state()))
    assert state["first_purchase_at"] == EARLIEST.isoformat()


def bought(amount: str, moment: datetime, *, contract: bool = False) -> EventEnvelope[Any]:
    """A purchase (or a contract won on the day of `moment`) of `amount` yuan."""
    payload: Any
    if contract:
        payload = sales.ContractSigned(
            opportunity_id=uuid.uuid4(),
            contract_id=f"HT-{uuid.uuid4().hex[:6]}",
            amount=Decimal(amount),
            currency="CNY",
            signed_on=moment.date(),
        )
        return envelope(CUSTOMER, 1, payload, event_id=uuid.uuid4(), aggregate_id=uuid.uuid4())
    document = payload_example(sales.PurchaseRecorded)
    payload = sales.PurchaseRecorded.model_validate(
        {**document, "order_id": f"SO-{uuid.uuid4().hex[:8]}", "amount": amount}
    )
    return envelope(
        CUSTOMER, 1, payload, event_id=uuid.uuid4(), aggregate_id=None, occurred_at=moment
    )


def test_the_first_purchase_keeps_its_amount_in_every_order() -> None:
    """The models read the repeat purchases' spend: the first purchase's amount is kept,
    whatever the order the purchases arrive in, also when several share the earliest
    moment (a contract signed on the day of a purchase at midnight)."""
    day = datetime(2026, 3, 1, tzinfo=UTC)
    events = [
        bought("500.00", day + timedelta(days=30)),
        bought("100.00", day),
        bought("300.00", day, contract=True),
        bought("80.00", day),
        bought("40.00", day + timedelta(days=60)),
    ]
    earliest = min(events[1:4], key=lambda e: str(e.event_id))
    for order in itertools.permutations(events):
        profile = fold(*order)
        assert profile.first_purchase_at == day
        assert profile.first_spend == earliest.payload.amount
        assert profile.repeat_purchases == 4
        assert profile.average_repeat_spend == cents(
            (Decimal("1020.00") - earliest.payload.amount) / 4
        )


def test_model_inputs_of_customers_with_one_or_no_purchase() -> None:
    nobody = fold()
    assert (nobody.repeat_purchases, nobody.average_repeat_spend, nobody.first_spend) == (
        None,
        None,
        None,
    )
    once = fold(bought("99.90", NOW - timedelta(days=3)))
    assert (once.repeat_purchases, once.average_repeat_spend) == (0, None)
    assert once.first_spend == Decimal("99.90")
    free_again = fold(bought("99.90", NOW - timedelta(days=3)), bought("0.00", NOW))
    assert (free_again.repeat_purchases, free_again.average_repeat_spend) == (1, Decimal("0.00"))


def test_the_model_inputs_survive_storage() -> None:
    profile = fold(bought("10.00", NOW - timedelta(days=9)), bought("30.00", NOW))
    state = orjson.loads(orjson.dumps(profile.to_state()))
    again = Profile.from_state(CUSTOMER, state)
    assert (again.first_spend, again.first_purchase_event) == (
        profile.first_spend,
        profile.first_purchase_event,
    )
    assert again.average_repeat_spend == Decimal("30.00")
