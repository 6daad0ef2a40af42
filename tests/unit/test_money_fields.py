"""Every amount the CRM writes is a money string: each field of every service's OpenAPI
document and of every event contract (and the inbound purchase message) whose type is
the shared `contracts.money.Money`, or whose name says it is an amount, is written as the
decimal string `contracts.money` defines; a field whose name merely looks like an amount
(a share, a tier, a count) is listed below with the reason it is not one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from contracts.inbound.purchases import PurchaseCompleted
from contracts.registry import all_event_models
from tests.support.money import MONEY_SCHEMA, is_money
from tests.support.routes import DEFINITIONS, app_of

AMOUNT_WORDS = re.compile(
    r"(^|_)(amount|amounts|value|revenue|total|price|balance|spend|outstanding|paid|cost|clv"
    r"|collected|contracted|budget)(_|$)"
)
"""Words of a field's name that say it holds money."""

NOT_AMOUNTS: dict[str, str] = {
    "value_share": "a share of the total value (0..1)",
    "value_tier": "the name of a value tier",
    "values": "the profile values a conclusion read, an object (amounts inside are strings)",
    "complaints_total": "a count of complaints",
    "Quadrant.value": "the value level of a quadrant (high or low)",
    "value_behaviour": "a classification of the customer (lighthouse, follower, ...)",
    "top_fifth_value_share": "a share of the total value (0..1)",
    "customers_for_80_percent_of_value": "a count of customers",
}
"""Field names (`name`, or `Model.name` for one model's field) that look like amounts but are
not, and why."""


def _properties(
    definitions: dict[str, Any],
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for model, schema in definitions.items():
        for name, prop in schema.get("properties", {}).items():
            yield model, name, prop


def _answered(document: dict[str, Any]) -> set[str]:
    """The schemas an answer holds: those its responses refer to, and those they refer to
    in turn (request bodies are input, where a number is accepted too)."""
    schemas = document.get("components", {}).get("schemas", {})
    found: set[str] = set()
    pending = [
        str(ref)
        for item in document["paths"].values()
        for operation in item.values()
        for response in operation.get("responses", {}).values()
        for ref in re.findall(r"#/components/schemas/([^'\"]+)", str(response))
    ]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending += re.findall(r"#/components/schemas/([^'\"]+)", str(schemas.get(name)))
    return found


def _openapi_fields() -> Iterator[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    for service, definition in DEFINITIONS.items():
        document = app_of(definition).openapi()
        schemas = document.get("components", {}).get("schemas", {})
        answered = _answered(document)
        for model, name, prop in _properties(schemas):
            if model in answered:
                yield f"{service} API", model, name, prop, schemas


def _contract_fields() -> Iterator[tuple[str, str, str, dict[str, Any], dict[str, Any]]]:
    models: list[type[BaseModel]] = [*all_event_models(), PurchaseCompleted]
    for model in models:
        schema = model.model_json_schema(mode="serialization")
        definitions = {model.__name__: schema, **schema.get("$defs", {})}
        for owner, name, prop in _properties(definitions):
            yield "contracts", owner, name, prop, definitions


FIELDS = [*_openapi_fields(), *_contract_fields()]


def _money_typed(prop: dict[str, Any], definitions: dict[str, Any]) -> bool:
    return bool(is_money(prop, definitions))


def test_the_walk_finds_the_amounts_of_every_service_and_contract() -> None:
    """The enumeration below is not empty where amounts are known to be."""
    places = {(where, name) for where, _, name, prop, d in FIELDS if _money_typed(prop, d)}
    for where, name in [
        ("sales API", "expected_amount"),
        ("analytics API", "total_spend"),
        ("contracts", "amount"),
        ("contracts", "outstanding_after"),
    ]:
        assert (where, name) in places, (where, name)


@pytest.mark.parametrize(
    "where,model,name,prop,definitions",
    [f for f in FIELDS if AMOUNT_WORDS.search(f[2])],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_field_named_like_an_amount_is_written_as_a_money_string(
    where: str, model: str, name: str, prop: dict[str, Any], definitions: dict[str, Any]
) -> None:
    verdict = is_money(prop, definitions)
    if verdict is None or name in NOT_AMOUNTS or f"{model}.{name}" in NOT_AMOUNTS:
        return  # an object (its own fields are walked) or a name excused above
    assert verdict, f"{where}: {model}.{name} is {prop}, not a money string {MONEY_SCHEMA}"


def test_every_money_field_is_written_as_the_shared_money_string() -> None:
    """Fields typed by a money type anywhere (any string with a decimal pattern) use the
    one definition, so that every amount reads alike: two decimals at least, no exponent."""
    decimal_like = [
        (where, model, name, prop)
        for where, model, name, prop, definitions in FIELDS
        if _decimal_pattern(prop, definitions) and not _money_typed(prop, definitions)
    ]
    assert decimal_like == []


def _decimal_pattern(prop: dict[str, Any], definitions: dict[str, Any]) -> bool:
    text = str(prop)
    return "\\\\d+" in text and "\\\\." in text and "date" not in text
