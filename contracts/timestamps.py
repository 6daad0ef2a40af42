"""Timestamps other systems send: aware, and not in the future.

A purchase, call or answer reported as happening tomorrow is a clock or data error at the
sender. A little skew between clocks is tolerated (`FUTURE_TOLERANCE`); anything later is
rejected with the error type `date_in_future`, which consumers report as the dead-letter
reason `date in the future`.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime
from pydantic_core import PydanticCustomError

FUTURE_TOLERANCE = timedelta(minutes=10)


def not_in_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise PydanticCustomError(
            "date_in_future",
            "{value} is in the future (more than {minutes} minutes ahead of the CRM's clock)",
            {"value": value.isoformat(), "minutes": int(FUTURE_TOLERANCE.total_seconds() // 60)},
        )
    return value


PastDatetime = Annotated[AwareDatetime, AfterValidator(not_in_future)]
"""An ISO 8601 date-time with UTC offset, no later than now (plus `FUTURE_TOLERANCE`)."""
