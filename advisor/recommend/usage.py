"""The window a recommendation measures, and the hourly usage frames it reads.

`usage` is the hourly attribution of `held_usage` (hour, placement, host, gpu_uuid, gpu_model,
workload, idle, seconds, busy_seconds, activity_seconds, energy_j, mem_peak_mib, mem_total_mib).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import cast

import polars as pl

from config.gpu_class import GpuClasses


@dataclass(frozen=True)
class Window:
    """Whole UTC days [first_day, end_day): the current, partial day is left out, and so is a
    first day the data began after its first hour."""

    first_day: date
    end_day: date

    @property
    def days(self) -> int:
        return max(0, (self.end_day - self.first_day).days)

    @property
    def hours(self) -> float:
        return 24.0 * self.days

    @property
    def start(self) -> datetime:
        return datetime(self.first_day.year, self.first_day.month, self.first_day.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime(self.end_day.year, self.end_day.month, self.end_day.day, tzinfo=UTC)

    def hour_of_week_counts(self) -> dict[int, int]:
        """How many times each hour of the week (Monday 00:00 = 0) occurs in the window."""
        counts: dict[int, int] = {}
        for i in range(self.days):
            weekday = (self.first_day + timedelta(days=i)).weekday()
            for h in range(24):
                counts[weekday * 24 + h] = counts.get(weekday * 24 + h, 0) + 1
        return counts


def observed_window(usage: pl.DataFrame, end: datetime, days: int) -> Window:
    """The last `days` whole days before `end` that the data covers."""
    if usage.height == 0:
        day = end.astimezone(UTC).date()
        return Window(day, day)
    first = cast(datetime, usage["hour"].min())
    last = cast(datetime, usage["hour"].max()) + timedelta(hours=1)
    end_at = min(end.astimezone(UTC), last)
    end_day = end_at.date()
    first_day = first.date() if first.hour == 0 else first.date() + timedelta(days=1)
    first_day = max(first_day, end_day - timedelta(days=days))
    return Window(min(first_day, end_day), end_day)


def hour_of_week() -> pl.Expr:
    """The hour of the week of `hour` (Monday 00:00 = 0)."""
    return (pl.col("hour").dt.weekday() - 1) * 24 + pl.col("hour").dt.hour()


def busy_fraction() -> pl.Expr:
    """Busy seconds over the seconds with an activity signal; null (unknown) without any."""
    known = pl.col("activity_seconds").sum()
    return pl.when(known > 0).then(pl.col("busy_seconds").sum() / known)


def with_activity(usage: pl.DataFrame) -> pl.DataFrame:
    """`usage` with `activity_seconds` (frames from before it: every second had a signal)."""
    if "activity_seconds" in usage.columns:
        return usage.with_columns(pl.col("activity_seconds").fill_null(pl.col("seconds")))
    return usage.with_columns(activity_seconds=pl.col("seconds"))


def with_class(frame: pl.DataFrame, classes: pl.DataFrame) -> pl.DataFrame:
    """`frame` with `gpu_class`: the catalog class of each row's reported model and memory
    (config/gpu_class.py), else the reported name itself (an unknown model stays its own class)."""
    return (
        GpuClasses(classes)
        .resolve_frame(frame, "gpu_model", "mem_total_mib", "gpu_class")
        .with_columns(pl.coalesce("gpu_class", "gpu_model").alias("gpu_class"))
    )
