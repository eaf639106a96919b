"""The tests' clock: a test that reads the date (directly or through the product) runs at a pinned
instant, never at today's date, in a pinned time zone.

- `pinned_clock(at)` travels there with time-machine (the clock keeps ticking from that instant,
  so timeouts and polling loops still work) and sets TZ to the zone, so "local time" (the weekly
  report's Monday 08:00) is pinned too.
- The instant is `DEFAULT_NOW` unless `--pinned-now=2028-02-29T12:00:00Z` (or the environment
  variable GPULEDGER_TEST_NOW) says otherwise; the zone `DEFAULT_TZ` unless `--pinned-tz` (or
  GPULEDGER_TEST_TZ).
- Tests marked `date_sensitive` are pinned by tests/conftest.py; `make test-dates` runs them at
  each of `CHECK_DATES` (`--pinned-dates`): the first and last day of a month, 31 December, both
  daylight-saving changes of Europe/Berlin and a leap day.

The operating system stamps files with the real time: a pinned test that compares a file's age
with the clock stamps the file with the pinned one (`stamp_now`). Other processes read the real
clock: a test that starts one (the browser tests' streamlit server, the kill and two-process
tests) uses the real clock, with "seconds ago" relations only, never a calendar date.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import time_machine

ENV_NOW = "GPULEDGER_TEST_NOW"
ENV_TZ = "GPULEDGER_TEST_TZ"
# A Wednesday in the middle of a month, noon UTC: the demo warehouse's instant as well.
DEFAULT_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DEFAULT_TZ = "Europe/Berlin"
# The instants `make test-dates` runs the date-sensitive tests at (UTC; Berlin time in comments).
CHECK_DATES: dict[str, datetime] = {
    # The 1st of a month, half an hour in (01:30 in Berlin): the trailing window crosses months.
    "first-of-month": datetime(2026, 12, 1, 0, 30, tzinfo=UTC),
    # Day 3: Cost Explorer's trailing window and the month-to-date rebuild are the same days.
    "third-of-month": datetime(2026, 12, 3, 7, 0, tzinfo=UTC),
    # The last day of a month late in the evening: in Berlin it is already 1 March, 00:30.
    "last-of-month": datetime(2027, 2, 28, 23, 30, tzinfo=UTC),
    # 31 December (a Thursday: ISO week 2026-W53); in Berlin it is 1 January 2027, 00:30.
    "new-years-eve": datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
    # Summer time starts in Berlin at 01:00 UTC on 28 March 2027 (02:00 CET -> 03:00 CEST).
    "dst-start": datetime(2027, 3, 28, 1, 30, tzinfo=UTC),
    # Summer time ends in Berlin at 01:00 UTC on 25 October 2026 (03:00 CEST -> 02:00 CET).
    "dst-end": datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    # A leap day.
    "leap-day": datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
}


def parse_instant(value: str) -> datetime:
    """`2028-02-29T12:00:00Z` (an offset is required: a pinned instant is never ambiguous)."""
    at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError(f"{value!r}: give the offset, e.g. 2028-02-29T12:00:00Z")
    return at.astimezone(UTC)


def pinned_now() -> datetime:
    """The instant pinned tests run at."""
    value = os.environ.get(ENV_NOW, "")
    return parse_instant(value) if value else DEFAULT_NOW


def pinned_tz() -> str:
    """The time zone pinned tests run in."""
    return os.environ.get(ENV_TZ, "") or DEFAULT_TZ


def stamp_now(*paths: Path) -> None:
    """Give files the (pinned) clock's time as their modification time: the operating system
    stamps them with the real one, and a file age is the clock minus that stamp."""
    now = time.time()
    for path in paths:
        os.utime(path, (now, now))


@contextmanager
def pinned_clock(at: datetime | None = None, tz: str | None = None) -> Iterator[datetime]:
    """The process's clock at `at` (default: the pinned instant) and TZ at `tz`; yields `at`."""
    at = (at or pinned_now()).astimezone(UTC)
    with time_machine.travel(at.astimezone(ZoneInfo(tz or pinned_tz())), tick=True):
        yield at
