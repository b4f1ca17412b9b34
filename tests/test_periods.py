from datetime import UTC, date, datetime

import pytest

from transforms.periods import (
    due_at,
    end_of_day,
    nightly_report_periods,
    parse_period,
    periods_between,
    reporting_period_of,
    shift,
)


def test_submission_belongs_to_the_month_before_it_was_received():
    assert reporting_period_of(datetime(2025, 5, 3, 9, tzinfo=UTC)) == "2025-04"
    assert reporting_period_of(datetime(2025, 1, 2, 9, tzinfo=UTC)) == "2024-12"


def test_london_time_decides_the_month():
    # 23:30 UTC on 31 May is 00:30 BST on 1 June: received in June, so period May.
    assert reporting_period_of(datetime(2025, 5, 31, 23, 30, tzinfo=UTC)) == "2025-05"


def test_due_at_end_of_due_day_london():
    due = due_at("2025-04", 10)
    assert due.astimezone(UTC) == datetime(2025, 5, 10, 22, 59, 59, 999999, tzinfo=UTC)


def test_nightly_periods_before_and_after_due_date():
    assert nightly_report_periods(end_of_day(date(2025, 5, 10)), 10) == ("2025-03", "2025-04")
    assert nightly_report_periods(end_of_day(date(2025, 5, 11)), 10) == ("2025-04", None)


def test_period_arithmetic():
    assert shift("2025-01", -1) == "2024-12"
    assert shift("2024-12", 13) == "2026-01"
    assert periods_between("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]


@pytest.mark.parametrize("bad", ["2025-13", "2025-4", "April", ""])
def test_bad_period_text(bad):
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_period(bad)
