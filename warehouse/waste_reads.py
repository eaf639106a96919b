"""Reads of the stored wasted high-end GPU time (the snapshot's `waste_daily`, one row per run and
UTC day, computed over all history by the ledger job) for the Overview, Alerts and Workloads pages
and the weekly report: every waste figure they show is a sum of these rows over a period, so the
same period gives the same money everywhere.

A snapshot published before the table existed answers `None` from `has_waste` and empty frames
from the reads: the pages then say the waste is still being checked, never that there is none.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import polars as pl

from tables.snapshot import WASTE_DAILY
from warehouse.snapshot import Snapshot, ledger_filter

# What a group of waste rows adds up to.
_SUMS = """count(DISTINCT (host, gpu_uuid, workload, kind, run_started_at)) AS runs,
           coalesce(sum(wasted_s), 0) / 3600.0 AS wasted_gpu_hours,
           coalesce(sum(wasted_usd), 0) AS wasted_usd"""
_SUM_SCHEMA = pl.Schema(
    {"runs": pl.Int64(), "wasted_gpu_hours": pl.Float64(), "wasted_usd": pl.Float64()}
)
# The groupings pages ask for.
GROUPINGS = ("workload", "kind", "host", "gpu_model", "placement", "day")


def has_waste(snap: Snapshot) -> bool:
    """Whether the snapshot holds the stored waste (published by a writer that computes it)."""
    names = snap.query(
        "SELECT table_name FROM information_schema.tables WHERE table_name = $name",
        {"name": WASTE_DAILY.name},
    )
    return names.height > 0


def _where(
    since: datetime | date,
    until: date | None,
    filters: dict[str, list[str] | None],
) -> tuple[str, dict]:
    """The condition on `day` in [since's day, until) and the filters (bound parameters)."""
    start = since if isinstance(since, datetime) else datetime(since.year, since.month, since.day)
    where, params = ledger_filter(start, **filters)
    if until is not None:
        where += " AND day < $until"
        params["until"] = until
    return where, params


def waste_summary(
    snap: Snapshot,
    since: datetime | date,
    until: date | None = None,
    *,
    by: tuple[str, ...] = (),
    hosts: list[str] | None = None,
    workloads: list[str] | None = None,
    placements: list[str] | None = None,
) -> pl.DataFrame:
    """Runs, wasted GPU-hours and wasted USD over the days from `since`'s (UTC) day to `until`
    (exclusive; None: to the newest), per `by` (columns of GROUPINGS; none: one row, the total),
    most money first; `hosts`, `workloads`, `placements` as `ledger_filter` (None or empty: all)."""
    bad = [c for c in by if c not in GROUPINGS]
    if bad:
        raise ValueError(f"cannot group the waste by {bad}: use {', '.join(GROUPINGS)}")
    schema = pl.Schema({**{c: WASTE_DAILY[c].dtype for c in by}, **_SUM_SCHEMA})
    filters = {"hosts": hosts, "workloads": workloads, "placements": placements}
    where, params = _where(since, until, filters)
    keys = ", ".join(by)
    sql = f"SELECT {keys + ', ' if keys else ''}{_SUMS} FROM {WASTE_DAILY.name} WHERE {where}" + (
        f" GROUP BY {keys} ORDER BY wasted_usd DESC, {keys}" if keys else ""
    )
    try:
        frame = snap.query(sql, params)
    except duckdb.CatalogException:  # a snapshot from before the stored waste
        return pl.DataFrame(schema=schema)
    return frame.select(list(schema)).cast(schema)


def waste_total(
    snap: Snapshot,
    since: datetime | date,
    until: date | None = None,
    *,
    hosts: list[str] | None = None,
    workloads: list[str] | None = None,
    placements: list[str] | None = None,
) -> dict[str, float]:
    """runs, wasted_gpu_hours and wasted_usd over the period (see `waste_summary`)."""
    frame = waste_summary(
        snap, since, until, hosts=hosts, workloads=workloads, placements=placements
    )
    if frame.height == 0:
        return {"runs": 0, "wasted_gpu_hours": 0.0, "wasted_usd": 0.0}
    return frame.row(0, named=True)
