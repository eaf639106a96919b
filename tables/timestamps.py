"""When a record may say it happened: the one check of a record's time that every import path
and the ingest apply, and the bound every read of "the newest" takes.

A record's time (a sample's `ts`, a bill line's `ChargePeriodStart`: `TIME_COLUMNS`) must be
given, not before `EARLIEST`, and at most its kind's skew past the clock: a host whose clock runs
a few minutes fast is tolerated, a sample dated 2199 (or 13-digit epoch milliseconds read as
seconds) is refused, because one such row would be "the newest sample" of the whole fleet and
every reading of "now" (the Live view, `/metrics`, data as of) would show nothing else. Bills get
a day: a provider's billing day may start up to 14 hours before UTC's. Any other time column
(a bill's ChargePeriodEnd, BillingPeriodStart) must lie in [EARLIEST, LATEST).

Reads of the newest sample bound themselves by `latest_allowed()` too, so a row stored before
this check existed hides nothing either.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
SAMPLE_SKEW = timedelta(minutes=5)
BILL_SKEW = timedelta(days=1)
# The time column of each spool kind and how far past the clock it may be.
TIME_COLUMNS: dict[str, tuple[str, timedelta]] = {
    "gpu_samples": ("ts", SAMPLE_SKEW),
    "process_samples": ("ts", SAMPLE_SKEW),
    "health": ("ts", SAMPLE_SKEW),
    "billing_items": ("ChargePeriodStart", BILL_SKEW),
}


def latest_allowed(now: datetime | None = None, skew: timedelta = SAMPLE_SKEW) -> datetime:
    """The latest time a record may carry: the clock plus `skew`."""
    return (now or datetime.now(UTC)) + skew


def shown(values: pl.Series, i: int) -> str:
    """Value `i` as text, also one past Python's datetime range (year 0 or 55000)."""
    try:
        return str(values.cast(pl.String)[i])
    except pl.exceptions.PolarsError:
        return str(values.to_physical()[i])


def time_problem(
    values: pl.Series,
    *,
    skew: timedelta | None = SAMPLE_SKEW,
    now: datetime | None = None,
    required: bool = True,
) -> tuple[int, str] | None:
    """(index, what is wrong) of the first implausible time of `values` (UTC datetimes), or
    None: missing (where `required`), before EARLIEST, or after the clock plus `skew` (with
    `skew` None: at or after LATEST)."""
    values = values.cast(pl.Datetime("us", "UTC"))
    hi = latest_allowed(now, skew) if skew is not None else LATEST
    early = (values < EARLIEST).fill_null(False)
    late = (values > hi if skew is not None else values >= hi).fill_null(False)
    bad = early | late
    if required:
        bad = bad | values.is_null()
    if not bad.any():
        return None
    i = int(bad.arg_true()[0])
    if values.is_null()[i]:
        return i, "value required"
    if early[i]:
        return i, f"{shown(values, i)} is before {EARLIEST:%Y-%m-%d}: not a plausible time"
    if skew is None:
        return i, (
            f"{shown(values, i)} is after {LATEST:%Y}: not a plausible time (a placeholder"
            " date, or epoch milliseconds read as seconds?)"
        )
    return i, (
        f"{shown(values, i)} is more than {_span(skew)} after the clock ({hi:%Y-%m-%d %H:%M} UTC):"
        " a clock set wrong, or epoch milliseconds read as seconds?"
    )


def _span(skew: timedelta) -> str:
    minutes = int(skew.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440} day(s)"
    return f"{minutes} minutes"


def frame_problem(
    kind: str, frame: pl.DataFrame, now: datetime | None = None
) -> tuple[int, str, str] | None:
    """(row index, column, what is wrong) of the first implausible time of a spool `kind`'s
    frame: its record time as `time_problem` checks it, every other time column within
    [EARLIEST, LATEST)."""
    column, skew = TIME_COLUMNS[kind]
    found = time_problem(frame[column], skew=skew, now=now) if column in frame.columns else None
    if found is not None:
        return found[0], column, found[1]
    for name, dtype in frame.schema.items():
        if name != column and isinstance(dtype, pl.Datetime):
            other = time_problem(frame[name], skew=None, required=False)
            if other is not None:
                return other[0], name, other[1]
    return None
