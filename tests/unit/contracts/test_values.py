"""Nothing is accepted that cannot be stored and shown: every text field of every
contract and request body refuses NUL and the other control characters, every date field
the dates outside the CRM's window, each naming the field; what was recorded before is
still read, repaired."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError, validate_email
from pydantic_core import PydanticCustomError

from contracts import parse_event
from contracts.envelope import example_envelope, payload_example
from contracts.inbound.purchases import PurchaseCompleted
from contracts.interaction import InteractionLogged
from contracts.sales import OpportunityOpened
from contracts.values import EARLIEST, FIRST_DAY, LAST_DAY, LATEST, REPLACEMENT, reading_recorded
from tests.support.fields import Leaf, contract_models, leaves, request_bodies

BAD_TEXT = {
    "NUL": "a\x00b",
    "escape (C0)": "a\x1b[31mb",
    "next line (C1)": "a\x85b",
    "delete": "a\x7fb",
}
BAD_DAYS = {"year 1": "0001-01-01", "year 9999": "9999-12-31", "1899": "1899-12-31"}
BAD_MOMENTS = {
    "year 1": "0001-01-01T00:00:00+08:00",
    "year 9999": "9999-12-31T20:00:00-08:00",
    "2200": "2200-01-01T00:00:00+00:00",
}
BAD = {"text": BAD_TEXT, "day": BAD_DAYS, "moment": BAD_MOMENTS}

MODELS: list[type[BaseModel]] = [*contract_models(), *request_bodies().values()]
LEAVES = [leaf for model in MODELS for leaf in leaves(model)]
CASES = [
    pytest.param(leaf, value, id=f"{leaf}-{label}")
    for leaf in LEAVES
    for label, value in (
        BAD[leaf.kind].items() if leaf.kind != "json" else {"NUL inside": {"k": "a\x00b"}}.items()
    )
]


def errors_at(leaf: Leaf, value: Any) -> list[str]:
    """The error types pydantic reports at the leaf for a document holding `value` there
    (other fields missing is reported elsewhere and ignored)."""
    try:
        leaf.model.model_validate(leaf.document(value))
    except ValidationError as exc:
        return [e["type"] for e in exc.errors() if tuple(e["loc"]) == leaf.path]
    return []


def test_the_walk_finds_the_fields_of_every_kind() -> None:
    assert len(MODELS) > 60 and len(LEAVES) > 250
    kinds = {leaf.kind for leaf in LEAVES}
    assert kinds == {"text", "day", "moment", "json"}
    found = {str(leaf) for leaf in LEAVES}
    assert {
        "EventEnvelope.occurred_at",
        "OpportunityOpened.products.0.product",
        "PurchaseCompleted.customer_hint.name",
        "CallLog.started_at",
        "NewPayment.received_on",
        "RegisterCustomer.contacts.0.emails.0",
        "SegmentDefined.rule",
    } <= found


@pytest.mark.parametrize(("leaf", "value"), CASES)
def test_every_field_refuses_what_cannot_be_stored_naming_it(leaf: Leaf, value: Any) -> None:
    assert errors_at(leaf, value), f"{leaf} accepted {value!r}"


def test_the_refusals_say_what_is_wrong() -> None:
    with pytest.raises(ValidationError) as refused:
        OpportunityOpened.model_validate(
            {**payload_example(OpportunityOpened), "description": "x\x00y"}
        )
    (error,) = refused.value.errors()
    assert error["loc"] == ("description",) and error["type"] == "control_character"
    assert "U+0000 at position 1" in error["msg"]
    with pytest.raises(ValidationError) as refused:
        PurchaseCompleted.model_validate(
            {**payload_example(PurchaseCompleted), "occurred_at": "0001-01-01T00:00:00+08:00"}
        )
    (error,) = refused.value.errors()
    assert error["loc"] == ("occurred_at",) and error["type"] == "date_out_of_range"
    assert "1900-01-01 to 2199-12-31" in error["msg"]


def test_free_text_keeps_tabs_and_line_breaks_single_lines_do_not() -> None:
    example = payload_example(InteractionLogged)
    notes = "第一行\r\n\t第二行"
    assert InteractionLogged.model_validate({**example, "notes": notes}).notes == notes
    with pytest.raises(ValidationError, match="subject"):
        InteractionLogged.model_validate({**example, "subject": "第一行\n第二行"})


def test_the_bounds_of_the_window_are_accepted() -> None:
    example = payload_example(PurchaseCompleted)
    for moment in (EARLIEST, datetime(1900, 1, 1, 8, tzinfo=UTC)):
        document = {**example, "occurred_at": moment.isoformat()}
        assert PurchaseCompleted.model_validate(document).occurred_at == moment
    opened = payload_example(OpportunityOpened)
    for day in (FIRST_DAY, LAST_DAY):
        document = {**opened, "expected_close_date": day.isoformat()}
        assert OpportunityOpened.model_validate(document).expected_close_date == day


def test_what_was_recorded_before_is_read_repaired() -> None:
    """An event published before these rules is read, not dead-lettered: NUL reads as
    U+FFFD, other control characters as recorded, dates outside the window as the nearest
    bound."""
    document = example_envelope(OpportunityOpened)
    document["occurred_at"] = "0001-01-01T00:00:00+08:00"
    document["payload"] = {
        **document["payload"],
        "description": "旧\x00描述",
        "expected_close_date": "9999-12-31",
        "products": [{"product": "许可\x1b", "quantity": "1", "unit_price": "1.00"}],
    }
    event = parse_event(orjson.dumps(document))
    assert isinstance(event.payload, OpportunityOpened)
    assert event.occurred_at == EARLIEST
    assert event.payload.description == f"旧{REPLACEMENT}描述"
    assert event.payload.expected_close_date == LAST_DAY
    assert event.payload.products[0].product == "许可\x1b"
    with reading_recorded():
        late = OpportunityOpened.model_validate(
            {**payload_example(OpportunityOpened), "expected_close_date": date(1, 1, 1)}
        )
    assert late.expected_close_date == FIRST_DAY
    assert LATEST.year == 2199
    # outside reading_recorded() the same values are refused again
    with pytest.raises(ValidationError):
        OpportunityOpened.model_validate(late.model_dump() | {"description": "x\x00"})


ADDRESSES = [
    *("zhang@huaxin.example", "li@HuaXin.Example", "wang@mail.example.com", "x@y"),
    *("a@localhost", "b@host.invalid", "c@bücher.example", "d@-bad-.example", "e@a..b"),
    *("f@xn--bcher-kva.example", "g@[127.0.0.1]", "h@" + "a" * 64 + ".example"),
    *("i@exa_mple.com", "j@example.c", "k@example.123", "Zhang <l@huaxin.example>"),
]


def _email_check(address: str) -> tuple[str, str] | str:
    try:
        return validate_email(address)
    except PydanticCustomError as exc:
        return f"{exc.message_template} {exc.context}"


def test_addresses_check_alike_whether_their_domain_was_checked_before() -> None:
    # the check of each domain is remembered; each address, valid or not, is checked
    # three times with it and compared with the check made afresh
    module = sys.modules["email_validator.validate_email"]  # the package's function hides it
    remembered = getattr(module, "validate_email_domain_name")  # noqa: B009
    assert hasattr(remembered, "cache_info"), "email domains are not remembered"
    first = [_email_check(address) for address in ADDRESSES]
    again = [_email_check(address) for address in ADDRESSES + ADDRESSES]
    try:
        setattr(module, "validate_email_domain_name", remembered.__wrapped__)  # noqa: B010
        afresh = [_email_check(address) for address in ADDRESSES]
    finally:
        setattr(module, "validate_email_domain_name", remembered)  # noqa: B010
    assert first == afresh and again == afresh + afresh
    assert isinstance(afresh[0], tuple) and isinstance(afresh[3], str)  # valid; refused
    assert remembered.cache_info().hits > 0
