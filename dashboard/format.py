"""Words and numbers, the same on every page: dollars with separators, "—" for what is unknown,
actions and kinds in words, durations in h and min, plurals written out.

Money a table shows is a number column with the dollar format where it is never empty (so it
sorts as a number), else text made here ("$3,725.99", "−$24,148.40", "—"): a table never shows
"None".
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import streamlit as st

UNKNOWN = "—"

ACTION_WORDS = {
    "keep": "Keep as is",
    "move_to_local": "Move to local GPUs",
    "buy_local": "Buy local GPUs",
    "move_to_cloud": "Move to the cloud",
    "downsize": "Move to a smaller GPU",
    "hybrid": "Local base, cloud bursts",
    "schedule": "Run on a schedule",
}
KIND_WORDS = {
    "allocated_idle": "allocated, idle",
    "inefficient_busy": "busy, inefficient",
    "over_powered": "over-powered",
}


def words(value: str | None, table: dict[str, str]) -> str:
    """A code (`move_to_local`) in words: from `table`, else its underscores as spaces."""
    if value is None:
        return UNKNOWN
    return table.get(value, value.replace("_", " "))


def words_column(column: str, table: dict[str, str], name: str | None = None) -> pl.Expr:
    """A column of codes in words (see `words`)."""
    return (
        pl.col(column)
        .map_elements(lambda v: words(v, table), return_dtype=pl.String, skip_nulls=True)
        .fill_null(UNKNOWN)
        .alias(name or column)
    )


def plural(n: int | float, noun: str, nouns: str | None = None) -> str:
    """`1 alert`, `3 alerts`, `0 processes` (with `nouns` for an irregular plural)."""
    many = nouns or (noun + "es" if noun.endswith(("s", "sh", "ch", "x")) else noun + "s")
    return f"{n:,} {noun if n == 1 else many}" if isinstance(n, int) else f"{n:,g} {many}"


def usd(value: float | None, *, cents: bool = True) -> str:
    """`$3,725.99`, `−$24,148.40` (a true minus), `—` for unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return UNKNOWN
    text = f"${abs(value):,.2f}" if cents else f"${abs(value):,.0f}"
    return f"−{text}" if value < 0 and text.strip("$0.,") else text


def number(value: float | None, digits: int = 1, unit: str = "") -> str:
    """`1,234.5` (with ` unit` where given), `—` for unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return UNKNOWN
    return f"{value:,.{digits}f}" + (f" {unit}" if unit else "")


def duration(seconds: float | None) -> str:
    """`20 s`, `45 min`, `2 h 05 min`, `3 h`, `4 days 2 h`; `—` for unknown."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return UNKNOWN
    if abs(seconds) < 59.5:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes >= 2 * 24 * 60:
        days, rest = divmod(minutes // 60, 24)
        return f"{days:,} days {rest} h" if rest else f"{days:,} days"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours:,} h {rest:02d} min" if rest else f"{hours:,} h"


def _text(column: str, fn: Any, name: str | None) -> pl.Expr:
    return (
        pl.col(column)
        .map_elements(fn, return_dtype=pl.String, skip_nulls=True)
        .fill_null(UNKNOWN)
        .alias(name or column)
    )


def usd_text(column: str, name: str | None = None, *, cents: bool = True) -> pl.Expr:
    """A money column as text (for one that may be empty: `—`)."""
    return _text(column, lambda v: usd(v, cents=cents), name)


def number_text(column: str, name: str | None = None, digits: int = 1, unit: str = "") -> pl.Expr:
    """A number column as text with separators (`—` where empty)."""
    return _text(column, lambda v: number(v, digits, unit), name)


def duration_text(column: str, name: str | None = None) -> pl.Expr:
    """A column of seconds as `2 h 05 min` (`—` where empty)."""
    return _text(column, duration, name)


def dash(column: str, name: str | None = None) -> pl.Expr:
    """A text column with `—` where it is empty."""
    return pl.col(column).cast(pl.String).fill_null(UNKNOWN).alias(name or column)


def money_column(label: str | None = None, help: str | None = None) -> Any:
    """Column settings for money that is never empty: a number shown as `$3,725.99`."""
    return st.column_config.NumberColumn(label, format="dollar", help=help)
