"""Reads of the advisor's results from the published snapshot (read-only), for the CLI, the
dashboard pages and the weekly report. A snapshot published before the advisor's tables existed
answers with empty frames of the right shape."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from tables.escape import csv_frame
from tables.published import COSTS, COSTS_GROUP_BY, RECOMMENDATIONS_CSV
from tables.snapshot import (
    ADVISOR_SNAPSHOT_TABLES,
    DAILY_LEDGER,
    DEMAND_CURVES,
    WORKLOAD_EVIDENCE,
)
from warehouse.snapshot import Snapshot


def has_advisor_tables(snap: Snapshot) -> bool:
    names = set(
        snap.query("SELECT table_name FROM information_schema.tables")["table_name"].to_list()
    )
    return all(t in names for t in (DAILY_LEDGER.name, *ADVISOR_SNAPSHOT_TABLES))


def _where_days(column: str, since: date | None, until: date | None) -> tuple[str, dict]:
    clauses, params = [], {}
    if since is not None:
        clauses.append(f"{column} >= $since")
        params["since"] = since
    if until is not None:
        clauses.append(f"{column} < $until")
        params["until"] = until
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def ledger(snap: Snapshot, since: date | None = None, until: date | None = None) -> pl.DataFrame:
    """Daily ledger rows for days in [since, until)."""
    where, params = _where_days("day", since, until)
    return snap.query(
        f"SELECT * FROM daily_ledger{where} ORDER BY day, placement, workload", params
    )


def usage_hourly(
    snap: Snapshot, since: datetime | None = None, until: datetime | None = None
) -> pl.DataFrame:
    where, params = _where_days("hour", since, until)
    return snap.query(f"SELECT * FROM usage_hourly{where}", params)


def gpu_minutes(snap: Snapshot, since: datetime, until: datetime) -> pl.DataFrame:
    return snap.query(
        "SELECT * FROM gpu_minute WHERE minute >= $since AND minute < $until",
        {"since": since, "until": until},
    )


def billing_daily(snap: Snapshot, since: date | None = None, until: date | None = None):
    where, params = _where_days("day", since, until)
    return snap.query(f"SELECT * FROM billing_daily{where}", params)


def recommendations(snap: Snapshot) -> pl.DataFrame:
    return snap.query("SELECT * FROM recommendations")


def alternatives(snap: Snapshot) -> pl.DataFrame:
    return snap.query("SELECT * FROM alternatives ORDER BY workload, monthly_cost_usd")


def _table_names(snap: Snapshot) -> set[str]:
    return set(
        snap.query("SELECT table_name FROM information_schema.tables")["table_name"].to_list()
    )


def demand_curves(snap: Snapshot) -> pl.DataFrame:
    """The hourly demand curve and chosen base of each workload told to go hybrid (empty in a
    snapshot from before migration 10)."""
    if DEMAND_CURVES.name not in _table_names(snap):
        return DEMAND_CURVES.empty()
    return snap.query(f"SELECT * FROM {DEMAND_CURVES.name} ORDER BY workload, hour")


def workload_evidence(snap: Snapshot) -> pl.DataFrame:
    """Each workload's activity signal and process shape the recommendations were sized by
    (empty in a snapshot from before migration 10)."""
    if WORKLOAD_EVIDENCE.name not in _table_names(snap):
        return WORKLOAD_EVIDENCE.empty()
    return snap.query(f"SELECT * FROM {WORKLOAD_EVIDENCE.name}")


def instances(snap: Snapshot) -> pl.DataFrame:
    return snap.query("SELECT * FROM instances")


def data_span(snap: Snapshot) -> tuple[datetime | None, datetime | None]:
    """First and last hour of GPU data the snapshot knows: the hourly attribution covers every
    day of the warehouse, the minute rollups only the last `snapshot_days` (but the newest
    minute)."""
    row = snap.query(
        "SELECT least((SELECT min(hour) FROM usage_hourly), (SELECT min(minute) FROM gpu_minute))"
        " AS lo, greatest((SELECT max(hour) FROM usage_hourly),"
        " (SELECT max(minute) FROM gpu_minute)) AS hi"
    ).row(0)
    return row[0], row[1]


def ledger_span(snap: Snapshot) -> tuple[date | None, date | None]:
    """First and last day of the daily ledger (None, None when it is empty)."""
    row = snap.query("SELECT min(day) AS lo, max(day) AS hi FROM daily_ledger").row(0)
    return row[0], row[1]


def workload_gpu_usage(snap: Snapshot, workload: str, since: datetime) -> pl.DataFrame:
    """One workload's hourly use of each GPU since `since` (the Workloads drill-down)."""
    return snap.query(
        "SELECT hour, placement, host, gpu_uuid, gpu_model, seconds, busy_seconds,"
        " coalesce(activity_seconds, seconds) AS activity_seconds, mem_peak_mib, mem_total_mib"
        " FROM usage_hourly"
        " WHERE workload = $workload AND hour >= $since ORDER BY hour, host, gpu_uuid",
        {"workload": workload, "since": since},
    )


# Summaries of the published results, shared by `gpuledger costs|recommend` and the dashboard:
# rows of tables/published.py COSTS.
GROUP_BY = COSTS_GROUP_BY
# The ledger columns a summary adds up (null where a ledger from before them lacks them).
SUMMED = tuple(n for n in COSTS.names if n in DAILY_LEDGER and n not in COSTS.key)


def _sum_or_null(column: str) -> pl.Expr:
    """The sum, or null where no row has a value (local rows have no bill)."""
    return pl.when(pl.col(column).is_not_null().any()).then(pl.col(column).sum()).otherwise(None)


def summarize_ledger(
    ledger: pl.DataFrame, by: str = "workload", since: date | None = None, until: date | None = None
) -> pl.DataFrame:
    """Ledger rows added up per `by` (workload, host, gpu_model or placement) and placement, for
    days in [since, until). `__idle__` stays its own row. busy_fraction = busy GPU-hours / GPU-hours
    with an activity signal; busy_gpu_hours and busy_fraction are null (unknown, never 0) where
    no hour had a signal (a MIG instance without DCGM profiling)."""
    if by not in GROUP_BY:
        raise ValueError(f"--by must be one of {', '.join(GROUP_BY)}, got {by!r}")
    frame = ledger
    if since is not None:
        frame = frame.filter(pl.col("day") >= since)
    if until is not None:
        frame = frame.filter(pl.col("day") < until)
    if "activity_gpu_hours" not in frame.columns:  # ledgers from before it: all had a signal
        frame = frame.with_columns(activity_gpu_hours=pl.col("gpu_hours"))
    for name in SUMMED:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, DAILY_LEDGER[name].dtype).alias(name))
    keys = [by] if by == "placement" else [by, "placement"]
    out = frame.group_by(keys).agg(
        gpu_hours=pl.col("gpu_hours").sum(),
        busy_gpu_hours=pl.col("busy_gpu_hours").fill_null(0.0).sum(),
        activity_gpu_hours=pl.col("activity_gpu_hours").fill_null(pl.col("gpu_hours")).sum(),
        idle_gpu_hours=pl.col("idle_gpu_hours").fill_null(0.0).sum(),
        cost_usd=pl.col("cost_usd").sum(),
        idle_cost_usd=pl.col("idle_cost_usd").fill_null(0.0).sum(),
        billed_cost_usd=_sum_or_null("billed_cost_usd"),
        list_cost_usd=_sum_or_null("list_cost_usd"),
        energy_kwh=pl.col("energy_kwh").fill_null(0.0).sum(),
        unpriced_gpu_hours=pl.col("unpriced_gpu_hours").fill_null(0.0).sum(),
    )
    known = pl.col("activity_gpu_hours") > 0
    return (
        out.with_columns(
            busy_gpu_hours=pl.when(known).then(pl.col("busy_gpu_hours")),
            busy_fraction=pl.when(known).then(
                pl.col("busy_gpu_hours") / pl.col("activity_gpu_hours")
            ),
        )
        .sort(["cost_usd", *keys], descending=[True] + [False] * len(keys), nulls_last=True)
        .select(*keys, *(n for n in COSTS.names if n not in COSTS.key))
    )


# Digits the recommendations CSV rounds to (money to the cent).
_CSV_DIGITS = {
    "current_monthly_cost_usd": 2,
    "alternative_monthly_cost_usd": 2,
    "monthly_savings_usd": 2,
    "upfront_usd": 2,
    "break_even_months": 1,
    "busy_fraction": 4,
    "duty_cycle": 4,
    "peak_memory_gib": 2,
    "gpu_hours_per_month": 1,
    "freed_capacity_usd": 2,
    "schedule_savings_usd": 2,
}


def recommendations_csv(recs: pl.DataFrame) -> str:
    """Recommendations as CSV (tables/published.py RECOMMENDATIONS_CSV: money to the cent,
    reasons joined with ` | `; a text cell that begins like a spreadsheet formula gets a
    leading apostrophe, tables/escape.py)."""
    return csv_frame(
        recs.select(
            pl.col(n).list.join(" | ")
            if n == "reasons"
            else pl.col(n).round(_CSV_DIGITS[n])
            if n in _CSV_DIGITS
            else pl.col(n)
            for n in RECOMMENDATIONS_CSV.names
        )
    ).write_csv()


UNPRICED_SCHEMA = pl.Schema(
    {
        "gpu_model": pl.String,
        "hosts": pl.String,
        "unpriced_gpu_hours": pl.Float64,
        "first_day": pl.Date,
        "last_day": pl.Date,
    }
)


def unpriced_models(ledger: pl.DataFrame) -> pl.DataFrame:
    """The local GPU models the published ledger could not price (no catalog class, or a class
    without a purchase price): per model its hosts, unpriced GPU-hours and days. The one list
    that `gpuledger costs|recommend|doctor`, the weekly report and Data health all warn from."""
    if ledger.height == 0 or "unpriced_gpu_hours" not in ledger.columns:
        return pl.DataFrame(schema=UNPRICED_SCHEMA)
    return (
        ledger.filter(pl.col("unpriced_gpu_hours").fill_null(0.0) > 0)
        .group_by(pl.col("gpu_model").fill_null("(no model reported)"))
        .agg(
            hosts=pl.col("host").drop_nulls().unique().sort().str.join(", "),
            unpriced_gpu_hours=pl.col("unpriced_gpu_hours").sum(),
            first_day=pl.col("day").min(),
            last_day=pl.col("day").max(),
        )
        .sort(["unpriced_gpu_hours", "gpu_model"], descending=[True, False])
        .select(list(UNPRICED_SCHEMA))
        .cast(UNPRICED_SCHEMA)
    )
