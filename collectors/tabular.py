"""Strict conversions of the columns users import (collectors/streaming.py reads the files),
each reporting the first offending row."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from collectors.errors import InputError
from tables.timestamps import time_problem

MAX_EPOCH_S = 7_258_118_400  # 2200-01-01: later "epoch seconds" are milliseconds or garbage
NULL_TEXTS = ("", "NULL", "null", "N/A", "[N/A]")
UTC_US = pl.Datetime("us", "UTC")


def as_text(frame: pl.DataFrame, column: str) -> pl.Series:
    """A column as stripped text, with the null spellings of real exports turned into nulls."""
    s = frame[column]
    if s.dtype != pl.String:
        s = s.cast(pl.String)
    s = s.str.strip_chars()
    return s.set(s.is_in(list(NULL_TEXTS)).fill_null(False), None)


def to_float(path: Path, frame: pl.DataFrame, column: str, first_row: int) -> pl.Series:
    """A numeric column; the first non-numeric value is an InputError naming its row."""
    s = frame[column]
    if s.dtype.is_numeric():
        return _finite(path, s.cast(pl.Float64), column, first_row)
    text = as_text(frame, column)
    out = text.cast(pl.Float64, strict=False)
    bad = out.is_null() & text.is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputError(path, f"{text[i]!r} is not a number", row=i + first_row, column=column)
    return _finite(path, out, column, first_row)


def _finite(path: Path, values: pl.Series, column: str, first_row: int) -> pl.Series:
    """Infinity (or `1e400`, which parses to it) would poison every sum it enters."""
    bad = values.is_infinite().fill_null(False)
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputError(path, "is not a finite number", row=i + first_row, column=column)
    return values


def to_utc(
    path: Path, frame: pl.DataFrame, column: str, first_row: int, *, naive_is_utc: bool
) -> pl.Series:
    """A timestamp column as UTC.

    Accepts ISO 8601 with an offset or `Z` (seconds optional, `T` or a space between date and
    time), epoch seconds, and, when `naive_is_utc` (FOCUS says its times are UTC), ISO without an
    offset. Anything else is an InputError naming the first bad row.
    """
    s = frame[column]
    if isinstance(s.dtype, pl.Datetime):
        if s.dtype.time_zone is None:
            if not naive_is_utc:
                raise InputError(path, "timestamps have no time zone", column=column)
            s = s.dt.replace_time_zone("UTC")
        return _plausible(path, s.dt.convert_time_zone("UTC").cast(UTC_US), column, first_row)
    if s.dtype.is_numeric():
        seconds = s.cast(pl.Float64)
        bad = (~seconds.is_between(0, MAX_EPOCH_S) | seconds.is_nan()).fill_null(False)
        if bad.any():
            i = int(bad.arg_true()[0])
            raise InputError(
                path,
                f"{seconds[i]!r} is not a plausible epoch time in seconds",
                row=i + first_row,
                column=column,
            )
        utc = (seconds * 1e6).cast(pl.Int64).cast(UTC_US)
        return _plausible(path, utc, column, first_row)
    text = as_text(frame, column)
    # The common spelling (what the agent writes) first; the others only where it fails.
    out = text.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC", time_unit="us"
    )
    if (out.is_null() & text.is_not_null()).any():
        out = out.fill_null(_other_spellings(text, naive_is_utc=naive_is_utc))
    bad = out.is_null() & text.is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        hint = "ISO 8601 with an offset, or epoch seconds"
        raise InputError(
            path, f"{text[i]!r} is not a timestamp ({hint})", row=i + first_row, column=column
        )
    return _plausible(path, out.alias(column), column, first_row)


def _other_spellings(text: pl.Series, *, naive_is_utc: bool) -> pl.Series:
    """ISO 8601 with `Z`, without seconds, with a space or a `+HHMM` offset, a bare date,
    without an offset where `naive_is_utc`, and epoch seconds."""
    norm = (
        text.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
        .str.replace(r"^(\d{4}-\d{2}-\d{2})$", "${1}T00:00:00")
        .str.replace(r"Z$", "+00:00")
        .str.replace(r"T(\d{2}:\d{2})([+-]|$)", "T${1}:00${2}")
        .str.replace(r"([+-]\d{2})(\d{2})$", "${1}:${2}")
    )
    out = norm.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC", time_unit="us"
    )
    if naive_is_utc:
        naive = norm.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
        out = out.fill_null(naive.dt.replace_time_zone("UTC"))
    epoch = text.cast(pl.Float64, strict=False)
    from_epoch = (epoch * 1e6).cast(pl.Int64, strict=False).cast(pl.Datetime("us", "UTC"))
    return out.fill_null(from_epoch)


def _plausible(path: Path, values: pl.Series, column: str, first_row: int) -> pl.Series:
    """Times from EARLIEST to LATEST only (tables/timestamps.py): year 0001 or 9999 would
    overflow every sum of times and durations later."""
    found = time_problem(values, skew=None, required=False)
    if found is not None:
        raise InputError(path, found[1], row=found[0] + first_row, column=column)
    return values


def record_time(
    path: Path,
    frame: pl.DataFrame,
    column: str,
    first_row: int,
    *,
    naive_is_utc: bool,
    skew: timedelta,
    now: datetime | None = None,
) -> pl.Series:
    """A record's own time (a sample's `ts`, a bill's ChargePeriodStart), as every import path
    checks it: `to_utc`, then given on every row and at most `skew` after the clock `now`
    (tables/timestamps.py)."""
    values = to_utc(path, frame, column, first_row, naive_is_utc=naive_is_utc)
    found = time_problem(values, skew=skew, now=now)
    if found is not None:
        raise InputError(path, found[1], row=found[0] + first_row, column=column)
    return values
