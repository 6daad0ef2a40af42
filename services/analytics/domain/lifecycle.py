"""Lifecycle stage of a customer (pure). Days are whole days between UTC dates.

First match wins:

| stage | when |
|---|---|
| prospect | no purchase yet |
| lapsed | last purchase more than 365 days ago |
| at_risk | last purchase more than 180 days ago |
| reactivated | bought again after a gap of more than 180 days between the two latest purchases |
| new | first purchase at most 90 days ago |
| growing | first purchase at most 365 days ago |
| retained | a customer for more than a year who bought in the last 180 days |

The stage depends on today's date: the fold sets it whenever a customer's events arrive,
and the periodic sweep (`CRM_ANALYTICS_SWEEP_INTERVAL_SECONDS`) re-evaluates everyone.
"""

from __future__ import annotations

from datetime import date

STAGES = ("prospect", "new", "growing", "retained", "at_risk", "lapsed", "reactivated")
AT_RISK_DAYS = 180
LAPSED_DAYS = 365
NEW_DAYS = 90
GROWING_DAYS = 365
REACTIVATION_GAP_DAYS = 180


def stage(today: date, first: date | None, last: date | None, previous: date | None) -> str:
    if first is None or last is None:
        return "prospect"
    since_last = (today - last).days
    if since_last > LAPSED_DAYS:
        return "lapsed"
    if since_last > AT_RISK_DAYS:
        return "at_risk"
    if previous is not None and (last - previous).days > REACTIVATION_GAP_DAYS:
        return "reactivated"
    since_first = (today - first).days
    if since_first <= NEW_DAYS:
        return "new"
    if since_first <= GROWING_DAYS:
        return "growing"
    return "retained"
