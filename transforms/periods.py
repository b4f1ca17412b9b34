"""Reporting periods and the one clock (SPEC 4, 9).

Reporting periods are calendar months, written ``YYYY-MM``. A submission belongs to the
period before the month in which it was received; returns for period M are due by the
end of day ``QI_DUE_DAY`` of month M+1, Europe/London.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

LONDON = ZoneInfo("Europe/London")
PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_period(text: str) -> str:
    """Check a ``YYYY-MM`` period; raise ValueError with a readable message."""
    if not PERIOD_RE.match(text or ""):
        raise ValueError(f"{text!r} is not a reporting period: use YYYY-MM, e.g. 2025-04")
    return text


def period_of(moment: datetime | pd.Timestamp) -> str:
    """The calendar month ``moment`` falls in, in London time."""
    local = pd.Timestamp(moment).tz_convert(LONDON)
    return f"{local.year:04d}-{local.month:02d}"


def shift(period: str, months: int) -> str:
    year, month = int(period[:4]), int(period[5:7])
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def reporting_period_of(received_at: datetime | pd.Timestamp) -> str:
    """The reporting period a submission received at ``received_at`` belongs to."""
    return shift(period_of(received_at), -1)


def period_start(period: str) -> date:
    return date(int(period[:4]), int(period[5:7]), 1)


def period_end(period: str) -> date:
    """The last day of the period."""
    return period_start(shift(period, 1)) - timedelta(days=1)


def due_at(period: str, due_day: int) -> datetime:
    """End of day ``due_day`` of the month after ``period``, London time, as UTC."""
    nxt = period_start(shift(period, 1))
    local = datetime.combine(nxt.replace(day=due_day), time(23, 59, 59, 999999), tzinfo=LONDON)
    return local.astimezone(UTC)


def end_of_day(day: date) -> datetime:
    """The last instant of ``day`` in London, as UTC (``--as-of`` D sees files up to then)."""
    return datetime.combine(day, time(23, 59, 59, 999999), tzinfo=LONDON).astimezone(UTC)


def periods_between(first: str, last: str) -> list[str]:
    out, current = [], first
    while current <= last:
        out.append(current)
        current = shift(current, 1)
    return out


def nightly_report_periods(now: datetime, due_day: int) -> tuple[str, str | None]:
    """(final period, provisional period or None) for a nightly run at ``now``.

    The period whose returns are arriving is the month before ``now``'s month. While its
    due date has not passed it is provisional and the month before it is the latest
    final one; once it has passed, it is final and nothing is provisional.
    """
    arriving = shift(period_of(now), -1)
    if now > due_at(arriving, due_day):
        return arriving, None
    return shift(arriving, -1), arriving
