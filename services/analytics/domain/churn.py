"""Churn warnings for customers of the top value tiers (`top`, `high`) (pure).

A customer of those tiers is at risk when any of these holds:
- `overdue_purchase`: at least two purchases, and no purchase for more than three times
  their own usual interval (days from first to last purchase divided by the number of
  intervals), and at least 30 days;
- `detractor`: their latest NPS answer is 0-6;
- `complaint_past_target`: a complaint is still open after its resolution target;
- `probably_inactive`: the BG/NBD model gives them a probability of being active below
  one half (more likely gone than still buying; `lifetime_value`).

The warning is raised when the first reason appears and cleared when none is left (or
the customer leaves the top tiers). Overdue purchases and complaint targets depend on
the clock: the periodic sweep re-evaluates them; the probability of being active is
scored again after each fit of the model and when the customer's purchases change.
"""

from __future__ import annotations

from datetime import date

from services.analytics.domain.rfm import TOP_TIERS

OVERDUE_FACTOR = 3
OVERDUE_MIN_DAYS = 30
DETRACTOR_MAX = 6
INACTIVE_BELOW = 0.5


def usual_interval_days(first: date | None, last: date | None, count: int) -> float | None:
    if first is None or last is None or count < 2:
        return None
    return (last - first).days / (count - 1)


def reasons(
    *,
    tier: str,
    today: date,
    first: date | None,
    last: date | None,
    purchase_count: int,
    nps_latest: int | None,
    complaints_past_target: int,
    probability_active: float | None = None,
) -> list[str]:
    if tier not in TOP_TIERS:
        return []
    found = []
    interval = usual_interval_days(first, last, purchase_count)
    if interval is not None and last is not None:
        since = (today - last).days
        if since > max(OVERDUE_FACTOR * interval, OVERDUE_MIN_DAYS):
            found.append("overdue_purchase")
    if nps_latest is not None and nps_latest <= DETRACTOR_MAX:
        found.append("detractor")
    if complaints_past_target > 0:
        found.append("complaint_past_target")
    if probability_active is not None and probability_active < INACTIVE_BELOW:
        found.append("probably_inactive")
    return found
