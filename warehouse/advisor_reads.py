"""Reads of the advisor's results from the published snapshot (read-only), for the CLI, the
dashboard pages and the weekly report. A snapshot published before the advisor's tables existed
answers with empty frames of the right shape."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from warehouse.snapshot import Snapshot

ADVISOR_SNAPSHOT_TABLES = ("usage_hourly", "recommendations", "alternatives", "instances")


def has_advisor_tables(snap: Snapshot) -> bool:
    names = set(
        snap.query("SELECT table_name FROM information_schema.tables")["table_name"].to_list()
    )
    return all(t in names for t in ("daily_ledger", *ADVISOR_SNAPSHOT_TABLES))


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


# Summaries of the published results, shared by `gpuledger costs|recommend` and the dashboard.
GROUP_BY = ("workload", "host", "gpu_model", "placement")

SUMMARY_SCHEMA = {
    "gpu_hours": pl.Float64,
    "busy_gpu_hours": pl.Float64,
    "idle_gpu_hours": pl.Float64,
    "cost_usd": pl.Float64,
    "idle_cost_usd": pl.Float64,
    "billed_cost_usd": pl.Float64,
    "list_cost_usd": pl.Float64,
    "energy_kwh": pl.Float64,
    "activity_gpu_hours": pl.Float64,
    "unpriced_gpu_hours": pl.Float64,
}


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
    for name in SUMMARY_SCHEMA:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.Float64).alias(name))
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
    return out.with_columns(
        busy_gpu_hours=pl.when(known).then(pl.col("busy_gpu_hours")),
        busy_fraction=pl.when(known).then(pl.col("busy_gpu_hours") / pl.col("activity_gpu_hours")),
    ).sort(["cost_usd", *keys], descending=[True] + [False] * len(keys), nulls_last=True)


def recommendations_csv(recs: pl.DataFrame) -> str:
    """Recommendations as CSV (money to the cent, reasons joined with ` | `)."""
    return recs.select(
        "workload",
        "action",
        "placement",
        "gpu_model",
        "gpus",
        "alternative",
        pl.col("current_monthly_cost_usd").round(2),
        pl.col("alternative_monthly_cost_usd").round(2),
        pl.col("monthly_savings_usd").round(2),
        pl.col("upfront_usd").round(2),
        pl.col("break_even_months").round(1),
        "confidence",
        pl.col("busy_fraction").round(4),
        pl.col("duty_cycle").round(4),
        pl.col("peak_memory_gib").round(2),
        pl.col("gpu_hours_per_month").round(1),
        "days_observed",
        pl.col("reasons").list.join(" | "),
    ).write_csv()


UNPRICED_SCHEMA = {
    "gpu_model": pl.String,
    "hosts": pl.String,
    "unpriced_gpu_hours": pl.Float64,
    "first_day": pl.Date,
    "last_day": pl.Date,
}


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
