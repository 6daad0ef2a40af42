"""Maps event types and versions to payload models, and parses raw Kafka values.

`parse_event` is what every consumer calls on the bytes it receives. Whatever does not
fit a contract raises `ContractViolation` with a reason a person can act on; consumers
send such messages to the dead-letter topic with that reason.
"""

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

try:  # orjson is about three times faster; the contracts alone need only pydantic
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover - exercised by the package test
    from json import loads as _json_loads  # type: ignore[assignment]

from pydantic import BaseModel, ValidationError

from contracts.envelope import EventEnvelope, EventPayload, envelope_class
from contracts.personal import ACCEPTING_SEALED
from contracts.topics import Topic
from contracts.values import as_recorded

EVENT_MODULES = (
    "contracts.customer",
    "contracts.customer_merges",
    "contracts.sales",
    "contracts.interaction",
    "contracts.analytics",
)
"""Each module lists its events in `EVENTS`; a module not written yet is skipped."""


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _collect() -> tuple[
    tuple[type[EventPayload], ...], dict[tuple[str, int], Upcaster], dict[str, type[BaseModel]]
]:
    events: list[type[EventPayload]] = []
    upcasters: dict[tuple[str, int], Upcaster] = {}
    inbound: dict[str, type[BaseModel]] = {}
    for name in EVENT_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        events.extend(module.EVENTS)
        upcasters.update(getattr(module, "UPCASTERS", {}))
        inbound.update(getattr(module, "INBOUND", {}))
    return tuple(events), upcasters, inbound


_ALL_EVENTS, _UPCASTERS, _INBOUND = _collect()

_REGISTRY: dict[tuple[str, int], type[EventPayload]] = {
    (model.event_type, model.schema_version): model for model in _ALL_EVENTS
}


class ContractViolation(ValueError):
    """A message that does not fit any contract. `reason` says why, briefly."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def all_event_models() -> tuple[type[EventPayload], ...]:
    return _ALL_EVENTS


def read_models() -> tuple[type[EventPayload], ...]:
    """The models messages are read into: every version but those brought to the next
    by an upcaster."""
    return tuple(m for m in _ALL_EVENTS if (m.event_type, m.schema_version) not in _UPCASTERS)


def topic_of(model: type[EventPayload]) -> Topic:
    """The topic an event is published on: its service's, named by the event type's prefix
    (`customer.registered` → `crm.customer.events.v1`)."""
    service = model.event_type.partition(".")[0]
    try:
        return Topic(f"crm.{service}.events.v1")
    except ValueError:
        raise LookupError(f"no topic for {model.event_type}: add one to contracts.topics") from None


def events_by_topic() -> dict[Topic, list[type[EventPayload]]]:
    """Every event model, grouped by the topic it is published on."""
    grouped: dict[Topic, list[type[EventPayload]]] = {}
    for model in _ALL_EVENTS:
        grouped.setdefault(topic_of(model), []).append(model)
    return grouped


def inbound_models() -> dict[str, type[BaseModel]]:
    """The message each inbound topic carries (a plain document, not an envelope)."""
    return dict(_INBOUND)


def payload_model(event_type: str, schema_version: int) -> type[EventPayload]:
    try:
        return _REGISTRY[(event_type, schema_version)]
    except KeyError:
        known = sorted(v for (t, v) in _REGISTRY if t == event_type)
        if known:
            raise ContractViolation(
                "unsupported schema version",
                f"{event_type} version {schema_version} (supported: {known})",
            ) from None
        raise ContractViolation("unknown event type", repr(event_type)) from None


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: `field.path: message`."""
    parts = []
    for item in error.errors():
        location = ".".join(str(p) for p in item["loc"]) or "(message)"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


_AS_PUBLISHED = {ACCEPTING_SEALED: True}
"""Messages on Kafka carry personal values sealed."""


@as_recorded
def parse_event(raw: bytes | None) -> EventEnvelope[EventPayload]:
    """Parse the value of a Kafka message into a typed envelope.

    Values are read as recorded (`contracts.values.reading_recorded`): an event
    published before the CRM refused control characters and dates outside its window
    is read with them repaired, not rejected."""
    document, model = read_document(raw)
    return validate_envelope(envelope_class(model), document)


def read_document(raw: bytes | None) -> tuple[dict[str, Any], type[EventPayload]]:
    """The message's JSON document, brought to the newest version of its contract, and
    that contract; `ContractViolation` when it is no envelope of a known event."""
    if raw is None:
        raise ContractViolation("empty message", "the message has no value")
    try:
        document: Any = _json_loads(raw)
    except ValueError as exc:  # orjson's and json's decode errors, and bad UTF-8
        raise ContractViolation("malformed JSON", str(exc)) from None
    if not isinstance(document, dict):
        raise ContractViolation("not an event envelope", "the message is not a JSON object")
    event_type = document.get("event_type")
    schema_version = document.get("schema_version")
    if not isinstance(event_type, str):
        raise ContractViolation("not an event envelope", "event_type is missing or not a string")
    if not isinstance(schema_version, int):
        raise ContractViolation(
            "not an event envelope", "schema_version is missing or not an integer"
        )
    if (event_type, schema_version) in _UPCASTERS:
        document = _upcast(document, event_type, schema_version)
    return document, payload_model(event_type, document["schema_version"])


M = TypeVar("M", bound=BaseModel)


def validate_envelope(model: type[M], document: dict[str, Any]) -> M:
    """`document` validated by `model` (an envelope class) as published on Kafka."""
    try:
        return model.model_validate(document, context=_AS_PUBLISHED)
    except ValidationError as exc:
        raise ContractViolation("invalid event", describe_validation_error(exc)) from None


def _upcast(document: dict[str, Any], event_type: str, version: int) -> dict[str, Any]:
    """Validate an older payload against its own version, then bring it to the newest."""
    try:
        payload = payload_model(event_type, version).model_validate(
            document.get("payload"), context=_AS_PUBLISHED
        )
    except ValidationError as exc:
        detail = describe_validation_error(exc)
        raise ContractViolation("invalid event", f"payload (version {version}): {detail}") from None
    upgraded = payload.model_dump(mode="json")
    while (event_type, version) in _UPCASTERS:
        upgraded = _UPCASTERS[(event_type, version)](upgraded)
        version += 1
    return {**document, "schema_version": version, "payload": upgraded}


def serialize_event(envelope: EventEnvelope[Any]) -> bytes:
    return envelope.model_dump_json(exclude_none=False).encode()
