"""Customers named by another system's reference become known once, under one id
(`services.customer.application`)."""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from contracts.references import CustomerReference, customer_id_for_reference
from services.customer.application import CustomerApplication, Sighting
from services.customer.domain import HINT_FIELDS, Customer
from services.runtime.storage.eventstore import CommandContext, event_metadata


def sighting(ref: str, name: str | None = None) -> Sighting:
    reference = CustomerReference(source="shop-cn", source_customer_id=ref)
    return Sighting(
        customer_id=customer_id_for_reference(reference),
        source="shop-cn",
        source_customer_id=ref,
        name=name,
        phone="+86 139 0000 0000",
    )


def test_a_reference_seen_twice_registers_one_customer() -> None:
    app = CustomerApplication()  # in-memory event store
    first = app.register_first_seen([sighting("U-1", "王小明"), sighting("U-1"), sighting("U-2")])
    assert len(first) == 2
    assert app.register_first_seen([sighting("U-1")]) == []

    customer = app.customer(sighting("U-1").customer_id)
    assert customer.name == "王小明"
    assert customer.first_seen_in == "shop-cn"
    assert customer.references == [{"source": "shop-cn", "source_customer_id": "U-1"}]
    assert customer.contacts["primary"]["phones"] == ["+86 139 0000 0000"]
    assert app.customer(sighting("U-2").customer_id).name == "shop-cn customer U-2"


def test_the_registration_records_the_event_that_caused_it() -> None:
    app = CustomerApplication()
    cause = CommandContext(actor="crm.sales", correlation_id="order-77", causation_id="evt-1")
    (customer_id,) = app.register_first_seen([replace(sighting("U-9"), cause=cause)])
    (registered,) = list(app.events.get(customer_id))
    assert event_metadata(registered) == {
        "actor": "crm.sales",
        "correlation_id": "order-77",
        "causation_id": "evt-1",
    }


def test_a_race_with_another_replica_loses_no_customer() -> None:
    app = CustomerApplication()
    other_replica = CustomerApplication(env={})
    other_replica.recorder = app.recorder  # the same event store, another writer
    other_replica.events.recorder = app.recorder
    # The other replica registers U-1 after this one checked that it did not exist.
    original_existing = app._existing

    def existing_then_raced(customer_id: UUID) -> Customer | None:
        found = original_existing(customer_id)
        if customer_id == sighting("U-1").customer_id:
            other_replica.register_first_seen([sighting("U-1", "别处登记")])
        return found

    app._existing = existing_then_raced  # type: ignore[method-assign]
    registered = app.register_first_seen([sighting("U-1"), sighting("U-2"), sighting("U-3")])
    assert sorted(registered) == sorted([sighting("U-2").customer_id, sighting("U-3").customer_id])
    assert app.customer(sighting("U-1").customer_id).name == "别处登记"
    assert app.customer(sighting("U-2").customer_id).first_seen_in == "shop-cn"
    assert app.customer(sighting("U-3").customer_id).first_seen_in == "shop-cn"


def test_a_batch_looked_up_at_once_registers_completes_and_survives_a_stale_lookup() -> None:
    """The caller passes which customers the store held when it looked, in one query."""
    app = CustomerApplication()
    (u1,) = app.register_first_seen([sighting("U-1")])
    # Since the lookup, another replica registered U-2: the lookup says it is not there.
    other_replica = CustomerApplication(env={})
    other_replica.recorder = app.recorder
    other_replica.events.recorder = app.recorder
    other_replica.register_first_seen([sighting("U-2", "别处登记")])
    silent = replace(sighting("U-1"), phone=None)
    registered = app.register_first_seen(
        [sighting("U-1", "王小明"), silent, sighting("U-2"), sighting("U-3")], existing={u1}
    )
    assert registered == [sighting("U-3").customer_id]
    assert app.customer(u1).name == "王小明"  # a known customer's hint still fills the name
    assert app.customer(sighting("U-2").customer_id).name == "别处登记"
    assert app.customer(sighting("U-3").customer_id).first_seen_in == "shop-cn"
    version = app.customer(u1).version
    assert app.register_first_seen([silent], existing={u1}) == []  # nothing to fill
    assert app.customer(u1).version == version


HINTS = {"name": "孙安", "phone": "+86 137 0013 7099", "email": "sun.an@example.cn"}
"""A value of every field a hint carries (`HINT_FIELDS`)."""


def known(customer: Customer, field: str) -> object:
    if field == "name":
        return customer.name
    return [v for c in customer.contacts.values() for v in c[f"{field}s"]]


def bare(
    ref: str, name: str | None = None, phone: str | None = None, email: str | None = None
) -> Sighting:
    reference = CustomerReference(source="shop-cn", source_customer_id=ref)
    return Sighting(customer_id_for_reference(reference), "shop-cn", ref, name, phone, email)


def test_every_hint_field_fills_what_is_unknown_and_nothing_known() -> None:
    assert set(HINTS) == set(HINT_FIELDS)
    app = CustomerApplication()
    for field, value in HINTS.items():
        ref = f"U-{field}"
        (customer_id,) = app.register_first_seen([bare(ref)])
        assert known(app.customer(customer_id), field) in ("shop-cn customer " + ref, [])
        # in the same batch as the registration, and in a later one
        app.register_first_seen([bare(ref), bare(ref, **{field: value})])
        filled = app.customer(customer_id)
        assert known(filled, field) == (value if field == "name" else [value]), field
        # a later hint never replaces what is known, whoever told it
        other = {"name": "孙先生", "phone": "+86 137 0000 0000", "email": "x@example.cn"}[field]
        version = filled.version
        app.register_first_seen([bare(ref, **{field: other})])
        assert known(app.customer(customer_id), field) == known(filled, field)
        assert app.customer(customer_id).version == version


def test_a_name_a_person_entered_is_never_replaced_by_a_hint() -> None:
    app = CustomerApplication()
    (customer_id,) = app.register_first_seen([bare("U-7", phone=HINTS["phone"])])
    assert app.customer(customer_id).contacts["primary"]["name"] == "U-7"
    app.change_profile(customer_id, {"name": "孙安 会员"})
    app.register_first_seen([bare("U-7", name="孙先生", email=HINTS["email"])])
    customer = app.customer(customer_id)
    assert customer.name == "孙安 会员"
    assert customer.contacts["primary"] == {
        "contact_id": "primary",
        "name": "孙先生",  # the contact's name was the reference's id: unknown
        "title": None,
        "phones": [HINTS["phone"]],
        "emails": [HINTS["email"]],
    }
