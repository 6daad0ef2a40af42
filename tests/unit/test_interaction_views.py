"""Pure parts of the interaction read side: folds, keyword keys, inbound parsing, opt-outs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import pytest
from pydantic import ValidationError

from contracts import customer as customer_contract
from contracts import interaction as contract
from contracts.envelope import EventEnvelope
from contracts.registry import ContractViolation
from services.interaction.domain import policy
from services.interaction.ingestion import parse_call_log, parse_message, parse_survey_answer
from services.interaction.projections import fold_interaction, fold_ticket
from services.interaction.queries import channel_to_use
from services.interaction.settings import InteractionSettings
from services.interaction.textsearch import keyword_clause, search_grams, search_text
from services.runtime.customer_replica import fold_customer

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TICKET = uuid.uuid4()
CUSTOMER = uuid.uuid4()


def event(payload: Any, version: int, aggregate_id: uuid.UUID = TICKET) -> EventEnvelope[Any]:
    envelope_class: Any = cast(Any, EventEnvelope)[type(payload)]
    built: EventEnvelope[Any] = envelope_class(
        event_id=uuid.uuid4(),
        event_type=payload.event_type,
        schema_version=1,
        customer_id=CUSTOMER,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        occurred_at=T0,
        recorded_at=T0,
        producer="tests",
        payload=payload,
    )
    return built


def test_the_ticket_row_knows_when_a_target_was_missed_and_when_to_warn() -> None:
    opened = contract.TicketOpened(
        kind="complaint",
        channel="phone",
        category="delivery",
        severity="high",
        subject="延迟",
        opened_at=T0,
        response_due_at=T0 + timedelta(minutes=30),
        resolution_due_at=T0 + timedelta(hours=4),
    )
    row = fold_ticket(None, event(opened, 1))
    assert row is not None
    assert row["response_warn_at"] == T0 + timedelta(minutes=24)  # a fifth of 30 min left
    responded = contract.TicketResponded(responded_at=T0 + timedelta(minutes=45), responder="王芳")
    row = fold_ticket(row, event(responded, 2))
    assert row is not None and row["response_breached"] and not row["resolution_breached"]
    resolved = contract.TicketResolved(resolved_at=T0 + timedelta(hours=1), resolution="ok")
    row = fold_ticket(row, event(resolved, 3))
    assert row is not None and row["status"] == "resolved"
    reopened = contract.TicketReopened(
        reopened_at=T0 + timedelta(hours=2),
        reason="破损",
        resolution_due_at=T0 + timedelta(hours=6),
    )
    row = fold_ticket(row, event(reopened, 4))
    assert row is not None
    assert (row["status"], row["reopen_count"], row["resolved_at"]) == ("open", 1, None)
    assert row["resolution_warn_at"] == T0 + timedelta(hours=5, minutes=12)
    assert fold_ticket(None, event(resolved, 3)) is None  # nothing before the opening


def test_a_corrected_interaction_is_searchable_by_its_new_words() -> None:
    interaction_id = uuid.uuid4()
    logged = contract.InteractionLogged(
        channel="phone",
        direction="inbound",
        started_at=T0,
        participants=[{"role": "staff", "name": "Wang Fang"}],
        subject="咨询发票",
    )
    row = fold_interaction(None, event(logged, 1, interaction_id))
    assert row is not None and "发票" in row["search_grams"]
    assert row["participant_names"] == ["wang fang"]
    corrected = contract.InteractionCorrected(
        subject="投诉退款", changed=["subject"], reason="wrong subject"
    )
    row = fold_interaction(row, event(corrected, 2, interaction_id))
    assert row is not None
    assert row["search_text"] == "投诉退款"
    assert "退款" in row["search_grams"] and "发票" not in row["search_grams"]
    assert (row["version"], row["correction_count"]) == (2, 1)


def test_short_keywords_use_the_gram_array_and_longer_ones_the_trigram_index() -> None:
    text = search_text("ＶＩＰ客户投诉", "Email about AI, 5G 套餐")
    grams = search_grams(text)
    assert {"投诉", "诉", "客户", "p客", "ai", "5g", "套餐"} <= set(grams)
    assert "em" not in grams  # two letters inside a word are not a word
    assert keyword_clause("投诉") == ("search_grams @> ARRAY[{}]::text[]", "投诉")
    assert keyword_clause("VIP客户") == ("search_text LIKE {} ESCAPE '\\'", "%vip客户%")
    assert keyword_clause("100%")[1] == "%100\\%%"


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


def test_a_refused_channel_is_replaced_by_one_the_customer_allows() -> None:
    assert channel_to_use("phone", [], []) == "phone"
    assert channel_to_use("phone", ["wechat"], ["phone"]) == "wechat"
    assert channel_to_use("email", [], ["email", "phone"]) == "sms"
    assert channel_to_use("phone", [], ["phone", "sms", "email", "wechat"]) is None
    assert channel_to_use("visit", [], ["phone", "sms", "email", "wechat"]) == "visit"


def test_sla_targets_that_contradict_themselves_are_refused() -> None:
    with pytest.raises(ValueError, match="longer than its resolution target"):
        policy({"low": 10_000}, {"low": 60})
    assert policy({"high": 5}, {}).due("high", T0)[0] == T0 + timedelta(minutes=5)


def test_the_customer_row_follows_names_and_opt_outs() -> None:
    registered = customer_contract.CustomerRegistered.model_validate(
        {"name": "华信", "kind": "business", "channel_preferences": {"opted_out": ["sms"]}}
    )
    row = fold_customer(None, event(registered, 1, CUSTOMER))
    assert row is not None and row["opted_out_channels"] == ["sms"]
    changed = customer_contract.ChannelPreferencesChanged.model_validate(
        {"channel_preferences": {"preferred": ["wechat"], "opted_out": ["phone", "email"]}}
    )
    row = fold_customer(row, event(changed, 2, CUSTOMER))
    assert row is not None
    assert (row["preferred_channels"], row["opted_out_channels"]) == (
        ["wechat"],
        ["phone", "email"],
    )
    renamed = customer_contract.CustomerProfileChanged(name="华信贸易", changed=["name"])
    assert fold_customer(row, event(renamed, 3, CUSTOMER))["name"] == "华信贸易"  # type: ignore[index]
    assert fold_customer(None, event(changed, 2, CUSTOMER)) is None


def test_every_short_chinese_substring_of_a_text_is_among_its_grams() -> None:
    text = search_text("年度合同续签洽谈 VIP客户", "客户希望增加华南区配送服务。下周提交报价")
    grams = set(search_grams(text))
    for length in (1, 2):
        for start in range(len(text) - length + 1):
            piece = text[start : start + length]
            if any("\u4e00" <= c <= "\u9fff" for c in piece) and " " not in piece:
                assert piece in grams, piece


def test_sla_targets_come_from_the_environment_and_nonsense_stops_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_INTERACTION_SLA_RESPONSE_MINUTES", '{"high": 5}')
    assert InteractionSettings().sla_policy().due("high", T0)[0] == T0 + timedelta(minutes=5)
    monkeypatch.setenv("CRM_INTERACTION_SLA_RESPONSE_MINUTES", '{"urgent": 5}')
    with pytest.raises(ValidationError, match="CRM_INTERACTION_SLA_RESPONSE_MINUTES"):
        InteractionSettings()
