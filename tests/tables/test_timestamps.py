"""The one check of a record's time (tables/timestamps.py): given, not before 2000, at most the
kind's skew past the clock; other time columns within [2000, 2200)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from tables.timestamps import (
    BILL_SKEW,
    EARLIEST,
    SAMPLE_SKEW,
    frame_problem,
    latest_allowed,
    time_problem,
)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def utc(*values: datetime | int | None) -> pl.Series:
    """A UTC series; ints are epoch microseconds (to reach years Python cannot hold)."""
    if all(isinstance(v, int) or v is None for v in values):
        return pl.Series(values, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    return pl.Series(values, dtype=pl.Datetime("us", "UTC"))


def test_times_up_to_the_skew_past_the_clock_pass() -> None:
    ok = utc(EARLIEST, NOW, NOW + SAMPLE_SKEW)  # the bounds themselves are allowed
    assert time_problem(ok, now=NOW) is None
    assert latest_allowed(NOW) == NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("values", "index", "words"),
    [
        ((NOW, None), 1, "value required"),
        ((NOW, NOW + SAMPLE_SKEW + timedelta(seconds=1)), 1, "more than 5 minutes after"),
        ((datetime(2199, 1, 1, tzinfo=UTC),), 0, "2199-01-01"),
        ((datetime(1999, 12, 31, 23, 59, tzinfo=UTC),), 0, "before 2000-01-01"),
        ((datetime(1, 1, 1, tzinfo=UTC),), 0, "0001-01-01"),
    ],
)
def test_the_first_implausible_time_is_named(values: tuple, index: int, words: str) -> None:
    found = time_problem(utc(*values), now=NOW)
    assert found is not None and found[0] == index and words in found[1], found


def test_a_time_past_python_datetimes_is_shown_not_crashed_on() -> None:
    # 1.7e12 (epoch milliseconds) read as seconds: 1.7e18 µs is the year 55840.
    found = time_problem(utc(1_700_000_000_000 * 1_000_000), now=NOW)
    assert found is not None and "55840" in found[1] and "milliseconds" in found[1]


def test_bills_may_run_a_day_ahead_other_columns_only_need_a_plausible_range() -> None:
    frame = pl.DataFrame(
        {
            "ChargePeriodStart": utc(NOW + BILL_SKEW - timedelta(seconds=1)),
            # a month's recurring fee ends in the future: fine, it is not the record's time
            "ChargePeriodEnd": utc(NOW + timedelta(days=30)),
        }
    )
    assert frame_problem("billing_items", frame, NOW) is None
    late = frame.with_columns(ChargePeriodEnd=utc(datetime(2300, 1, 1, tzinfo=UTC)))
    row, column, words = frame_problem("billing_items", late, NOW) or (None, "", "")
    assert (row, column) == (0, "ChargePeriodEnd") and "after 2200" in words
    samples = pl.DataFrame({"ts": utc(NOW, NOW + timedelta(minutes=6))})
    assert frame_problem("gpu_samples", samples, NOW)[:2] == (1, "ts")  # type: ignore[index]
