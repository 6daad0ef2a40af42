"""Personal values sealed where they are kept or sent and opened where they are read
(`services.runtime.privacy.sealing`); erased customers' values read as erased."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import pytest
from aiokafka.structs import ConsumerRecord

from contracts.personal import ERASED, new_key
from contracts.registry import parse_event, serialize_event
from services.customer.domain import Customer
from services.customer.publishing import to_contract
from services.runtime.privacy.keyring import CustomerErased, Keyring
from services.runtime.privacy.sealing import SEALED_FOR, PersonalData


class MemoryKeyring(Keyring):
    """The keyring's behaviour without its database."""

    def __init__(self) -> None:
        self.keys: dict[UUID, bytes | None] = {}

    def sealing_key(self, customer_id: UUID) -> bytes:
        key = self.keys.setdefault(customer_id, new_key())
        if key is None:
            raise CustomerErased(customer_id)
        return key

    def opening_keys(self, customer_ids: Iterable[UUID]) -> dict[UUID, bytes | None]:
        return {c: self.keys.get(c) for c in customer_ids}

    def destroy(self, customer_id: UUID) -> None:
        self.keys[customer_id] = None

    def forget(self, customer_id: UUID) -> None:
        pass


def registered_customer() -> Customer:
    return Customer(
        name="上海华信贸易有限公司",
        kind="business",
        industry="贸易",
        region="华东",
        source_channel=None,
        owner="李娜",
        tags=["key-account"],
        contacts=[
            {
                "contact_id": "c-1",
                "name": "张伟",
                "title": "采购经理",
                "phones": ["+86 138 0013 8000"],
                "emails": ["zhang.wei@huaxin.com.cn"],
            }
        ],
        addresses=[],
        classification={},
        channel_preferences={},
        references=[],
        first_seen_in=None,
        requested_id=None,
    )


def test_the_event_store_keeps_exactly_the_personal_values_sealed() -> None:
    keyring = MemoryKeyring()
    personal = PersonalData(keyring, to_contract)
    customer = registered_customer()
    (registered,) = customer.collect_events()
    stored = personal.seal_state(registered, dict(vars(registered)))
    text = json.dumps(stored, default=str, ensure_ascii=False)
    for value in ("上海华信贸易有限公司", "张伟", "+86 138 0013 8000", "zhang.wei@huaxin.com.cn"):
        assert value not in text
    for value in ("贸易", "华东", "李娜", "key-account", "采购经理", "c-1"):
        assert value in text  # not personal: kept readable
    assert stored[SEALED_FOR] == str(customer.id)

    personal.open_state(stored)
    assert stored["name"] == "上海华信贸易有限公司"
    assert stored["contacts"][0]["emails"] == ["zhang.wei@huaxin.com.cn"]

    again = personal.seal_state(registered, dict(vars(registered)))
    keyring.destroy(customer.id)
    personal.open_state(again)
    assert again["name"] == ERASED and again["contacts"][0]["phones"] == [ERASED]
    assert again["region"] == "华东"
    with pytest.raises(CustomerErased):
        personal.seal_state(registered, dict(vars(registered)))


def test_a_value_also_held_by_a_field_that_is_not_personal_stays_readable() -> None:
    """Sealing is by value: a personal value that a non-personal field holds too (another
    system's `source` equal to its id for the customer, an owner who is also a contact)
    is left plain, so that after the erasure the stored event still reads as its
    contract (a sealed `source` would read `[erased]`, which its pattern refuses)."""
    keyring = MemoryKeyring()
    personal = PersonalData(keyring, to_contract)
    customer = registered_customer()
    customer.add_reference({"source": "u-1029", "source_customer_id": "u-1029"})
    customer.add_reference({"source": "shop-cn", "source_customer_id": "U-77"})
    events = customer.collect_events()
    stored = [personal.seal_state(e, dict(vars(e))) for e in events]
    keyring.destroy(customer.id)
    for state in stored:
        personal.open_state(state)
    opened = [copy.copy(e) for e in events]
    for event, state in zip(opened, stored, strict=True):
        vars(event).update(state)  # the event as the store reads it back
    references = [to_contract(e).payload.reference for e in opened[1:]]  # type: ignore[union-attr]
    assert [(r.source, r.source_customer_id) for r in references] == [
        ("u-1029", "u-1029"),  # in plain sight in `source` anyway
        ("shop-cn", ERASED),
    ]


def test_a_stored_value_that_does_not_open_reads_as_erased() -> None:
    keyring = MemoryKeyring()
    personal = PersonalData(keyring, to_contract)
    customer = registered_customer()
    keyring.sealing_key(customer.id)
    state: dict[str, Any] = {"name": "sealed:v1:AAAA", SEALED_FOR: str(customer.id)}
    personal.open_state(state)
    assert state == {"name": ERASED}


async def test_consumers_read_opened_values_and_dead_letters_keep_the_sealed_bytes() -> None:
    keyring = MemoryKeyring()
    personal = PersonalData(keyring, to_contract)
    customer = registered_customer()
    envelope = to_contract(customer.collect_events()[0])
    assert envelope is not None
    published = serialize_event(personal.sealed(envelope))
    assert b"zhang.wei" not in published
    record: ConsumerRecord[Any, Any] = ConsumerRecord(
        topic="crm.customer.events.v1",
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=str(customer.id).encode(),
        value=published,
        checksum=None,
        serialized_key_size=36,
        serialized_value_size=len(published),
        headers=[("event_type", b"customer.registered")],
    )
    other = dataclasses.replace(record, key=b"not-a-customer", value=b'{"x": 1}')
    opened, untouched = await personal.open_records([record, other])
    assert untouched is other and record.value == published
    payload: Any = parse_event(opened.value).payload
    contact = payload.contacts[0]
    assert contact.emails == ["zhang.wei@huaxin.com.cn"] and contact.name == "张伟"
