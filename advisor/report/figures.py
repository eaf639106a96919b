"""Figures: spend and GPU-hours per workload for a week (cloud and local side by side), wasted
high-end GPU time, and the Report that holds everything one week's report shows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl

from advisor.costs import pct
from config.settings import Config


@dataclass
class WeekFigures:
    by_workload: pl.DataFrame
    cloud_usd: float = 0.0
    local_usd: float = 0.0
    gpu_hours: float = 0.0
    busy_gpu_hours: float = 0.0
    idle_usd: float = 0.0
    activity_gpu_hours: float = 0.0  # GPU-hours with an activity signal

    @property
    def total_usd(self) -> float:
        return self.cloud_usd + self.local_usd

    @property
    def busy_fraction(self) -> float | None:
        """Busy over the GPU-hours with an activity signal; None (unknown) without any."""
        if self.activity_gpu_hours <= 0:
            return None
        return self.busy_gpu_hours / self.activity_gpu_hours


def busy_pct(value: float | None) -> str:
    """A busy fraction in words: "unknown" where no activity signal existed, never 0 %."""
    return "unknown" if value is None else pct(value)


def week_figures(ledger: pl.DataFrame, start: date, end: date) -> WeekFigures:
    """Spend and GPU-hours per workload, cloud and local side by side, for days [start, end).
    Busy fraction = busy GPU-hours / GPU-hours with an activity signal (null: unknown)."""
    rows = ledger.filter((pl.col("day") >= start) & (pl.col("day") < end))
    if "activity_gpu_hours" not in rows.columns:  # ledgers from before it: all had a signal
        rows = rows.with_columns(activity_gpu_hours=pl.col("gpu_hours"))
    cloud, local = pl.col("placement") == "cloud", pl.col("placement") == "local"
    return WeekFigures(
        by_workload=_by_workload(rows),
        cloud_usd=float(rows.filter(cloud)["cost_usd"].sum()),
        local_usd=float(rows.filter(local)["cost_usd"].sum()),
        gpu_hours=float(rows["gpu_hours"].sum()),
        busy_gpu_hours=float(rows["busy_gpu_hours"].fill_null(0.0).sum()),
        idle_usd=float(rows["idle_cost_usd"].fill_null(0.0).sum()),
        activity_gpu_hours=float(
            rows.select(pl.col("activity_gpu_hours").fill_null(pl.col("gpu_hours")).sum()).item()
        ),
    )


def _by_workload(rows: pl.DataFrame) -> pl.DataFrame:
    """The ledger `rows` per workload: money and GPU-hours by placement, busy, idle money."""
    cloud, local = pl.col("placement") == "cloud", pl.col("placement") == "local"
    return (
        rows.group_by("workload")
        .agg(
            cloud_usd=pl.col("cost_usd").filter(cloud).sum(),
            local_usd=pl.col("cost_usd").filter(local).sum(),
            cloud_gpu_hours=pl.col("gpu_hours").filter(cloud).sum(),
            local_gpu_hours=pl.col("gpu_hours").filter(local).sum(),
            busy_gpu_hours=pl.col("busy_gpu_hours").fill_null(0.0).sum(),
            activity_gpu_hours=pl.col("activity_gpu_hours").fill_null(pl.col("gpu_hours")).sum(),
            idle_usd=pl.col("idle_cost_usd").fill_null(0.0).sum(),
        )
        .with_columns(
            total_usd=pl.col("cloud_usd") + pl.col("local_usd"),
            gpu_hours=pl.col("cloud_gpu_hours") + pl.col("local_gpu_hours"),
        )
        .with_columns(
            busy_fraction=pl.when(pl.col("activity_gpu_hours") > 0)
            .then(pl.col("busy_gpu_hours") / pl.col("activity_gpu_hours"))
            .otherwise(None)
        )
        .sort(["total_usd", "workload"], descending=[True, False])
    )


# Wasted high-end GPU time ------------------------------------------------------------------------
WASTE_SCHEMA = {
    "workload": pl.String,
    "gpu_model": pl.String,
    "kind": pl.String,
    "runs": pl.Int64,
    "hours": pl.Float64,
    "usd": pl.Float64,
}


def waste_note(cfg: Config, start: date, end: date) -> str:
    """What the week's waste counts and over which days, in words (no internal names)."""
    t = cfg.thresholds
    last = end - timedelta(days=1)
    return (
        "Time a workload held a high-end GPU allocated but idle (activity under"
        f" {t.idle_activity_pct:g} % for at least {t.idle_min_minutes} min), busy but inefficient"
        f" (SM active under {t.inefficient_sm_active_pct:g} % for at least"
        f" {t.inefficient_min_minutes} min) or over-powered (a smaller GPU class would do, for at"
        f" least {t.overpowered_min_minutes} min), valued at the GPU's cost per hour, on the UTC"
        f" days {start:%d %b} – {last:%d %b %Y}: the same figure as the dashboard's Overview and"
        " Alerts pages show for these days"
    )


# The report --------------------------------------------------------------------------------------
def hybrid_image(workload: str) -> str:
    """The name of a hybrid workload's demand chart (safe in a file name)."""
    return "hybrid-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", workload).strip("-.") or "workload")


@dataclass
class Report:
    week: str
    start: datetime
    end: datetime
    generated_at: datetime
    data_from: datetime | None
    data_to: datetime | None
    this: WeekFigures
    prev: WeekFigures
    recs: pl.DataFrame
    prev_recs: pl.DataFrame
    waste: pl.DataFrame  # WASTE_SCHEMA: per workload, GPU model and kind
    prev_waste_usd: float
    waste_note: str  # what the waste counts and over which days, in words
    spare_high_end: pl.DataFrame
    catalog_as_of: date | None
    changes: list[str] = field(default_factory=list)
    # one warning per local GPU model the week's ledger could not price (no purchase price)
    unpriced: list[str] = field(default_factory=list)
    # the hourly demand curve and chosen local base of each workload told to go hybrid
    curves: pl.DataFrame = field(default_factory=pl.DataFrame)

    def covered_hours(self, start: datetime, end: datetime) -> float:
        """Hours of [start, end) the snapshot's data covers."""
        if self.data_from is None or self.data_to is None:
            return 0.0
        lo, hi = max(start, self.data_from), min(end, self.data_to + timedelta(minutes=1))
        return max(0.0, (hi - lo).total_seconds() / 3600.0)

    @property
    def comparable(self) -> bool:
        """Whether this week and the one before are covered alike (else compare per day)."""
        now = self.covered_hours(self.start, self.end)
        before = self.covered_hours(self.start - timedelta(days=7), self.start)
        return before > 0 and abs(now - before) <= 0.1 * max(now, before)

    def per_day(self, figure: float, *, prev: bool = False) -> float:
        start = self.start - timedelta(days=7) if prev else self.start
        hours = self.covered_hours(start, start + timedelta(days=7))
        return figure / hours * 24.0 if hours else 0.0

    @property
    def complete(self) -> bool:
        return self.data_to is not None and self.data_to >= self.end - timedelta(minutes=2)

    @property
    def acted(self) -> pl.DataFrame:
        """The recommendations to act on: a change, or a cheaper way to pay where it runs."""
        return self.recs.filter((pl.col("action") != "keep") | pl.col("alternative").is_not_null())

    @property
    def savings(self) -> float:
        """The workloads' own cash saved a month by acting (capacity freed apart)."""
        acted = self.acted
        return float(acted["monthly_savings_usd"].sum()) if acted.height else 0.0

    @property
    def freed(self) -> float:
        """What the GPUs they hand over are worth a month to others (not their own cash)."""
        if "freed_capacity_usd" not in self.recs.columns or self.recs.height == 0:
            return 0.0
        return float(self.recs["freed_capacity_usd"].fill_null(0.0).sum())

    @property
    def waste_usd(self) -> float:
        """The week's wasted high-end GPU time in money."""
        return float(self.waste["usd"].sum()) if self.waste.height else 0.0
