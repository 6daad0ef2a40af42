"""The personal values of a payload read from the fields its contract marks
(`services.runtime.privacy.personal_fields`) are those a validation pass collects."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.envelope import EventPayload, payload_example
from contracts.personal import COLLECTING
from contracts.registry import all_event_models
from services.customer.publishing import to_contract
from services.runtime.privacy.personal_fields import all_strings, personal_strings
from tests.unit.runtime.privacy.test_sealing import registered_customer


def collected_by_validation(payload: BaseModel) -> list[str]:
    found: list[str] = []
    type(payload).model_validate(payload.model_dump(), context={COLLECTING: found})
    return found


@pytest.mark.parametrize("model", all_event_models(), ids=lambda m: m.event_type)
def test_every_contract_gives_the_values_its_validation_collects(
    model: type[EventPayload],
) -> None:
    payload = model.model_validate(payload_example(model))
    assert Counter(personal_strings(payload)) == Counter(collected_by_validation(payload))


def test_a_registration_gives_each_personal_value_as_often_as_it_stands() -> None:
    customer = registered_customer()
    customer.add_contact(
        {"contact_id": "c-2", "name": "张伟", "title": None, "phones": [], "emails": []}
    )
    payloads = [envelope.payload for e in customer.collect_events() if (envelope := to_contract(e))]
    found = [personal_strings(p) for p in payloads]
    assert found == [collected_by_validation(p) for p in payloads]
    assert Counter(found[0])["张伟"] == 1 and "上海华信贸易有限公司" in found[0]
    assert found[1] == ["张伟"]


def test_all_strings_are_the_values_not_the_keys() -> None:
    dumped: dict[str, Any] = {"a": "x", "b": [{"c": "y", "d": None}, ("z",)], "e": 3}
    assert all_strings(dumped, []) == ["x", "y", "z"]
