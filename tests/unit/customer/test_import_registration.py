"""A customer an import creates is stored as its `Registered` event alone
(`Customer.registration`): the same stored event, byte for byte once sealed, as
`Customer(...)` records; and the customer made from it when a later row changes it is
the customer `Customer(...)` makes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from services.customer.application import CustomerApplication
from services.customer.domain import DEFAULT_CLASSIFICATION, Customer
from services.customer.import_changes import new_customer
from services.customer.import_mapping import ImportRow
from services.customer.normalisation import Refused
from services.customer.publishing import payload_of, to_contract
from services.runtime.errors import RuleViolation
from services.runtime.privacy.sealing import PersonalData
from services.runtime.storage.eventstore import CommandContext, stamp, stamp_events
from tests.unit.runtime.privacy.test_sealing import MemoryKeyring

ROW = ImportRow(
    number=7,
    key=("erp", "C-007"),
    profile={"name": "上海华信贸易有限公司", "kind": "business", "region": "华东"},
    classification={"importance_tier": "vip"},
    tags=["bench", "import"],
    contacts=[
        {
            "name": "张伟",
            "title": "采购经理",
            "phones": ["+8613800138000"],
            "emails": ["zhang.wei@huaxin.com.cn"],
        }
    ],
    addresses=[
        {
            "label": "office",
            "line1": "中山路 1 号",
            "line2": None,
            "city": "上海",
            "region": None,
            "postal_code": None,
            "country": "CN",
        }
    ],
)
CONTEXT = CommandContext(actor="importer", correlation_id="import:x", causation_id="import:x:7")


def made_by_the_aggregate(customer_id: uuid.UUID, registered: Any) -> Customer:
    """What the import made before: `Customer(...)` with the row's details."""
    details = {
        name: getattr(registered, name)
        for name in (
            *("name", "kind", "industry", "region", "source_channel", "owner", "tags"),
            *("contacts", "addresses", "references", "first_seen_in", "requested_id"),
        )
    }
    customer = Customer(
        **details,
        classification={**DEFAULT_CLASSIFICATION, "importance_tier": "vip"},
        channel_preferences={"preferred": [], "opted_out": []},
    )
    (event,) = customer.pending_events
    assert event.originator_id == customer_id
    object.__setattr__(event, "timestamp", registered.timestamp)  # one moment for both
    return customer


def stored(application: CustomerApplication, events: Sequence[Any]) -> list[StoredEvent]:
    return [application.mapper.to_stored_event(e) for e in events]


def nonce_blind(stored_event: StoredEvent) -> tuple[Any, ...]:
    """The stored event with each sealed value's random nonce and ciphertext left out."""
    state = re.sub(rb"sealed:v1:[A-Za-z0-9_-]+", b"sealed:v1:...", stored_event.state)
    return (stored_event.originator_id, stored_event.originator_version, stored_event.topic, state)


def test_the_import_stores_what_the_aggregate_would_byte_for_byte() -> None:
    customer_id = uuid.uuid4()
    registered = new_customer(ROW, customer_id)
    customer = made_by_the_aggregate(customer_id, registered)
    assert vars(registered) == vars(customer.pending_events[0])
    application = CustomerApplication()
    personal = PersonalData(MemoryKeyring(), to_contract)
    application.protect_personal_data(personal)
    personal.remember(registered, payload_of(registered), customer_id)  # as the import
    stamp_events([registered], CONTEXT)
    stamp(customer, CONTEXT)

    (imported,) = stored(application, [registered])
    (aggregate,) = stored(application, customer.collect_events())  # translated again

    assert nonce_blind(imported) == nonce_blind(aggregate)
    assert imported.state.count(b"sealed:v1:") == 7  # names, phone, e-mail, address
    opened: list[Any] = [application.mapper.to_domain_event(s) for s in (imported, aggregate)]
    assert vars(opened[0]) == vars(opened[1])
    assert opened[0].contacts[0]["emails"] == ["zhang.wei@huaxin.com.cn"]


def test_without_sealing_the_stored_bytes_are_the_same() -> None:
    customer_id = uuid.uuid4()
    registered = new_customer(ROW, customer_id)
    customer = made_by_the_aggregate(customer_id, registered)
    stamp_events([registered], CONTEXT)
    stamp(customer, CONTEXT)
    application = CustomerApplication()
    assert stored(application, [registered]) == stored(application, customer.collect_events())


def test_the_customer_made_from_a_registration_is_the_one_the_aggregate_makes() -> None:
    customer_id = uuid.uuid4()
    registered = new_customer(ROW, customer_id)
    expected = made_by_the_aggregate(customer_id, registered)
    made = Customer.from_registration(registered)
    assert made.pending_events == [registered]
    assert made.created_on == registered.timestamp == made.modified_on
    moments = {"_pending_events", "_created_on", "_modified_on"}
    assert {k: v for k, v in vars(made).items() if k not in moments} == {
        k: v for k, v in vars(expected).items() if k not in moments
    }
    made.tag(["later"])
    assert [type(e).__name__ for e in made.collect_events()] == ["Registered", "Tagged"]


def test_a_registration_keeps_the_customers_rules() -> None:
    with pytest.raises(Refused, match="a new customer needs a kind"):
        new_customer(ImportRow(number=9, key=None, profile={"name": "x"}), uuid.uuid4())
    registered = vars(new_customer(ROW, uuid.uuid4()))
    details = {k: v for k, v in registered.items() if not k.startswith(("originator", "timestamp"))}
    twice = [{"contact_id": "c", "name": "a"}, {"contact_id": "c", "name": "b"}]
    for rules in (Customer, Customer.registration):
        with pytest.raises(RuleViolation, match="duplicate contact id"):
            rules(**{**details, "contacts": twice})
