"""Parsing the inbound purchase message, with a reason a publisher can act on.

Reasons (the `dlq.reason` header of the dead-lettered message) are a small fixed set, so
that they can label metrics: `empty message`, `malformed JSON`, `not a JSON object`,
`missing field`, `wrong type`, `amount not positive`, `unknown currency`,
`no customer named`, `bad customer reference`, `date in the future`, `too long`,
`invalid purchase`. `dlq.detail` names the field and the problem.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from contracts.registry import describe_validation_error
from contracts.sales import SUPPORTED_CURRENCIES, PurchaseCompleted
from services.runtime.messaging.inbound import parse_inbound


def parse_purchase(raw: bytes | None) -> PurchaseCompleted:
    return parse_inbound(
        raw, PurchaseCompleted, invalid="invalid purchase", specific=_reason, detail=_detail
    )


def _reason(field: str, kind: str, error: ErrorDetails) -> str | None:
    if field == "currency" and kind == "enum":
        return "unknown currency"
    if field == "amount" and kind in ("greater_than", "greater_than_equal"):
        return "amount not positive"
    if kind == "value_error" and not error["loc"]:
        return "no customer named"
    return None


def _detail(error: ValidationError) -> str:
    detail = describe_validation_error(error)
    if any(e["type"] == "enum" and e["loc"][:1] == ("currency",) for e in error.errors()):
        currency = next(e["input"] for e in error.errors() if e["loc"][:1] == ("currency",))
        detail = (
            f"currency: {currency!r} is not a supported ISO 4217 code "
            f"(supported: {', '.join(SUPPORTED_CURRENCIES)})"
        )
    return detail
