"""Personal data of a service's events, sealed wherever it is kept or sent.

The contracts mark which fields are personal (`contracts.personal`). From that one
declaration this module:

- seals the personal values of a domain event before the event store keeps it
  (`PersonalDataMapper`), and opens them when it is read back (`ERASED` once the
  customer's key is gone);
- seals the personal fields of every envelope the outbox relay publishes
  (`PersonalData.sealed`);
- opens the sealed values of consumed messages before a handler parses them
  (`PersonalData.open_records`), keeping the original bytes for the dead-letter topic.

A domain event's personal values are found by translating it to its contract and
reading what the personal fields hold (`personal_fields`, no second validation); every
string equal to one of them is sealed in the stored state. Events that have no contract
are private and carry no personal data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from aiokafka.structs import ConsumerRecord
from eventsourcing.persistence import StoredEvent

from contracts.envelope import EventEnvelope, EventPayload
from contracts.personal import (
    ERASED,
    SEALED_PREFIX,
    SEALING,
    PersonalDataError,
    Sealer,
    is_sealed,
    open_value,
)
from contracts.values import as_recorded
from services.runtime.privacy.keyring import CustomerErased, Keyring
from services.runtime.privacy.personal_fields import all_strings, personal_strings

log = logging.getLogger(__name__)

Translator = Callable[[Any], EventEnvelope[Any] | None]

CHECKED_KEPT = 10_000
"""Events checked (`PersonalData.check`) and not yet sealed, at most: past that, the
remembered translations are forgotten (they are made again when needed)."""
"""Converts a domain event to its public contract; None for events kept private."""

SEALED_FOR = "_sealed_for"
"""State key of a stored event whose personal values are sealed: the customer's id."""

_MARK = SEALED_PREFIX.encode()
ERASED_EVENT = b"customer.erased"
_SEALED_JSON = re.compile(rb'"(' + re.escape(_MARK) + rb'[A-Za-z0-9_-]+)"')


def personal_values(envelope: EventEnvelope[Any]) -> set[str]:
    """The plain personal values an envelope's payload holds (`payload_personal_values`)."""
    return payload_personal_values(envelope.payload)


def payload_personal_values(payload: EventPayload) -> set[str]:
    """The plain personal values a payload holds, except those that also stand in a
    field that is not personal (a reference's `source` equal to the id it names): the
    stored event is sealed by value, and sealing such a value would make the
    non-personal field unreadable once the customer is erased, while the value stays in
    plain sight there anyway."""
    found = personal_strings(payload)
    if not found:
        return set()
    personal = Counter(found)
    everywhere = Counter(all_strings(payload.model_dump(), []))
    return {
        value
        for value, count in personal.items()
        if value != ERASED and not is_sealed(value) and everywhere[value] <= count
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Contract:
    """What sealing needs of an event's contract: its payload and the customer's id."""

    payload: EventPayload
    customer_id: UUID


_KEPT = frozenset({type(None), bool, int, float, UUID, datetime, date})
"""Types of values that hold no string (most of a stored event's state)."""


def _replace_strings(value: Any, replace: Callable[[str], str]) -> Any:
    kind = type(value)  # the exact types first: the state of a stored event holds them
    if kind is str:
        return replace(value)
    if kind in _KEPT:
        return value
    if kind is dict or isinstance(value, dict):
        return {k: _replace_strings(v, replace) for k, v in value.items()}
    if kind is list or isinstance(value, list):
        return [_replace_strings(v, replace) for v in value]
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, tuple):
        return tuple(_replace_strings(v, replace) for v in value)
    return value


class PersonalData:
    """A service's sealing and opening of personal values, with the shared keyring."""

    def __init__(self, keyring: Keyring, translate: Translator) -> None:
        self.keyring = keyring
        # stored events are read as recorded: one stored before a value was refused
        # still translates (repaired), so the relay never stalls on it
        self._translate = as_recorded(translate)
        self._strict = translate
        self._checked: dict[int, tuple[Any, Contract | None]] = {}

    # The event store -----------------------------------------------------------------

    def remember(self, domain_event: Any, payload: EventPayload | None, customer_id: UUID) -> None:
        """Keep the event's contract payload (None: the event is private), which the
        writer made and validated strictly itself, until the event is sealed: a writer
        that checks its events before saving them (the import, row by row) does not pay
        for the translation twice."""
        if len(self._checked) >= CHECKED_KEPT:  # checked, then never saved (a refused row)
            self._checked.clear()
        contract = None if payload is None else Contract(payload, customer_id)
        self._checked[id(domain_event)] = (domain_event, contract)

    def _translation(self, domain_event: Any) -> Contract | None:
        event, contract = self._checked.pop(id(domain_event), (None, None))
        if event is domain_event:
            return contract
        envelope = self._translate(domain_event)
        return None if envelope is None else Contract(envelope.payload, envelope.customer_id)

    def seal_state(self, domain_event: Any, state: dict[str, Any]) -> dict[str, Any]:
        """`state` with the event's personal values sealed (unchanged if it has none).

        Raises `CustomerErased` for personal data of an erased customer."""
        contract = self._translation(domain_event)
        if contract is None:
            return state
        values = payload_personal_values(contract.payload)
        if not values:
            return state
        customer_id = contract.customer_id
        sealing = Sealer(self.keyring.sealing_key(customer_id), customer_id)

        def seal(text: str) -> str:
            if text in values or text.strip() in values:
                return sealing.seal(text)
            return text

        sealed = {
            name: (value if name.startswith("_") else _replace_strings(value, seal))
            for name, value in state.items()
        }
        sealed[SEALED_FOR] = str(customer_id)
        return sealed

    def open_state(self, state: dict[str, Any]) -> None:
        """Open, in place, the sealed values of a stored event's state."""
        subject = state.pop(SEALED_FOR, None)
        if subject is None:
            return
        customer_id = UUID(subject)
        key = self.keyring.opening_keys([customer_id])[customer_id]

        def opened(text: str) -> str:
            try:
                return open_value(text, key, customer_id)
            except PersonalDataError:
                # not sealed by the CRM (a plain value in the sealed form, stored before
                # such values were refused): unreadable, so read as erased rather than
                # making the whole aggregate unreadable
                log.warning("a stored value of customer %s does not open", customer_id)
                return ERASED

        for name, value in list(state.items()):
            if not name.startswith("_"):
                state[name] = _replace_strings(value, opened)

    # The outbox relay ----------------------------------------------------------------

    def sealed(self, envelope: EventEnvelope[Any]) -> EventEnvelope[Any]:
        """The envelope with its personal fields sealed, as it is published."""
        if not personal_values(envelope):
            return envelope
        customer_id = envelope.customer_id
        try:
            key = self.keyring.sealing_key(customer_id)
        except CustomerErased:
            transform: Callable[[str], str] = lambda _text: ERASED  # noqa: E731
        else:
            transform = Sealer(key, customer_id).seal
        payload = envelope.payload
        sealed_payload = type(payload).model_validate(
            payload.model_dump(), context={SEALING: transform}
        )
        return envelope.model_copy(update={"payload": sealed_payload})

    def sealing_translator(self) -> Translator:
        """The service's translation followed by sealing: what the relay publishes."""

        def translate(domain_event: Any) -> EventEnvelope[Any] | None:
            envelope = self._translate(domain_event)
            return None if envelope is None else self.sealed(envelope)

        return translate

    # Consumers -----------------------------------------------------------------------

    async def open_records(
        self, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> list[ConsumerRecord[Any, Any]]:
        """The records with sealed values opened (the customer is the message key);
        records without sealed values are returned as they are."""
        for record in records:
            if _event_type(record) == ERASED_EVENT and (erased := _key_of(record)):
                self.keyring.forget(erased)  # its records below open as erased
        sealed = [r for r in records if isinstance(r.value, bytes) and _MARK in r.value]
        if not sealed:
            return list(records)
        customers = {_customer_of(r) for r in sealed} - {None}
        keys = await asyncio.to_thread(
            self.keyring.opening_keys, [c for c in customers if c is not None]
        )
        opened = []
        for record in records:
            customer_id = _customer_of(record)
            if customer_id is None or not isinstance(record.value, bytes):
                opened.append(record)
                continue
            try:
                value = _opened_json(record.value, keys.get(customer_id), customer_id)
            except ValueError:
                opened.append(record)  # does not open: the parser reports it as it is
                continue
            opened.append(dataclasses.replace(record, value=value))
        return opened


def _opened_json(raw: bytes, key: bytes | None, customer_id: UUID) -> bytes:
    """`raw` with every sealed JSON string replaced by its plain text (JSON-escaped)."""

    def plain(match: re.Match[bytes]) -> bytes:
        text = open_value(match.group(1).decode(), key, customer_id)
        return json.dumps(text, ensure_ascii=False).encode()

    return _SEALED_JSON.sub(plain, raw)


def _customer_of(record: ConsumerRecord[Any, Any]) -> UUID | None:
    if not isinstance(record.value, bytes) or _MARK not in record.value:
        return None
    return _key_of(record)


def _key_of(record: ConsumerRecord[Any, Any]) -> UUID | None:
    if not isinstance(record.key, bytes):
        return None
    try:
        return UUID(record.key.decode())
    except ValueError:
        return None


def _event_type(record: ConsumerRecord[Any, Any]) -> bytes | None:
    for name, value in record.headers or ():
        if name == "event_type":
            return bytes(value)
    return None


def stored_state_is_sealed(stored_event: StoredEvent) -> bool:
    return SEALED_FOR.encode() in stored_event.state
