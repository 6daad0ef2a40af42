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

from pydantic_core import ErrorDetails

from contracts.interaction import CallLog, InboundMessage, SurveyAnswer
from services.runtime.messaging.inbound import parse_inbound


def parse_call_log(raw: bytes | None) -> CallLog:
    return parse_inbound(raw, CallLog, invalid="invalid call log", specific=_reason)


def parse_message(raw: bytes | None) -> InboundMessage:
    return parse_inbound(raw, InboundMessage, invalid="invalid message", specific=_reason)


def parse_survey_answer(raw: bytes | None) -> SurveyAnswer:
    return parse_inbound(raw, SurveyAnswer, invalid="invalid survey answer", specific=_reason)


def _reason(field: str, kind: str, error: ErrorDetails) -> str | None:
    if field == "channel" and kind == "enum":
        return "unknown channel"
    if field == "direction" and kind == "enum":
        return "unknown direction"
    if field in ("csat", "nps") and kind in ("greater_than_equal", "less_than_equal"):
        return f"{field} out of range"
    if kind == "value_error" and not error["loc"]:
        return "no customer named" if "customer" in error["msg"] else "no score"
    return None
