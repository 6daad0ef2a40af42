"""The fold's tolerant reader refuses what the contracts refuse in the fields the fold
reads, with the same reason, and reads what they accept as they read it; it does not
look at the rest."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from contracts.envelope import example_envelope
from contracts.registry import ContractViolation, parse_event, read_models
from services.analytics.projections.reads import ENVELOPE_READS, PAYLOAD_READS, READER

CANDIDATES: tuple[Any, ...] = (
    None,
    "",
    "not a value",
    "x" * 30_000,
    -1,
    0,
    2**62,
    1.5,
    True,
    {"a": 1},
    [],
    ["x"],
    "2026-13-45",
    "9999-01-01T00:00:00Z",
    "2026-01-01T00:00:00",
)
"""Values to put in a field: most are wrong for any one field."""

MODELS = {m.event_type: m for m in read_models()}


def outcome(raw: bytes, parse: Any, path: tuple[str, ...]) -> tuple[str, Any]:
    try:
        read = parse(raw)
    except ContractViolation as exc:
        return "refused", (exc.reason, exc.detail)
    for name in path:
        read = getattr(read, name)
    return "read", read


def cases() -> list[tuple[str, tuple[str, ...]]]:
    found = [(t, ("payload", f)) for t, fields in PAYLOAD_READS.items() for f in fields]
    return found + [("customer.registered", (f,)) for f in ENVELOPE_READS]


@pytest.mark.parametrize(("event_type", "path"), cases())
def test_a_field_read_is_refused_as_its_contract_refuses_it(
    event_type: str, path: tuple[str, ...]
) -> None:
    refused = 0
    for value in CANDIDATES:
        document = example_envelope(MODELS[event_type])
        (document["payload"] if path[0] == "payload" else document)[path[-1]] = value
        raw = orjson.dumps(document)
        whole = outcome(raw, parse_event, path)
        assert outcome(raw, READER.parse, path) == whole, value
        refused += whole[0] == "refused"
    assert refused  # some values are wrong for every field


def test_a_field_not_read_is_not_looked_at() -> None:
    document = example_envelope(MODELS["sales.purchase_recorded"])
    document["payload"]["order_id"] = {"not": "an order id"}
    document["producer"] = None
    raw = orjson.dumps(document)
    with pytest.raises(ContractViolation):
        parse_event(raw)
    whole: Any = parse_event(orjson.dumps(example_envelope(MODELS["sales.purchase_recorded"])))
    read = READER.parse(raw)
    assert read.payload.amount == whole.payload.amount
    with pytest.raises(AttributeError):
        read.payload.order_id  # noqa: B018


def test_unknown_events_are_refused_as_by_the_contracts() -> None:
    document = example_envelope(MODELS["customer.registered"])
    for changed in ({"event_type": "customer.teleported"}, {"schema_version": 99}):
        raw = orjson.dumps({**document, **changed})
        assert outcome(raw, READER.parse, ()) == outcome(raw, parse_event, ())
        assert outcome(raw, READER.parse, ())[0] == "refused"
