"""Dates that make sense: facts lie in the past, plans within reach.

Every date field is in the window of `contracts.values` (1900 to 2199). On top of that:

- **Past facts** (a purchase, a call, a payment received, an activity's actual result)
  may not lie in the future. Clocks differ a little: a date-time may be up to
  `FUTURE_TOLERANCE` (10 minutes) ahead of the CRM's clock, a calendar date up to
  `DAY_TOLERANCE` (one day: "today" east of UTC is "tomorrow" in UTC). Later is
  refused with the error type `date_in_future` (dead-letter reason `date in the
  future`).
- **Plans** (an expected close date, a quote's validity, a planned activity, the start
  of a contact plan) lie within `PLANNING_YEARS` (10) years of today in either
  direction; further is refused with the error type `date_too_far`. An expected close
  date may lie in the past (a late opportunity), but not decades ago.

When values are read as recorded (`contracts.values.reading_recorded`), these checks
do not apply: what was true when recorded stays readable.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from contracts.values import Day, Moment, is_reading_recorded

FUTURE_TOLERANCE = timedelta(minutes=10)
DAY_TOLERANCE = timedelta(days=1)
PLANNING_YEARS = 10
_PLANNING_DAYS = timedelta(days=round(PLANNING_YEARS * 365.25))


def _today() -> date:
    return datetime.now(UTC).date()


def not_in_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + FUTURE_TOLERANCE and not is_reading_recorded():
        raise PydanticCustomError(
            "date_in_future",
            "{value} is in the future (more than {minutes} minutes ahead of the CRM's clock)",
            {"value": value.isoformat(), "minutes": int(FUTURE_TOLERANCE.total_seconds() // 60)},
        )
    return value


def day_not_in_future(value: date) -> date:
    if value > _today() + DAY_TOLERANCE and not is_reading_recorded():
        raise PydanticCustomError(
            "date_in_future",
            "{value} is in the future (later than tomorrow, UTC)",
            {"value": value.isoformat()},
        )
    return value


def _too_far(value: date | datetime) -> PydanticCustomError:
    return PydanticCustomError(
        "date_too_far",
        "{value} is more than {years} years from today",
        {"value": value.isoformat(), "years": PLANNING_YEARS},
    )


def day_within_reach(value: date) -> date:
    if abs(value - _today()) > _PLANNING_DAYS and not is_reading_recorded():
        raise _too_far(value)
    return value


def moment_within_reach(value: datetime) -> datetime:
    if abs(value - datetime.now(UTC)) > _PLANNING_DAYS and not is_reading_recorded():
        raise _too_far(value)
    return value


PastDatetime = Annotated[Moment, AfterValidator(not_in_future)]
"""An ISO 8601 date-time with UTC offset, no later than now (plus `FUTURE_TOLERANCE`)."""
PastDay = Annotated[Day, AfterValidator(day_not_in_future)]
"""A date no later than tomorrow (UTC)."""
PlannedDay = Annotated[Day, AfterValidator(day_within_reach)]
"""A date within `PLANNING_YEARS` of today, either way."""
PlannedMoment = Annotated[Moment, AfterValidator(moment_within_reach)]
"""A date-time within `PLANNING_YEARS` of now, either way."""
