"""Lifecycle stages (`services.analytics.domain.lifecycle`) from the purchase dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.analytics.domain import lifecycle

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
TODAY = NOW.date()


def days(n: int) -> date:
    return TODAY - timedelta(days=n)


@pytest.mark.parametrize(
    ("first", "last", "previous", "stage"),
    [
        (None, None, None, "prospect"),
        (days(800), days(400), None, "lapsed"),
        (days(800), days(200), None, "at_risk"),
        (days(800), days(10), days(300), "reactivated"),
        (days(30), days(5), days(30), "new"),
        (days(200), days(5), days(100), "growing"),
        (days(700), days(5), days(60), "retained"),
    ],
)
def test_lifecycle_stages(
    first: date | None, last: date | None, previous: date | None, stage: str
) -> None:
    assert lifecycle.stage(TODAY, first, last, previous) == stage
