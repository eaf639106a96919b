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
    """First and last minute of the rollups the snapshot holds."""
    row = snap.query("SELECT min(minute) AS lo, max(minute) AS hi FROM gpu_minute").row(0)
    return row[0], row[1]


def workload_gpu_usage(snap: Snapshot, workload: str, since: datetime) -> pl.DataFrame:
    """One workload's hourly use of each GPU since `since` (the Workloads drill-down)."""
    return snap.query(
        "SELECT hour, placement, host, gpu_uuid, gpu_model, seconds, busy_seconds,"
        " mem_peak_mib, mem_total_mib FROM usage_hourly"
        " WHERE workload = $workload AND hour >= $since ORDER BY hour, host, gpu_uuid",
        {"workload": workload, "since": since},
    )
