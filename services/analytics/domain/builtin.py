"""The built-in segments' conditions, written in the rule language (pure).

Membership of a built-in segment is decided by `rfm.named_segment`, `lifecycle.stage` and
`rfm.value_tier`; the rules here state the same conditions over profile fields, so that a
built-in segment explains itself as a defined one does (its rule, in words, and which
condition a customer fails). Within a family the rules exclude each other, so no order is
needed to read them; the unit tests check, over every score and a grid of dates, that
each rule holds exactly when the code puts the customer in its segment.
"""

from __future__ import annotations

from typing import Any

from services.analytics.domain import lifecycle
from services.analytics.domain.rules import compile_rule, describe

R = "recency_score"
FM = "frequency_monetary_score"
SINCE_LAST = "days_since_last_purchase"
SINCE_FIRST = "days_since_first_purchase"
GAP = "days_between_last_purchases"


def _is(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def _all(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"all": list(parts)}


_NOT_REACTIVATED = {"not": _is(GAP, "gt", lifecycle.REACTIVATION_GAP_DAYS)}
_BOUGHT_RECENTLY = _is(SINCE_LAST, "le", lifecycle.AT_RISK_DAYS)

RULES: dict[str, dict[str, Any]] = {
    "rfm.champions": _all(_is(R, "ge", 4), _is(FM, "ge", 4)),
    "rfm.loyal": {
        "any": [_all(_is(R, "eq", 3), _is(FM, "ge", 3)), _all(_is(R, "ge", 4), _is(FM, "eq", 3))]
    },
    "rfm.potential_loyalist": _all(_is(R, "ge", 4), _is(FM, "eq", 2)),
    "rfm.new": _all(_is(R, "eq", 5), _is(FM, "eq", 1)),
    "rfm.promising": _all(_is(R, "eq", 4), _is(FM, "eq", 1)),
    "rfm.need_attention": _all(_is(R, "eq", 3), _is(FM, "eq", 2)),
    "rfm.about_to_sleep": _all(_is(R, "eq", 3), _is(FM, "eq", 1)),
    "rfm.cannot_lose": _all(_is(R, "le", 2), _is(FM, "eq", 5)),
    "rfm.at_risk": _all(_is(R, "le", 2), _is(FM, "between", [3, 4])),
    "rfm.hibernating": _all(_is(R, "eq", 2), _is(FM, "le", 2)),
    "rfm.lost": _all(_is(R, "eq", 1), _is(FM, "le", 2)),
    "lifecycle.prospect": _is("purchase_count", "eq", 0),
    "lifecycle.lapsed": _is(SINCE_LAST, "gt", lifecycle.LAPSED_DAYS),
    "lifecycle.at_risk": _is(
        SINCE_LAST, "between", [lifecycle.AT_RISK_DAYS + 1, lifecycle.LAPSED_DAYS]
    ),
    "lifecycle.reactivated": _all(
        _BOUGHT_RECENTLY, _is(GAP, "gt", lifecycle.REACTIVATION_GAP_DAYS)
    ),
    "lifecycle.new": _is(SINCE_FIRST, "le", lifecycle.NEW_DAYS),
    "lifecycle.growing": _all(
        _is(SINCE_FIRST, "between", [lifecycle.NEW_DAYS + 1, lifecycle.GROWING_DAYS]),
        _BOUGHT_RECENTLY,
        _NOT_REACTIVATED,
    ),
    "lifecycle.retained": _all(
        _is(SINCE_FIRST, "gt", lifecycle.GROWING_DAYS), _BOUGHT_RECENTLY, _NOT_REACTIVATED
    ),
    "tier.top": _is("monetary_score", "eq", 5),
    "tier.high": _is("monetary_score", "eq", 4),
    "tier.medium": _is("monetary_score", "eq", 3),
    "tier.low": _is("monetary_score", "le", 2),
}
"""Built-in segment -> its conditions in the rule language."""

FAMILIES = {
    "rfm": "named RFM segment from the recency score R and FM = (F + M + 1) // 2; "
    "scores are quintiles among buyers (GET /rfm)",
    "lifecycle": "lifecycle stage from the dates of the first and latest purchases",
    "tier": "value tier from the monetary score M (quintile of total spend among buyers)",
}
"""What each family of built-in segments is, for its explanation."""

for _rule in RULES.values():
    compile_rule(_rule)  # a mistake here fails at import, not at the first question


def explanation(segment: str) -> str:
    """A built-in segment's conditions in words, with what its family is."""
    family = segment.split(".", 1)[0]
    return f"{describe(RULES[segment])} ({FAMILIES[family]})"
