"""Personal values sealed with a customer's key (`contracts.personal`): opened only with
that key, and never accepted in the sealed form from a caller."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.customer import ContactDetails, CustomerKind, CustomerRegistered
from contracts.envelope import build_envelope
from contracts.personal import ERASED, is_sealed, new_key, open_value, seal_value
from contracts.registry import parse_event, serialize_event


def test_a_sealed_value_opens_only_with_its_customers_key() -> None:
    key, customer = new_key(), uuid.uuid4()
    sealed = seal_value("张伟", key, customer)
    assert is_sealed(sealed) and "张伟" not in sealed
    assert open_value(sealed, key, customer) == "张伟"
    assert open_value(sealed, None, customer) == ERASED
    with pytest.raises(ValueError, match="does not open"):
        open_value(sealed, key, uuid.uuid4())  # bound to the customer


def test_a_caller_cannot_submit_a_value_in_the_sealed_form() -> None:
    with pytest.raises(ValidationError, match="cannot start with sealed:v1:"):
        ContactDetails.model_validate({"name": "sealed:v1:AAAA"})
    sealed = seal_value("张伟", new_key(), uuid.uuid4())
    event = build_envelope(
        CustomerRegistered.model_construct(name=sealed, kind=CustomerKind.BUSINESS),
        customer_id=uuid.uuid4(),
        producer="crm.customer",
    )
    parsed: Any = parse_event(serialize_event(event)).payload
    assert parsed.name == sealed  # as published
