"""Parsing the inbound purchase message, with a reason a publisher can act on.

Reasons (the `dlq.reason` header of the dead-lettered message) are a small fixed set, so
that they can label metrics: `empty message`, `malformed JSON`, `not a JSON object`,
`missing field`, `wrong type`, `amount not positive`, `unknown currency`,
`no customer named`, `bad customer reference`, `date in the future`, `too long`,
`invalid purchase`. `dlq.detail` names the field and the problem.
"""

from __future__ import annotations

from pydantic import ValidationError

from contracts.registry import ContractViolation, describe_validation_error
from contracts.sales import SUPPORTED_CURRENCIES, PurchaseCompleted

_TYPE_ERRORS = (
    "_type",
    "_parsing",
    "model_attributes_type",
    "dict_type",
    "list_type",
    "uuid_parsing",
    "datetime_from_date_parsing",
)


def parse_purchase(raw: bytes | None) -> PurchaseCompleted:
    if raw is None or raw == b"":
        raise ContractViolation("empty message", "the message has no value")
    try:
        return PurchaseCompleted.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ContractViolation("malformed JSON", first["msg"]) from None
        if first["type"] == "model_type" and not first["loc"]:
            raise ContractViolation("not a JSON object", "a purchase is one JSON object") from None
        raise ContractViolation(_reason(exc), _detail(exc)) from None


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    kind = first["type"]
    field = str(first["loc"][0]) if first["loc"] else ""
    if field == "customer_reference":
        return "bad customer reference"
    if kind == "missing":
        return "missing field"
    if kind == "date_in_future":
        return "date in the future"
    if kind in ("string_too_long", "too_long"):
        return "too long"
    if field == "currency" and kind == "enum":
        return "unknown currency"
    if field == "amount" and kind in ("greater_than", "greater_than_equal"):
        return "amount not positive"
    if kind.endswith(_TYPE_ERRORS):
        return "wrong type"
    if kind == "value_error" and not first["loc"]:
        return "no customer named"
    return "invalid purchase"


def _detail(error: ValidationError) -> str:
    detail = describe_validation_error(error)
    if any(e["type"] == "enum" and e["loc"][:1] == ("currency",) for e in error.errors()):
        currency = next(e["input"] for e in error.errors() if e["loc"][:1] == ("currency",))
        detail = (
            f"currency: {currency!r} is not a supported ISO 4217 code "
            f"(supported: {', '.join(SUPPORTED_CURRENCIES)})"
        )
    return detail
