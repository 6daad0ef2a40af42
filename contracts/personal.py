"""Personal data in events: marked in the contracts, sealed with a key per customer.

Fields holding personal data (names, phones, emails, addresses, free text) are
annotated `PERSONAL`. On Kafka and in the event stores their strings travel *sealed*:
`sealed:v1:` followed by base64url of a 12-byte nonce and the AES-256-GCM ciphertext of
the UTF-8 text, with the customer id's 16 bytes as associated data, under that
customer's own key. Erasing a customer destroys the key: every sealed value of theirs,
in any old message or stored event, can no longer be read. Where a value can no longer
be opened, readers see `ERASED`.

Sealing and opening happen while a model validates, steered by the validation context
(`SEALING` → a callable that seals one string, `OPENING` → one that opens one), so the
contracts stay the one place that says what is personal. `parse_event` takes sealed
values as they are (`ACCEPTING_SEALED`); anything else (HTTP bodies, inbound messages)
refuses a value in the sealed form. Consumers outside the CRM open
values with `open_value` and the customer's key (the customer service hands it to
integration accounts).
"""

from __future__ import annotations

import base64
import os
import typing
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import (
    BaseModel,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

SEALED_PREFIX = "sealed:v1:"
ERASED = "[erased]"
"""What a personal value reads as once its customer's key is destroyed."""

SEALING = "seal_personal"
OPENING = "open_personal"
COLLECTING = "collect_personal"
ACCEPTING_SEALED = "accept_sealed"
"""Context key: sealed values are taken as they are (messages read from Kafka). Without
it a value in the sealed form is refused, so that nobody can submit one as plain text."""

KEY_BYTES = 32
_NONCE_BYTES = 12

Transform = Callable[[str], str]


class PersonalDataError(ValueError):
    """A sealed value that cannot be opened with the key given (not one erasure)."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def seal_value(value: str, key: bytes, customer_id: UUID) -> str:
    return Sealer(key, customer_id).seal(value)


class Sealer:
    """Seals values of one customer with their key (`seal_value`, the cipher made once)."""

    def __init__(self, key: bytes, customer_id: UUID) -> None:
        self._cipher = AESGCM(key)
        self._associated = customer_id.bytes

    def seal(self, value: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, value.encode(), self._associated)
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def open_value(value: str, key: bytes | None, customer_id: UUID) -> str:
    """The plain text of a sealed value; `ERASED` when the key was destroyed (None)."""
    if not is_sealed(value):
        return value
    if key is None:
        return ERASED
    body = value[len(SEALED_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], customer_id.bytes)
    except (ValueError, InvalidTag):
        raise PersonalDataError(f"a sealed value of customer {customer_id} does not open") from None
    return plain.decode()


def _personal(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    context = info.context or {}
    if isinstance(value, str):
        if value == ERASED:
            return value
        if value.startswith(SEALED_PREFIX):
            opener: Transform | None = context.get(OPENING)
            if opener is None:
                if context.get(ACCEPTING_SEALED):
                    return value
                raise PydanticCustomError(
                    "sealed_form",
                    "a personal value cannot start with {prefix} (the form of sealed values)",
                    {"prefix": SEALED_PREFIX},
                )
            value = opener(value)
            if value == ERASED:
                return value
    result = handler(value)
    if isinstance(result, str):
        sealer: Transform | None = context.get(SEALING)
        if sealer is not None:
            return sealer(result)
        collected: list[str] | None = context.get(COLLECTING)
        if collected is not None:
            collected.append(result)
    return result


class _PersonalMark:
    """Annotation of a string holding personal data: `Annotated[str, PERSONAL]`.

    Validates plain text as the annotated type does, admits the sealed form and
    `ERASED` as they are, and seals, opens or collects as the validation context asks.
    In JSON Schema the field is marked `x-personal` and admits the sealed form.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.with_info_wrap_validator_function(_personal, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        plain = handler(schema)
        if plain.get("type") != "string":
            return {**plain, "x-personal": True}  # a structure holding personal strings
        sealed = {
            "type": "string",
            "pattern": f"^({SEALED_PREFIX}[A-Za-z0-9_-]+|\\[erased\\])$",
            "description": "Sealed with the customer's key; [erased] once the key is destroyed.",
        }
        return {"anyOf": [plain, sealed], "x-personal": True}


PERSONAL = _PersonalMark()


Personal = Annotated[str, PERSONAL]
"""A string of personal data as an API answers it (opened, or `ERASED`): the mark on the
fields of response models, from which the audit log tells the reads of personal data.
(`Annotated[dict[str, Any], PERSONAL]` marks a structure that holds such strings, such as
an event's payload in a history.)"""


def is_personal_mark(metadata: Any) -> bool:
    """Whether `metadata` (an item of a field's `Annotated` metadata) is the `PERSONAL` mark."""
    return isinstance(metadata, _PersonalMark)


def carries_personal(annotation: Any) -> bool:
    """Whether a value of `annotation` (a model, or a type such as `list[Model] | None`)
    can hold a field marked personal, in any nested model, list or union."""
    return _carries(annotation, frozenset())


def _carries(annotation: Any, seen: frozenset[Any]) -> bool:
    if annotation in seen:
        return False
    seen = seen | {annotation}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(
            any(isinstance(m, _PersonalMark) for m in field.metadata)
            or _carries(field.annotation, seen)
            for field in annotation.model_fields.values()
        )
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        return any(isinstance(m, _PersonalMark) for m in metadata) or _carries(base, seen)
    return any(_carries(argument, seen) for argument in typing.get_args(annotation))
