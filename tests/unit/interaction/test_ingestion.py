"""Inbound call logs, messages and survey answers (`services.interaction.ingestion`):
the documented examples are valid, bad messages are refused with a reason."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from contracts.inbound import interactions as contract
from contracts.registry import ContractViolation
from services.interaction.ingestion import parse_call_log, parse_message, parse_survey_answer

CUSTOMER = uuid.uuid4()


@pytest.mark.parametrize(
    ("parse", "document", "reason"),
    [
        (parse_survey_answer, b"{not json", "malformed JSON"),
        (parse_survey_answer, b"[1]", "not a JSON object"),
        (parse_survey_answer, {"csat": 7, "customer_id": str(CUSTOMER)}, "csat out of range"),
        (parse_survey_answer, {"nps": 11, "customer_id": str(CUSTOMER)}, "nps out of range"),
        (parse_survey_answer, {"csat": 4}, "no customer named"),
        (parse_survey_answer, {"customer_id": str(CUSTOMER)}, "no score"),
        (parse_message, {"channel": "fax"}, "unknown channel"),
        (parse_call_log, {"direction": "sideways"}, "unknown direction"),
        (parse_call_log, {"duration_seconds": "long"}, "wrong type"),
    ],
)
def test_bad_inbound_messages_are_refused_with_a_reason(
    parse: Any, document: dict[str, Any] | bytes, reason: str
) -> None:
    examples = {
        parse_survey_answer: contract.EXAMPLE_SURVEY_ANSWER,
        parse_message: contract.EXAMPLE_MESSAGE,
        parse_call_log: contract.EXAMPLE_CALL_LOG,
    }
    if isinstance(document, dict):
        base = {
            k: v
            for k, v in examples[parse].items()
            if k not in ("customer_id", "customer_reference", "csat", "nps")
        }
        if parse is not parse_survey_answer:
            base["customer_id"] = str(CUSTOMER)
        raw = orjson.dumps({**base, **document})
    else:
        raw = document
    with pytest.raises(ContractViolation) as caught:
        parse(raw)
    assert caught.value.reason == reason


def test_the_documented_examples_are_valid_messages() -> None:
    assert parse_call_log(orjson.dumps(contract.EXAMPLE_CALL_LOG)).call_id == "C-20261123-0042"
    assert parse_message(orjson.dumps(contract.EXAMPLE_MESSAGE)).channel == "wechat"
    assert parse_survey_answer(orjson.dumps(contract.EXAMPLE_SURVEY_ANSWER)).nps == 9
