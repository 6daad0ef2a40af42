"""Whose deals each caller reads under each visibility rule, and the teams setting."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from services.runtime.errors import NotFound
from services.runtime.http.roles import Principal, permissions_of
from services.sales.dependencies import Visibility
from services.sales.settings import SalesSettings, VisibilityRule
from tests.support.auth import app_keys

TEAMS = {"east": ["chen.jie", "li.na", "wang.fang"], "west": ["zhao.lei", "li.na"]}


def settings(rule: VisibilityRule) -> SalesSettings:
    return SalesSettings(**app_keys("sales"), CRM_SALES_VISIBILITY=rule, CRM_SALES_TEAMS=TEAMS)


def caller(role: str, subject: str) -> Principal:
    return Principal(subject, (role,), permissions_of([role]))


def visibility(rule: VisibilityRule, role: str, subject: str) -> Visibility:
    configured = settings(rule)
    return Visibility.of(caller(role, subject), rule, configured.teammates(subject))


EAST = frozenset(TEAMS["east"])
BOTH = frozenset({*TEAMS["east"], *TEAMS["west"]})


@pytest.mark.parametrize(
    ("rule", "role", "subject", "deals", "figures"),
    [
        ("team", "sales_rep", "wang.fang", {"wang.fang"}, EAST),
        ("team", "sales_rep", "li.na", {"li.na"}, BOTH),  # in two teams
        ("team", "sales_rep", "nobody.yet", {"nobody.yet"}, {"nobody.yet"}),  # in none
        ("own", "sales_rep", "wang.fang", {"wang.fang"}, {"wang.fang"}),
        ("team", "manager", "chen.jie", EAST, EAST),
        ("own", "manager", "chen.jie", EAST, EAST),
        ("team", "administrator", "admin", None, None),
        ("own", "administrator", "admin", None, None),
        ("all", "sales_rep", "wang.fang", None, None),
        ("all", "manager", "chen.jie", None, None),
    ],
)
def test_each_rule_gives_each_caller_their_deals_and_figures(
    rule: VisibilityRule,
    role: str,
    subject: str,
    deals: set[str] | None,
    figures: set[str] | None,
) -> None:
    seen = visibility(rule, role, subject)
    assert seen.deals == (None if deals is None else frozenset(deals))
    assert seen.figures == (None if figures is None else frozenset(figures))


def test_a_hidden_deal_is_not_found_rather_than_forbidden() -> None:
    seen = visibility("team", "sales_rep", "wang.fang")
    assert seen.shows("wang.fang") and not seen.shows("li.na")
    with pytest.raises(NotFound, match="no opportunity with id"):
        seen.check("li.na", uuid.uuid4())


def test_the_default_rule_is_team_and_a_team_needs_members() -> None:
    assert SalesSettings(**app_keys("sales")).sales_visibility == "team"
    with pytest.raises(ValidationError, match="at least one member"):
        SalesSettings(**app_keys("sales"), CRM_SALES_TEAMS={"east": []})
    with pytest.raises(ValidationError):
        SalesSettings(**app_keys("sales"), CRM_SALES_VISIBILITY="everyone")
