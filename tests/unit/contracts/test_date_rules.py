"""Dates that make sense: every date field of every command and inbound message follows a
rule, past facts or plans within reach, as `docs/api.md` tabulates it; the fields are
found by walking the models, so a new one must be given a rule and documented."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.registry import inbound_models
from contracts.timestamps import (
    day_not_in_future,
    day_within_reach,
    moment_within_reach,
    not_in_future,
)
from tests.support.fields import Leaf, leaves, request_bodies

API_DOC = Path(__file__).parents[3] / "docs" / "api.md"

RULES = {
    not_in_future: "past",
    day_not_in_future: "past",
    moment_within_reach: "plan",
    day_within_reach: "plan",
}


def rule_of(leaf: Leaf) -> str | None:
    found = {RULES[check] for check in leaf.checks if check in RULES}
    assert len(found) <= 1, f"{leaf} has more than one rule: {found}"
    return found.pop() if found else None


BODY_DATES = [
    (route, leaf)
    for route, model in request_bodies().items()
    for leaf in leaves(model)
    if leaf.kind in ("day", "moment")
]
INBOUND_DATES = [
    leaf
    for model in inbound_models().values()
    for leaf in leaves(model)
    if leaf.kind in ("day", "moment")
]


def documented() -> set[tuple[str, str, str, str]]:
    """(service, route, field, rule) of each row of the table in docs/api.md."""
    rows = set()
    row = re.compile(r"^\| (\w+) \| `([A-Z]+ [^`]+)` \| `([\w.]+)` \| (past|plan) \|", re.M)
    for service, route, field, rule in row.findall(API_DOC.read_text()):
        rows.add((service, route, field, rule))
    return rows


def test_every_date_field_of_every_command_has_a_rule_and_is_documented() -> None:
    assert len(BODY_DATES) >= 15
    in_code = set()
    for route, leaf in BODY_DATES:
        rule = rule_of(leaf)
        assert rule is not None, f"{route} {leaf}: a date of a command is a fact or a plan"
        service, method, path = route.split(" ", 2)
        in_code.add((service, f"{method} {path}", ".".join(map(str, leaf.path)), rule))
    assert in_code == documented()


def test_every_inbound_date_is_a_past_fact() -> None:
    assert len(INBOUND_DATES) == 4
    for leaf in INBOUND_DATES:
        assert rule_of(leaf) == "past", str(leaf)


def _as_json(leaf: Leaf, value: datetime) -> str:
    return value.date().isoformat() if leaf.kind == "day" else value.isoformat()


def errors_at(leaf: Leaf, value: Any) -> list[str]:
    try:
        leaf.model.model_validate(leaf.document(value))
    except ValidationError as exc:
        return [e["type"] for e in exc.errors() if tuple(e["loc"]) == leaf.path]
    return []


ALL_DATES = [leaf for _, leaf in BODY_DATES] + INBOUND_DATES


@pytest.mark.parametrize("leaf", [leaf for leaf in ALL_DATES if rule_of(leaf) == "past"], ids=str)
def test_a_past_fact_may_not_lie_in_the_future(leaf: Leaf) -> None:
    now = datetime.now(UTC)
    assert errors_at(leaf, _as_json(leaf, now + timedelta(days=2))) == ["date_in_future"]
    if leaf.kind == "moment":
        assert errors_at(leaf, _as_json(leaf, now + timedelta(minutes=11))) == ["date_in_future"]
        assert errors_at(leaf, _as_json(leaf, now + timedelta(minutes=5))) == []
    else:
        assert errors_at(leaf, _as_json(leaf, now + timedelta(days=1))) == []
    assert errors_at(leaf, _as_json(leaf, now - timedelta(days=3650))) == []


@pytest.mark.parametrize("leaf", [leaf for leaf in ALL_DATES if rule_of(leaf) == "plan"], ids=str)
def test_a_plan_lies_within_ten_years(leaf: Leaf) -> None:
    now = datetime.now(UTC)
    for far in (now - timedelta(days=25 * 365), now + timedelta(days=11 * 366)):
        assert errors_at(leaf, _as_json(leaf, far)) == ["date_too_far"], far
    for near in (now - timedelta(days=9 * 365), now, now + timedelta(days=9 * 365)):
        assert errors_at(leaf, _as_json(leaf, near)) == [], near


def test_the_messages_name_the_value_and_the_rule() -> None:
    (payment,) = [leaf for route, leaf in BODY_DATES if str(leaf) == "NewPayment.received_on"]
    next_year = date.today() + timedelta(days=365)
    with pytest.raises(ValidationError, match="is in the future"):
        payment.model.model_validate(payment.document(next_year.isoformat()))
    (close,) = [
        leaf for route, leaf in BODY_DATES if str(leaf) == "OpenOpportunity.expected_close_date"
    ]
    with pytest.raises(ValidationError, match="more than 10 years from today"):
        close.model.model_validate(close.document("2001-12-02"))
