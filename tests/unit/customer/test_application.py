"""Customers named by another system's reference become known once, under one id
(`services.customer.application`)."""

from __future__ import annotations

from dataclasses import replace

from contracts.references import CustomerReference, customer_id_for_reference
from services.customer.application import CustomerApplication, Sighting
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
    original_exists = app._exists

    def exists_then_raced(customer_id: object) -> bool:
        found = original_exists(customer_id)  # type: ignore[arg-type]
        if customer_id == sighting("U-1").customer_id:
            other_replica.register_first_seen([sighting("U-1", "别处登记")])
        return found

    app._exists = exists_then_raced  # type: ignore[method-assign]
    registered = app.register_first_seen([sighting("U-1"), sighting("U-2"), sighting("U-3")])
    assert sorted(registered) == sorted([sighting("U-2").customer_id, sighting("U-3").customer_id])
    assert app.customer(sighting("U-1").customer_id).name == "别处登记"
    assert app.customer(sighting("U-2").customer_id).first_seen_in == "shop-cn"
    assert app.customer(sighting("U-3").customer_id).first_seen_in == "shop-cn"
