"""Periods of the purchase trend (`services.analytics.views.overview`): labels, the first
day of a period, and the next period across month and year ends."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.analytics.views.overview import next_period, period_label, period_start


def test_periods_are_labelled_and_follow_each_other_across_year_ends() -> None:
    assert period_label(date(2025, 12, 29), "week") == "2026-W01"  # ISO week of the Monday
    assert period_label(date(2026, 11, 1), "month") == "2026-11"
    assert period_label(date(2026, 11, 30), "day") == "2026-11-30"
    assert next_period(date(2026, 12, 1), "month") == date(2027, 1, 1)
    assert next_period(date(2026, 2, 1), "month") == date(2026, 3, 1)
    assert next_period(date(2026, 12, 28), "week") == date(2027, 1, 4)
    assert next_period(date(2026, 12, 31), "day") == date(2027, 1, 1)


def test_a_moment_falls_in_the_period_of_its_utc_day() -> None:
    late = datetime.fromisoformat("2026-12-01T01:00:00+08:00")  # 30 November, UTC
    assert period_start(late, "day") == date(2026, 11, 30)
    assert period_start(late, "week") == date(2026, 11, 30)  # a Monday
    assert period_start(late, "month") == date(2026, 11, 1)
    assert period_start(datetime(2026, 12, 6, tzinfo=UTC), "week") == date(2026, 11, 30)
