"""Finding the amounts of JSON documents by their schemas: which fields a schema types as
the shared money string (`contracts.money.Money`), and the values at those places in a
real answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import TypeAdapter

from contracts.money import Money

MONEY_SCHEMA = TypeAdapter(Money).json_schema(mode="serialization")
"""How an amount is written in every JSON document."""


def resolve(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = definitions.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def is_money(schema: dict[str, Any], definitions: dict[str, Any]) -> bool | None:
    """True when `schema` writes a money string (or a null, or a list of them), False when
    it writes something else, None when it is an object."""
    schema = resolve(schema, definitions)
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        found = [is_money(v, definitions) for v in variants if v.get("type") != "null"]
        return None if None in found else all(found)
    if schema.get("type") == "array":
        return is_money(schema.get("items", {}), definitions)
    if schema.get("type", "object") == "object":
        return None
    return all(schema.get(k) == v for k, v in MONEY_SCHEMA.items() if k != "description")


def amounts_in(
    value: Any, schema: dict[str, Any], definitions: dict[str, Any], path: str = ""
) -> Iterator[tuple[str, Any]]:
    """(path, value) of every amount of `value`, a document of `schema`."""
    schema = resolve(schema, definitions)
    if value is None:
        return
    if is_money(schema, definitions):
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            yield (f"{path}[{index}]" if isinstance(value, list) else path), item
        return
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        for variant in variants:
            yield from amounts_in(value, variant, definitions, path)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from amounts_in(item, schema.get("items", {}), definitions, f"{path}[{index}]")
    elif isinstance(value, dict):
        for name, field in schema.get("properties", {}).items():
            if name in value:
                yield from amounts_in(value[name], field, definitions, f"{path}.{name}")
