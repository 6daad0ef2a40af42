"""RFM scoring: recency, frequency and monetary value, each scored 1-5 by quintile over
every customer who bought (pure).

- Values: recency is the date of the last purchase (a later date is better, so the score
  does not age with the clock: ranks among customers stay as they are while nobody buys);
  frequency is the number of purchases and won contracts; monetary value the total spend
  in the reporting currency.
- Boundaries: the 20th, 40th, 60th and 80th percentiles of the values over all buyers,
  taken as `percentile_disc` (an actual value of the population: the smallest value whose
  cumulative share reaches the percentile).
- Score: 1 plus the number of boundaries the value is strictly above.
- Tie rule: equal values always get the same score, and a value equal to a boundary gets
  the lower score. So a quintile can hold more or fewer than a fifth of the buyers when
  many share a value (e.g. the many customers with exactly one purchase all score F=1 or
  all score higher, never split).

Named segments follow from R and FM = (F + M + 1) // 2 (the mean of F and M, halves
rounded up), first match wins:

| segment | rule |
|---|---|
| champions | R >= 4 and FM >= 4 |
| loyal | R >= 3 and FM >= 3 |
| potential_loyalist | R >= 4 and FM = 2 |
| new | R = 5 and FM = 1 |
| promising | R = 4 and FM = 1 |
| need_attention | R = 3 and FM = 2 |
| about_to_sleep | R = 3 and FM = 1 |
| cannot_lose | R <= 2 and FM = 5 |
| at_risk | R <= 2 and FM in 3..4 |
| hibernating | R = 2 and FM <= 2 |
| lost | R = 1 and FM <= 2 |

Value tier from M: 5 `top`, 4 `high`, 3 `medium`, 1-2 `low`; `none` without purchases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

NAMED_SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "cannot_lose",
    "at_risk",
    "hibernating",
    "lost",
)
VALUE_TIERS = ("top", "high", "medium", "low", "none")
TOP_TIERS = ("top", "high")
QUINTILES = (0.2, 0.4, 0.6, 0.8)


def percentile_disc(sorted_values: Sequence[Any], fraction: float) -> Any:
    """PostgreSQL's `percentile_disc`: the first value whose cumulative share >= fraction."""
    index = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[index]


def boundaries(values: Sequence[Any]) -> list[Any] | None:
    """The four quintile boundaries of a population; None when it is empty."""
    if not values:
        return None
    ordered = sorted(values)
    return [percentile_disc(ordered, q) for q in QUINTILES]


def score(value: Any, bounds: Sequence[Any] | None) -> int | None:
    """1 + the number of boundaries strictly below the value (ties take the lower score)."""
    if value is None or bounds is None:
        return None
    return 1 + sum(1 for b in bounds if value > b)


def fm(frequency: int, monetary: int) -> int:
    return (frequency + monetary + 1) // 2


def named_segment(r: int | None, f: int | None, m: int | None) -> str | None:
    if r is None or f is None or m is None:
        return None
    c = fm(f, m)
    if r >= 4 and c >= 4:
        return "champions"
    if r >= 3 and c >= 3:
        return "loyal"
    if r >= 4 and c == 2:
        return "potential_loyalist"
    if r == 5:
        return "new"
    if r == 4:
        return "promising"
    if r == 3:
        return "need_attention" if c == 2 else "about_to_sleep"
    if c == 5:
        return "cannot_lose"
    if c >= 3:
        return "at_risk"
    return "hibernating" if r == 2 else "lost"


def value_tier(m: int | None) -> str:
    if m is None:
        return "none"
    return {5: "top", 4: "high", 3: "medium"}.get(m, "low")
