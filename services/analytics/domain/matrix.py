"""Satisfaction level, NPS category and the value x satisfaction matrix (pure).

- NPS category of an answer: promoter 9-10, passive 7-8, detractor 0-6.
- Satisfaction of a customer: `high` when their average CSAT is at least 4.0, `low`
  below; without CSAT answers, `high` when their latest NPS is 7 or more, `low` below;
  `unknown` without either.
- Value: `high` for the top value tiers (`top`, `high`: monetary score 4-5), `low` for
  the others who bought; prospects are not in the matrix.

| quadrant | value | satisfaction | strategy |
|---|---|---|---|
| focus_and_consolidate | high | high | focus on them and consolidate the relationship |
| win_back | high | low | win them back before they leave |
| maintain | low | high | maintain at low cost |
| let_go | low | low | let go; do not invest |
"""

from __future__ import annotations

from services.analytics.domain.rfm import TOP_TIERS

CSAT_HIGH = 4.0
NPS_HIGH = 7

QUADRANTS = {
    "focus_and_consolidate": ("high", "high", "focus on them and consolidate the relationship"),
    "win_back": ("high", "low", "win them back before they leave"),
    "maintain": ("low", "high", "maintain at low cost"),
    "let_go": ("low", "low", "let go; do not invest"),
}


def nps_category(nps: int | None) -> str | None:
    if nps is None:
        return None
    if nps >= 9:
        return "promoter"
    return "passive" if nps >= 7 else "detractor"


def satisfaction(csat_average: float | None, nps_latest: int | None) -> str:
    if csat_average is not None:
        return "high" if csat_average >= CSAT_HIGH else "low"
    if nps_latest is not None:
        return "high" if nps_latest >= NPS_HIGH else "low"
    return "unknown"


def quadrant(tier: str, level: str) -> str | None:
    if tier == "none" or level == "unknown":
        return None
    value = "high" if tier in TOP_TIERS else "low"
    for name, (v, s, _) in QUADRANTS.items():
        if v == value and s == level:
            return name
    return None
