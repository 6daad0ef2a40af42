"""Parsing inbound call logs, messages and survey answers, with a reason a sender can act on.

Reasons (the `dlq.reason` header of a dead-lettered message) are a small fixed set, so
that they can label metrics: `empty message`, `malformed JSON`, `not a JSON object`,
`missing field`, `wrong type`, `unknown channel`, `unknown direction`,
`csat out of range`, `nps out of range`, `no score`, `no customer named`,
`bad customer reference`, `date in the future`, `too long`, and
`invalid call log` / `invalid message` / `invalid survey answer` for anything else.
`dlq.detail` names the field and the problem.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from contracts.interaction import CallLog, InboundMessage, SurveyAnswer
from contracts.registry import ContractViolation, describe_validation_error

M = TypeVar("M", bound=BaseModel)

_LABELS: dict[type[BaseModel], str] = {
    CallLog: "invalid call log",
    InboundMessage: "invalid message",
    SurveyAnswer: "invalid survey answer",
}
_TYPE_ERRORS = ("_type", "_parsing", "model_attributes_type", "dict_type", "list_type")


def parse_inbound(raw: bytes | None, model: type[M]) -> M:
    """The message as `model`, or `ContractViolation` saying why it does not fit."""
    if raw is None or raw == b"":
        raise ContractViolation("empty message", "the message has no value")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ContractViolation("malformed JSON", first["msg"]) from None
        if first["type"] == "model_type" and not first["loc"]:
            raise ContractViolation(
                "not a JSON object", "the message must be one JSON object"
            ) from None
        raise ContractViolation(_reason(first, _LABELS[model]), _detail(exc)) from None


def parse_call_log(raw: bytes | None) -> CallLog:
    return parse_inbound(raw, CallLog)


def parse_message(raw: bytes | None) -> InboundMessage:
    return parse_inbound(raw, InboundMessage)


def parse_survey_answer(raw: bytes | None) -> SurveyAnswer:
    return parse_inbound(raw, SurveyAnswer)


def _reason(error: Any, fallback: str) -> str:
    kind: str = error["type"]
    field = str(error["loc"][0]) if error["loc"] else ""
    if field == "customer_reference":
        return "bad customer reference"
    if kind == "missing":
        return "missing field"
    if kind == "date_in_future":
        return "date in the future"
    if kind in ("string_too_long", "too_long"):
        return "too long"
    if field == "channel" and kind == "enum":
        return "unknown channel"
    if field == "direction" and kind == "enum":
        return "unknown direction"
    if field in ("csat", "nps") and kind in ("greater_than_equal", "less_than_equal"):
        return f"{field} out of range"
    if kind.endswith(_TYPE_ERRORS):
        return "wrong type"
    if kind == "value_error" and not error["loc"]:
        return "no customer named" if "customer" in error["msg"] else "no score"
    return fallback


def _detail(error: ValidationError) -> str:
    return describe_validation_error(error)
