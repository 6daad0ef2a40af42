"""The segment rule language: rules over profile fields, as JSON (pure).

A rule is one of
- `{"all": [rule, ...]}` (and), `{"any": [rule, ...]}` (or), `{"not": rule}`;
- a comparison `{"field": F, "op": OP, "value": V}`.

Operators: `eq`, `ne`, `lt`, `le`, `gt`, `ge` (numbers, dates, text), `between`
(`[low, high]`, both included), `in` (a list of allowed values), `contains` (a list
field such as `tags` holds V), `exists` (`true`: the field has a value; `false`: it
has none). A comparison with a field that has no value (a customer without purchases has
no `average_spend`) is false, whatever the operator, except `exists`.

`validate` checks a rule strictly: an unknown field, an unknown operator, an operator the
field's type does not support, or a value of the wrong type raises `RuleError` naming
it. `compile_rule` turns a valid rule into a predicate over a profile's field values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from contracts.customer import LoyaltyStage, RelationshipLevel, ValueBehaviour

NUMBER = "number"
INTEGER = "integer"
TEXT = "text"
TEXT_LIST = "text list"
DATE = "date"
BOOLEAN = "boolean"
CHOICE = "choice"
"""Text from a closed vocabulary (`CHOICES`): compared for equality only, and a value
outside the vocabulary is refused."""

FIELDS: dict[str, tuple[str, str]] = {
    "kind": (TEXT, "consumer, business, channel_partner, internal"),
    "industry": (TEXT, "the customer's industry"),
    "region": (TEXT, "the customer's region"),
    "owner": (TEXT, "the account manager"),
    "source_channel": (TEXT, "where the customer came from"),
    "importance_tier": (TEXT, "vip, important, ordinary"),
    "loyalty_stage": (CHOICE, "the customer's loyalty stage: potential, new, returning, loyal"),
    "value_behaviour": (
        CHOICE,
        "how the customer weighs value: lighthouse, follower, rational, bargain_seeking",
    ),
    "relationship_level": (
        CHOICE,
        "the depth of the relationship: basic, passive, responsive, proactive, partner",
    ),
    "tags": (TEXT_LIST, "the customer's tags"),
    "registered": (BOOLEAN, "the customer is registered in the customer service"),
    "purchase_count": (INTEGER, "purchases and won contracts"),
    "total_spend": (NUMBER, "total spend in the reporting currency"),
    "average_spend": (NUMBER, "average spend per purchase in the reporting currency"),
    "repeat_purchases": (INTEGER, "purchases after the first (none without purchases)"),
    "average_repeat_spend": (
        NUMBER,
        "average spend of the purchases after the first (none without a repeat purchase)",
    ),
    "first_purchase_date": (DATE, "date of the first purchase"),
    "last_purchase_date": (DATE, "date of the last purchase"),
    "days_since_last_purchase": (INTEGER, "days since the last purchase"),
    "days_since_first_purchase": (INTEGER, "days since the first purchase"),
    "days_between_last_purchases": (
        INTEGER,
        "days between the two latest purchases (none with fewer than two)",
    ),
    "days_since_last_contact": (INTEGER, "days since the last logged interaction"),
    "interactions_90d": (INTEGER, "interactions in the last 90 days"),
    "csat_average": (NUMBER, "average CSAT (1-5) of every answer"),
    "csat_count": (INTEGER, "number of CSAT answers"),
    "nps_latest": (INTEGER, "the latest NPS answer (0-10)"),
    "nps_category": (TEXT, "promoter, passive, detractor"),
    "complaints_open": (INTEGER, "open complaints"),
    "complaints_total": (INTEGER, "complaints ever opened"),
    "recency_score": (INTEGER, "RFM recency score 1-5"),
    "frequency_score": (INTEGER, "RFM frequency score 1-5"),
    "monetary_score": (INTEGER, "RFM monetary score 1-5"),
    "frequency_monetary_score": (
        INTEGER,
        "(frequency_score + monetary_score + 1) // 2, which the named RFM segments read",
    ),
    "rfm_segment": (TEXT, "champions, loyal, ... (named RFM segment)"),
    "lifecycle_stage": (TEXT, "prospect, new, growing, retained, at_risk, lapsed, reactivated"),
    "value_tier": (TEXT, "top, high, medium, low, none"),
    "satisfaction": (TEXT, "high, low, unknown"),
    "churn_risk": (BOOLEAN, "a churn warning is open"),
    "expected_purchases_30d": (NUMBER, "purchases the BG/NBD model expects in the next 30 days"),
    "expected_purchases_90d": (NUMBER, "purchases the BG/NBD model expects in the next 90 days"),
    "expected_purchases_365d": (
        NUMBER,
        "purchases the BG/NBD model expects in the next 365 days",
    ),
    "probability_active": (NUMBER, "the BG/NBD probability (0-1) that the customer is active"),
    "expected_spend": (
        NUMBER,
        "the Gamma-Gamma expected spend per purchase in the reporting currency",
    ),
    "lifetime_value": (
        NUMBER,
        "discounted expected revenue over the value horizon in the reporting currency",
    ),
}

CHOICES: dict[str, tuple[str, ...]] = {
    "loyalty_stage": tuple(s.value for s in LoyaltyStage),
    "value_behaviour": tuple(b.value for b in ValueBehaviour),
    "relationship_level": tuple(r.value for r in RelationshipLevel),
}
"""The vocabulary of each `CHOICE` field: the customer contract's classifications."""

MONEY_FIELDS = (
    "total_spend",
    "average_spend",
    "average_repeat_spend",
    "expected_spend",
    "lifetime_value",
)
"""The fields that are amounts in the reporting currency: a rule compares them with a
number or a decimal string, exactly (as decimals, not binary floats); the values a
conclusion records and publishes, and the service's answers, hold them as decimal
strings."""

ORDERED = (NUMBER, INTEGER, TEXT, DATE)
OPERATORS: dict[str, tuple[str, ...]] = {
    "eq": (NUMBER, INTEGER, TEXT, DATE, BOOLEAN, CHOICE),
    "ne": (NUMBER, INTEGER, TEXT, DATE, BOOLEAN, CHOICE),
    "lt": ORDERED,
    "le": ORDERED,
    "gt": ORDERED,
    "ge": ORDERED,
    "between": ORDERED,
    "in": (NUMBER, INTEGER, TEXT, CHOICE),
    "contains": (TEXT_LIST,),
    "exists": (NUMBER, INTEGER, TEXT, TEXT_LIST, DATE, BOOLEAN, CHOICE),
}
MAX_DEPTH = 10
MAX_NODES = 200

Predicate = Callable[[Mapping[str, Any]], bool]


class RuleError(ValueError):
    """A rule that is not valid; the message names the part at fault."""


def _amount(field: str, value: Any, where: str) -> Decimal:
    """An amount to compare with: a number or a decimal string, read as the decimal it
    spells (`99.9` is 99.90, not the binary float next to it)."""
    if not isinstance(value, bool) and isinstance(value, int | float | str):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            amount = None
        if amount is not None and amount.is_finite():
            return amount
    raise RuleError(f"{where}: field {field!r} is an amount (a number); got {value!r}")


def _scalar(field: str, kind: str, value: Any, where: str) -> Any:
    """The comparison value converted to the field's type, or RuleError."""
    if field in MONEY_FIELDS:
        return _amount(field, value, where)
    if kind in (NUMBER, INTEGER):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleError(f"{where}: field {field!r} is a number; got {value!r}")
        return value
    if kind in (TEXT, TEXT_LIST):
        if not isinstance(value, str):
            raise RuleError(f"{where}: field {field!r} compares with text; got {value!r}")
        return value
    if kind == CHOICE:
        if value not in CHOICES[field]:
            raise RuleError(
                f"{where}: field {field!r} is one of {', '.join(CHOICES[field])}; got {value!r}"
            )
        return value
    if kind == DATE:
        if not isinstance(value, str):
            raise RuleError(f"{where}: field {field!r} is a date (YYYY-MM-DD); got {value!r}")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise RuleError(
                f"{where}: field {field!r} is a date (YYYY-MM-DD); got {value!r}"
            ) from None
    if not isinstance(value, bool):
        raise RuleError(f"{where}: field {field!r} is true or false; got {value!r}")
    return value


def _comparison(rule: Mapping[str, Any], where: str) -> Predicate:
    unknown_keys = set(rule) - {"field", "op", "value"}
    if unknown_keys:
        raise RuleError(f"{where}: unknown key(s) {sorted(unknown_keys)} in a comparison")
    field = rule.get("field")
    op = rule.get("op")
    if not isinstance(field, str) or field not in FIELDS:
        raise RuleError(f"{where}: unknown field {field!r}; known fields: {', '.join(FIELDS)}")
    if not isinstance(op, str) or op not in OPERATORS:
        known = ", ".join(OPERATORS)
        raise RuleError(f"{where}: unknown operator {op!r}; known operators: {known}")
    kind = FIELDS[field][0]
    if kind not in OPERATORS[op]:
        raise RuleError(f"{where}: operator {op!r} does not apply to {field!r} ({kind})")
    if "value" not in rule:
        raise RuleError(f"{where}: the comparison of {field!r} needs a value")
    value = rule["value"]
    if op == "exists":
        if not isinstance(value, bool):
            raise RuleError(f"{where}: exists takes true or false; got {value!r}")
        return lambda v: (v.get(field) is not None) == value
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(f"{where}: between takes [low, high]; got {value!r}")
        low, high = (_scalar(field, kind, x, where) for x in value)
        if low > high:
            raise RuleError(f"{where}: between's low {value[0]!r} is above its high {value[1]!r}")
        return lambda v: (x := v.get(field)) is not None and low <= x <= high
    if op == "in":
        if not isinstance(value, list) or not value:
            raise RuleError(f"{where}: in takes a non-empty list; got {value!r}")
        allowed = frozenset(_scalar(field, kind, x, where) for x in value)
        return lambda v: (x := v.get(field)) is not None and x in allowed
    if op == "contains":
        wanted = _scalar(field, kind, value, where)
        return lambda v: wanted in (v.get(field) or ())
    target = _scalar(field, kind, value, where)
    compare: Callable[[Any], bool] = {
        "eq": lambda x: x == target,
        "ne": lambda x: x != target,
        "lt": lambda x: x < target,
        "le": lambda x: x <= target,
        "gt": lambda x: x > target,
        "ge": lambda x: x >= target,
    }[op]
    return lambda v: (x := v.get(field)) is not None and compare(x)


def _compile(rule: Any, where: str, depth: int, counter: list[int]) -> Predicate:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise RuleError(f"the rule has more than {MAX_NODES} parts")
    if depth > MAX_DEPTH:
        raise RuleError(f"{where}: the rule nests deeper than {MAX_DEPTH} levels")
    if not isinstance(rule, Mapping):
        raise RuleError(f"{where}: a rule is a JSON object; got {rule!r}")
    for combinator in ("all", "any"):
        if combinator in rule:
            if len(rule) != 1:
                raise RuleError(f"{where}: {combinator!r} must be the only key of its object")
            parts = rule[combinator]
            if not isinstance(parts, list) or not parts:
                raise RuleError(f"{where}.{combinator}: a non-empty list of rules is needed")
            compiled = [
                _compile(p, f"{where}.{combinator}[{i}]", depth + 1, counter)
                for i, p in enumerate(parts)
            ]
            if combinator == "all":
                return lambda v: all(c(v) for c in compiled)
            return lambda v: any(c(v) for c in compiled)
    if "not" in rule:
        if len(rule) != 1:
            raise RuleError(f"{where}: 'not' must be the only key of its object")
        inner = _compile(rule["not"], f"{where}.not", depth + 1, counter)
        return lambda v: not inner(v)
    if "field" in rule or "op" in rule:
        return _comparison(rule, where)
    raise RuleError(
        f"{where}: unknown rule {sorted(rule)}; use all, any, not or a comparison "
        "{field, op, value}"
    )


def compile_rule(rule: Any) -> Predicate:
    """A predicate over field values; RuleError when the rule is not valid."""
    return _compile(rule, "rule", 0, [0])


def validate(rule: Any) -> None:
    compile_rule(rule)


def fields_of(rule: Any) -> list[str]:
    """The profile fields a (valid) rule reads, in order of appearance."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if "field" in node and node["field"] not in found:
                found.append(node["field"])
            for key in ("all", "any"):
                for part in node.get(key, ()):
                    walk(part)
            if "not" in node:
                walk(node["not"])

    walk(rule)
    return found


# Explaining a rule ---------------------------------------------------------------------

SYMBOLS = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def describe_comparison(field: str, op: str, value: Any) -> str:
    """One comparison in words: `total_spend > 450`, `value_tier in top, high`."""
    if op == "between":
        return f"{field} between {_shown(value[0])} and {_shown(value[1])}"
    if op == "in":
        return f"{field} in {_shown(value)}"
    if op == "contains":
        return f"{field} contains {_shown(value)}"
    if op == "exists":
        return f"{field} has a value" if value else f"{field} has no value"
    return f"{field} {SYMBOLS[op]} {_shown(value)}"


def describe(rule: Any) -> str:
    """A (valid) rule in words, e.g. `recency_score ≥ 4 and (a or b) and not c`."""
    if "all" in rule or "any" in rule:
        joiner = " and " if "all" in rule else " or "
        parts = rule.get("all") or rule.get("any")
        return joiner.join(
            f"({describe(p)})" if len(p) == 1 and ("all" in p or "any" in p) else describe(p)
            for p in parts
        )
    if "not" in rule:
        inner = rule["not"]
        shown = describe(inner)
        return f"not ({shown})" if "all" in inner or "any" in inner else f"not {shown}"
    return describe_comparison(rule["field"], rule["op"], rule["value"])


@dataclass(frozen=True)
class Check:
    """One comparison of a rule against a customer's value: whether it `held`, and whether
    the rule needed it to (`wanted`: False inside a `not`)."""

    field: str
    op: str
    value: Any
    actual: Any
    held: bool
    wanted: bool = True

    @property
    def text(self) -> str:
        shown = "no value" if self.actual is None else _shown(self.actual)
        needed = describe_comparison(self.field, self.op, self.value)
        if self.wanted:
            return f"{self.field} is {shown}; the rule needs {needed}"
        return f"{self.field} is {shown}; the rule needs not {needed}"


def explain(rule: Any, values: Mapping[str, Any]) -> tuple[bool, list[Check]]:
    """Whether a (valid) rule holds for `values`, and the comparisons that decided it:
    for a rule that fails, the ones that failed it (inside a `not`, the ones that held)."""
    if "all" in rule or "any" in rule:
        results = [explain(p, values) for p in rule.get("all") or rule.get("any")]
        if "all" in rule:
            held = all(h for h, _ in results)
            chosen = [checks for h, checks in results if h == held]
        else:
            held = any(h for h, _ in results)
            chosen = (
                [next(checks for h, checks in results if h)]
                if held
                else [checks for _, checks in results]
            )
        return held, [check for checks in chosen for check in checks]
    if "not" in rule:
        held, checks = explain(rule["not"], values)
        return not held, [replace(check, wanted=not check.wanted) for check in checks]
    field = rule["field"]
    held = compile_rule(rule)(values)
    return held, [Check(field, rule["op"], rule["value"], values.get(field), held)]
