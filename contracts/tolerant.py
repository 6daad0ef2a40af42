"""Tolerant readers: a consumer validates the fields it reads, and only those.

`parse_event` validates a message with its whole contract: every field of the envelope
and of the payload, personal values, texts and moments included, whether the consumer
reads them or not. A `TolerantReader` is given the fields a consumer reads of each
event type (and of the envelope), and derives from each contract, once, a slim model of
just those fields: the same annotations with the same constraints and validators (a
field's `Annotated` metadata, bounds, patterns, nested models), and for an amount the
currency that gives its minor units (`contracts.money.Priced`). A value the contract
refuses in a field the consumer reads is refused as before, with the same reason; what
it does not read is neither validated nor kept: reading it is an `AttributeError`.

Event types the consumer reads nothing of (no entry in its reads) are validated as
envelopes whose payload is an object; unknown event types and schema versions are
refused as by `parse_event`, and older versions are brought to the newest by its
upcasters (validated against their own version first).

A read naming a field its contract does not have, or a contract with validators of its
own that a slim model would not carry, fails when the reader is built (at import), so a
reader cannot drift from the contracts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo

from contracts.envelope import EventEnvelope, EventPayload
from contracts.money import Priced
from contracts.registry import read_document, read_models, validate_envelope
from contracts.values import as_recorded

ENVELOPE_ALWAYS = frozenset({"event_id", "event_type", "schema_version", "customer_id"})
"""What every consumer reads of the envelope: what it is, and whose."""

_CARRIED = frozenset({"_amounts_in_minor_units"})
"""The validators a slim model carries by its base (`Priced`)."""


class SlimPayload(BaseModel):
    """Base of the slim payload models (as `EventPayload`: frozen, extra fields ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _fields(model: type[BaseModel], names: Collection[str]) -> dict[str, Any]:
    missing = sorted(set(names) - model.model_fields.keys())
    if missing:
        raise LookupError(f"{model.__name__} has no field {', '.join(missing)}")
    return {
        name: (info.annotation, FieldInfo.merge_field_infos(info))
        for name, info in model.model_fields.items()
        if name in names
    }


def slim_payload(model: type[EventPayload], names: Collection[str]) -> type[BaseModel]:
    """The payload model of `model` with only the fields `names` (and, for a priced
    contract, the currencies of the amounts kept)."""
    decorators = model.__pydantic_decorators__
    own = {*decorators.field_validators, *decorators.model_validators} - _CARRIED
    if own:
        raise TypeError(
            f"{model.__name__} has validators a slim model does not carry: {sorted(own)}"
        )
    kept = set(names)
    base: type[BaseModel] = SlimPayload
    if issubclass(model, Priced):
        base = cast(type[BaseModel], type("SlimPriced", (SlimPayload, Priced), {}))
        if "currency" in model.model_fields:
            kept.add("currency")
        kept |= {c for amount, c in model.other_currencies.items() if amount in kept}
    slim: type[BaseModel] = create_model(
        f"{model.__name__}Read", __base__=base, __module__=__name__, **_fields(model, kept)
    )
    if issubclass(model, Priced):
        slim.other_currencies = model.other_currencies
    return slim


def slim_envelope(payload: type[BaseModel], names: Collection[str]) -> type[BaseModel]:
    """An envelope with only the fields `names` (and `ENVELOPE_ALWAYS`) around `payload`."""
    fields = _fields(EventEnvelope, (set(names) | ENVELOPE_ALWAYS) - {"payload"})
    return create_model(
        f"{payload.__name__}Envelope",
        __config__=ConfigDict(extra="ignore", frozen=True),
        __module__=__name__,
        payload=(payload, ...),
        **fields,
    )


class TolerantReader:
    """Parses messages with the slim models of what a consumer reads.

    `reads` maps event types to the payload fields the consumer reads of them;
    `envelope` names the envelope fields it reads."""

    def __init__(self, reads: Mapping[str, Collection[str]], envelope: Collection[str]) -> None:
        models = read_models()
        unknown = sorted(set(reads) - {m.event_type for m in models})
        if unknown:
            raise LookupError(f"no contract for {', '.join(unknown)}")
        self.reads = {event_type: frozenset(names) for event_type, names in reads.items()}
        self.envelope = frozenset(envelope) | ENVELOPE_ALWAYS
        self._models: dict[type[EventPayload], type[BaseModel]] = {
            model: slim_envelope(
                slim_payload(model, self.reads.get(model.event_type, ())), self.envelope
            )
            for model in models
        }

    def model(self, contract: type[EventPayload]) -> type[BaseModel]:
        """The slim envelope model this reader validates `contract`'s messages with."""
        return self._models[contract]

    @as_recorded
    def parse(self, raw: bytes | None) -> EventEnvelope[Any]:
        """The message's envelope with the fields read (`ContractViolation` as
        `parse_event` when it does not fit): it has the envelope's interface for those
        fields, and only for those."""
        document, contract = read_document(raw)
        return cast("EventEnvelope[Any]", validate_envelope(self._models[contract], document))
