"""The segment rule language (`services.analytics.domain.rules`): comparisons combined,
and invalid rules refused naming the problem."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from services.analytics.domain.rules import RuleError, compile_rule, fields_of


def test_rules_combine_comparisons() -> None:
    rule = {
        "all": [
            {"field": "total_spend", "op": "between", "value": [100, 1000]},
            {"any": [
                {"field": "region", "op": "in", "value": ["华东"]},
                {"field": "tags", "op": "contains", "value": "vip"},
            ]},
            {"not": {"field": "nps_latest", "op": "le", "value": 6}},
            {"field": "last_purchase_date", "op": "ge", "value": "2026-01-01"},
        ]
    }  # fmt: skip
    check = compile_rule(rule)
    base = {"total_spend": 500.0, "region": "华北", "tags": ["vip"], "nps_latest": 9,
            "last_purchase_date": date(2026, 3, 1)}  # fmt: skip
    assert check(base)
    assert not check({**base, "total_spend": 1000.01})
    assert not check({**base, "tags": []})
    assert check({**base, "tags": [], "region": "华东"})
    assert not check({**base, "nps_latest": 3})
    assert check({**base, "nps_latest": None})  # a missing value makes the comparison false
    assert not check({**base, "last_purchase_date": date(2025, 12, 31)})
    assert fields_of(rule) == ["total_spend", "region", "tags", "nps_latest", "last_purchase_date"]
    assert compile_rule({"field": "nps_latest", "op": "exists", "value": False})({})


def test_amounts_compare_as_the_decimals_they_spell_given_as_numbers_or_strings() -> None:
    for threshold in (99.9, "99.90", "99.9"):
        rule = compile_rule({"field": "total_spend", "op": "eq", "value": threshold})
        assert rule({"total_spend": Decimal("99.90")}), threshold
    within = compile_rule({"field": "average_spend", "op": "between", "value": ["10", 20.5]})
    assert within({"average_spend": Decimal("20.50")})
    assert not within({"average_spend": Decimal("20.51")})


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"field": "shoe_size", "op": "eq", "value": 1}, "unknown field 'shoe_size'"),
        ({"field": "region", "op": "like", "value": "x"}, "unknown operator 'like'"),
        ({"field": "tags", "op": "lt", "value": "x"}, "operator 'lt' does not apply to 'tags'"),
        ({"field": "total_spend", "op": "gt", "value": "lots"}, "'total_spend' is an amount"),
        ({"field": "total_spend", "op": "gt", "value": True}, "'total_spend' is an amount"),
        ({"field": "csat_average", "op": "gt", "value": "4"}, "'csat_average' is a number"),
        ({"field": "last_purchase_date", "op": "gt", "value": "soon"}, "is a date"),
        ({"field": "region", "op": "in", "value": []}, "non-empty list"),
        ({"field": "region", "op": "eq"}, "needs a value"),
        ({"any": []}, "non-empty list"),
        ({"all": [{"field": "x", "op": "eq", "value": 1}]}, "rule.all[0]: unknown field"),
        ({"not": {}, "all": []}, "only key"),
        ([], "JSON object"),
        ({"field": "region", "op": "eq", "value": "a", "extra": 1}, "unknown key"),
    ],
)
def test_invalid_rules_are_refused_naming_the_problem(rule: Any, message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        compile_rule(rule)
