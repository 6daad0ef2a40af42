"""Rules of the Customer aggregate, without any infrastructure; and a version-1
customer.tagged stored long ago still loads, as version 2."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from services.customer.application import CustomerApplication
from services.customer.domain import Customer
from services.runtime.errors import NotFound, RuleViolation


def new_customer(**overrides: Any) -> Customer:
    fields: dict[str, Any] = {
        "name": "陈静",
        "kind": "consumer",
        "industry": None,
        "region": "华东",
        "source_channel": None,
        "owner": None,
        "tags": ["vip"],
        "contacts": [{"contact_id": "c1", "name": "陈静", "phones": [], "emails": []}],
        "addresses": [],
        "classification": {"importance_tier": "ordinary"},
        "channel_preferences": {"preferred": ["email"], "opted_out": []},
        "references": [],
        "first_seen_in": None,
        "requested_id": None,
        **overrides,
    }
    return Customer(**fields)


def event_names(customer: Customer) -> list[str]:
    return [type(e).__name__ for e in customer.collect_events()]


def test_commands_that_change_nothing_record_nothing() -> None:
    customer = new_customer()
    customer.collect_events()
    customer.change_profile({"region": "华东"})
    customer.tag(["vip"])
    customer.classify({"importance_tier": "ordinary"})
    customer.set_channel_preferences({"preferred": ["email"], "opted_out": []})
    assert event_names(customer) == []
    assert customer.version == 1


def test_only_changed_profile_fields_are_recorded() -> None:
    customer = new_customer()
    customer.collect_events()
    customer.change_profile({"region": "华东", "owner": "李娜"})
    (event,) = customer.collect_events()
    assert event.changes == {"owner": "李娜"}  # type: ignore[attr-defined]


def test_contact_persons_must_exist_to_change_or_remove() -> None:
    customer = new_customer()
    with pytest.raises(NotFound):
        customer.change_contact("nope", {"title": "x"})
    with pytest.raises(NotFound):
        customer.remove_contact("nope")
    with pytest.raises(RuleViolation):
        customer.add_contact({"contact_id": "c1", "name": "again"})
    with pytest.raises(RuleViolation):
        customer.change_contact("c1", {"name": None})


def test_consent_cannot_contradict_itself() -> None:
    with pytest.raises(RuleViolation, match="both preferred and opted out"):
        new_customer(channel_preferences={"preferred": ["sms"], "opted_out": ["sms"]})
    customer = new_customer()
    with pytest.raises(RuleViolation):
        customer.set_channel_preferences({"preferred": ["phone"], "opted_out": ["phone"]})


def test_name_and_kind_cannot_be_cleared() -> None:
    customer = new_customer()
    with pytest.raises(RuleViolation):
        customer.change_profile({"name": None})


def test_untagging_a_missing_tag_is_refused() -> None:
    with pytest.raises(NotFound):
        new_customer().untag("never-had-it")


def test_a_change_whose_event_would_break_its_contract_is_refused() -> None:
    """The outbox must never meet an event it cannot publish: such a change is a 422."""
    from services.customer.application import CustomerApplication
    from services.customer.publishing import to_contract

    application = CustomerApplication()
    application.contract_of = to_contract
    customer = new_customer()
    customer.change_contact("c1", {"emails": None})  # bypassing the API's own checks
    with pytest.raises(RuleViolation, match=r"contact\.emails"):
        application.check_publishable(customer, "customer")
    customer = new_customer()
    customer.change_contact("c1", {"emails": ["c@a.cn"]})
    application.check_publishable(customer, "customer")


def test_a_version_1_event_stored_long_ago_still_loads() -> None:
    app = CustomerApplication()  # in-memory event store
    customer = app.register(name="陈静", kind="consumer")
    old_state = app.mapper.transcoder.encode(
        {"tag": "老客户", "timestamp": datetime(2025, 1, 1, tzinfo=UTC)}
    )
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=customer.id,
                originator_version=2,
                topic=get_topic(Customer.Tagged),
                state=old_state,
            )
        ]
    )
    loaded = app.customer(customer.id)
    assert loaded.tags == ["老客户"]
    assert loaded.version == 2
    (entry,) = [h for h in app.history(customer.id) if h["event_type"] == "customer.tagged"]
    assert entry["change"] == {"tags": ["老客户"]}
