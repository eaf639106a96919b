"""Scheduling: ISO weeks as UTC bounds, when a week's report is due (the Monday 08:00 local time
after it), which weeks are due and not yet written."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class ReportError(ValueError):
    """A report that cannot be written as asked (bad week, no data); the message says why."""


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """`2026-W48` -> (Monday 23 Nov 2026 00:00 UTC, Monday 30 Nov 2026 00:00 UTC)."""
    m = WEEK.match(week.strip())
    if not m:
        raise ReportError(f"--week must look like 2026-W48, got {week!r}")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise ReportError(f"{week} is not a week of {m.group(1)}") from None
    start = datetime.combine(monday, time(0), tzinfo=UTC)
    return start, start + timedelta(days=7)


def week_of(moment: datetime | date) -> str:
    year, number, _ = moment.isocalendar()
    return f"{year}-W{number:02d}"


def last_complete_week(now: datetime) -> str:
    return week_of(now.astimezone(UTC) - timedelta(days=7))


def due_at(week: str, tz: tzinfo | None = None) -> datetime:
    """When the daemon writes `week`: the Monday 08:00 local time that follows the week's end;
    east of UTC, where that Monday morning comes before the UTC week is over, at its end."""
    end = week_bounds(week)[1]
    local_end = end.astimezone(tz) if tz else end.astimezone()
    monday = local_end.date() + timedelta(days=(7 - local_end.weekday()) % 7)
    at = datetime.combine(monday, time(8), tzinfo=local_end.tzinfo)
    return max(at, end)


def due_weeks(
    now: datetime,
    written: set[str],
    data_from: datetime | None,
    data_to: datetime | None,
    *,
    catch_up: int,
    tz: tzinfo | None = None,
) -> list[str]:
    """Weeks whose report is due and not yet written, oldest first: the newest complete weeks
    (up to `catch_up`, and always the last one) that hold data."""
    if data_from is None or data_to is None:
        return []
    out = []
    week = last_complete_week(now)
    for _ in range(max(1, catch_up)):
        start, end = week_bounds(week)
        if end <= data_from:
            break
        if start < data_to and week not in written and due_at(week, tz) <= now:
            out.append(week)
        week = week_of(start - timedelta(days=1))
    return sorted(out)


def written_weeks(directory: Path) -> set[str]:
    """The weeks whose report is in `directory` (by its `<week>.html`)."""
    if not directory.is_dir():
        return set()
    return {p.stem for p in directory.glob("*.html") if WEEK.match(p.stem)}
