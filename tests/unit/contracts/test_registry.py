"""Reading events through their contracts (`contracts.registry`): round trips, fields a
later version adds, and clear reasons for what does not fit."""

from __future__ import annotations

import importlib
import uuid
from typing import Any, get_args

import orjson
import pytest
from pydantic import BaseModel

from contracts import (
    ContractViolation,
    all_event_models,
    inbound_models,
    parse_event,
)
from contracts import customer as contract
from contracts.envelope import EventEnvelope, example_envelope, payload_example
from tests.support.events import envelope

UNKNOWN = {"added_in_a_later_version": {"any": ["thing", 1]}}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (directly, in a list or an optional)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for argument in get_args(annotation) for m in _models_in(argument)]


def with_unknown_fields(document: Any, model: type[BaseModel]) -> Any:
    """The document with a field no model knows added to it and to every object of a
    model inside it (free-form mappings such as a segment rule are data, not schema)."""
    if isinstance(document, list):
        return [with_unknown_fields(item, model) for item in document]
    if not isinstance(document, dict):
        return document
    grown = dict(document)
    for name, field in model.model_fields.items():
        key = field.alias or name
        inner = _models_in(field.annotation)
        if key in grown and inner:
            grown[key] = with_unknown_fields(grown[key], inner[0])
    return {**grown, **UNKNOWN}


def with_unknown_envelope_fields(envelope: dict[str, Any], payload: type[BaseModel]) -> Any:
    grown = with_unknown_fields(envelope, EventEnvelope)
    return {**grown, "payload": with_unknown_fields(envelope["payload"], payload)}


def test_an_event_round_trips_through_its_contract() -> None:
    customer_id = uuid.uuid4()
    event = envelope(customer_id, 1, contract.CustomerRegistered(name="陈静", kind="consumer"))
    parsed = parse_event(event.model_dump_json().encode())
    assert parsed == event
    assert isinstance(parsed.payload, contract.CustomerRegistered)


def test_unknown_fields_are_ignored_so_producers_can_add_them() -> None:
    event = envelope(uuid.uuid4(), 2, contract.CustomerTagged(tags=["vip"]))
    raw = event.model_dump_json().replace('"tags":["vip"]', '"tags":["vip"],"colour":"gold"')
    payload = parse_event(raw.encode()).payload
    assert isinstance(payload, contract.CustomerTagged)
    assert payload.tags == ["vip"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty message"),
        (b"", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[1, 2]", "not an event envelope"),
        (b'{"schema_version": 1}', "not an event envelope"),
        (
            b'{"event_type": "customer.registered", "schema_version": 9}',
            "unsupported schema version",
        ),
        (b'{"event_type": "order.shipped", "schema_version": 1}', "unknown event type"),
        (b'{"event_type": "customer.tagged", "schema_version": 1}', "invalid event"),
    ],
)
def test_what_does_not_fit_is_rejected_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(ContractViolation) as rejected:
        parse_event(raw)
    assert rejected.value.reason == reason


@pytest.mark.parametrize("model", all_event_models(), ids=lambda m: m.event_type)
def test_every_event_is_read_with_fields_it_does_not_know(model: Any) -> None:
    example = example_envelope(model)
    grown = with_unknown_envelope_fields(example, model)
    assert parse_event(orjson.dumps(grown)) == parse_event(orjson.dumps(example))


@pytest.mark.parametrize("topic", list(inbound_models()), ids=str)
def test_every_inbound_message_is_read_with_fields_it_does_not_know(topic: str) -> None:
    model = inbound_models()[topic]
    example = payload_example(model)
    grown = model.model_validate_json(orjson.dumps(with_unknown_fields(example, model)))
    assert grown == model.model_validate_json(orjson.dumps(example))


FIRST_DOCUMENTED_AT = {
    "crm.inbound.purchases.v1": "contracts.sales",
    "crm.inbound.call-logs.v1": "contracts.interaction",
    "crm.inbound.messages.v1": "contracts.interaction",
    "crm.inbound.survey-answers.v1": "contracts.interaction",
}
"""Where the integration guide named each inbound document before `contracts.inbound`."""


@pytest.mark.parametrize("topic", list(inbound_models()), ids=str)
def test_every_inbound_document_is_in_contracts_inbound_and_where_it_was(topic: str) -> None:
    model = inbound_models()[topic]
    assert model.__module__.startswith("contracts.inbound."), model.__module__
    if topic in FIRST_DOCUMENTED_AT:
        module = importlib.import_module(FIRST_DOCUMENTED_AT[topic])
        assert getattr(module, model.__name__) is model
