"""Reading the tabular files users import (CSV, gzip CSV, Parquet) as text columns, and strict
conversions that report the first offending row."""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from pathlib import Path

import polars as pl

from collectors.errors import InputError

MAX_EPOCH_S = 7_258_118_400  # 2200-01-01: later "epoch seconds" are milliseconds or garbage
NULL_TEXTS = ("", "NULL", "null", "N/A", "[N/A]")


def read_table(path: Path) -> tuple[pl.DataFrame, int]:
    """All columns of a CSV (optionally gzip) or Parquet file, and the number of the file row
    holding data row 0 (2 for CSV, whose row 1 is the header; 1 for Parquet).

    CSV columns come back as text (types are checked by the caller, row by row); a UTF-8
    byte-order mark is dropped from the header.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith(".parquet") or name.endswith(".parquet.gz"):
            return pl.read_parquet(path), 1
        data = path.read_bytes()
        if name.endswith(".gz") or data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        check_csv_shape(path, data)
        frame = pl.read_csv(data, infer_schema=False, encoding="utf8")
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(path, f"truncated or corrupt gzip data ({exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except Exception as exc:
        raise InputError(path, f"not a readable CSV or Parquet file ({exc})") from None
    frame = frame.rename({c: c.lstrip("\ufeff").strip() for c in frame.columns})
    return frame, 2


def check_csv_shape(path: Path, data: bytes) -> None:
    """Refuse a header naming a column twice, and a row with more or fewer fields than the
    header (a truncated file, a stray delimiter): Polars would quietly fill or rename them."""
    text = data.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        return
    names = [h.strip() for h in header]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(path, f"column {name} appears twice in the header", column=name)
        seen.add(name)
    for number, row in enumerate(reader, start=2):
        if row and len(row) != len(names):
            raise InputError(
                path,
                f"has {len(row)} fields where the header has {len(names)} (truncated or "
                "a stray delimiter?)",
                row=number,
            )


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
            return s.dt.replace_time_zone("UTC").cast(pl.Datetime("us", "UTC"))
        return s.dt.convert_time_zone("UTC").cast(pl.Datetime("us", "UTC"))
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
        return (seconds * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
    text = as_text(frame, column)
    epoch = text.cast(pl.Float64, strict=False)
    norm = (
        text.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
        .str.replace(r"^(\d{4}-\d{2}-\d{2})$", "${1}T00:00:00")
        .str.replace(r"Z$", "+00:00")
        .str.replace(r"T(\d{2}:\d{2})([+-]|$)", "T${1}:00${2}")
        .str.replace(r"([+-]\d{2})(\d{2})$", "${1}:${2}")
    )
    with_offset = norm.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC", time_unit="us"
    )
    out = with_offset
    if naive_is_utc:
        naive = norm.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
        out = out.fill_null(naive.dt.replace_time_zone("UTC"))
    from_epoch = (epoch * 1e6).cast(pl.Int64, strict=False).cast(pl.Datetime("us", "UTC"))
    out = out.fill_null(from_epoch)
    bad = out.is_null() & text.is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        hint = "ISO 8601 with an offset, or epoch seconds"
        raise InputError(
            path, f"{text[i]!r} is not a timestamp ({hint})", row=i + first_row, column=column
        )
    return out.alias(column)
