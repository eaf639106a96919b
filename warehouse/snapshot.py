"""The read-only snapshot (`dashboard.duckdb`) and the readers that open it.

The writer builds the snapshot under a temporary name and renames it over the old one, so a
reader sees either the old or the new file, never a half-written one, and never meets the
writer's lock (DESIGN.md §1, rule 3). `Snapshot` reopens when the file was replaced.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from tables import snapshot as shapes
from tables.files import atomic_write, default_tmp
from tables.records import conform
from tables.stored import (
    ALERTS,
    GPU_MINUTE,
    RESULTS_ALTERNATIVES,
    RESULTS_DAILY_LEDGER,
    RESULTS_DEMAND_CURVES,
    RESULTS_GPU_COST_RATES,
    RESULTS_RECOMMENDATIONS,
    RESULTS_USAGE_HOURLY,
    RESULTS_WASTE_DAILY,
    RESULTS_WORKLOAD_EVIDENCE,
)
from tables.timestamps import latest_allowed
from warehouse.db import connect
from warehouse.errors import SnapshotDamaged, is_damaged
from warehouse.results import INSTANCE_TYPES_SQL
from warehouse.schema import SCHEMA_VERSION
from warehouse.store import BILLING_DAILY_SQL, Warehouse

# What the snapshot holds: table -> SELECT over the warehouse (`$since` = first day kept,
# `$latest` = the latest time a sample may carry, tables/timestamps.py: a row stored with a time
# far in the future, from before the ingest refused those, never hides the fleet); the
# tables' shapes are defined in tables/snapshot.py. The minute rollups (and so the Live and
# Overview charts drawn from them) stop at `snapshot_days`; the results (hourly attribution, the
# daily ledger) and the daily bills are small and cover every day the warehouse holds data for
# (DESIGN.md §2, ledger).
SNAPSHOT_SELECTS = {
    shapes.SNAP_GPU_MINUTE.name: (
        f"SELECT * FROM {GPU_MINUTE.name} WHERE minute >= $since AND minute <= $latest"
    ),
    shapes.GPU_LATEST.name: """
        SELECT * FROM gpu_samples
        WHERE ts <= $latest
          AND ts >= (SELECT max(minute) FROM gpu_minute WHERE minute <= $latest)
                    - INTERVAL 10 MINUTE
        QUALIFY row_number() OVER (PARTITION BY host, gpu_uuid ORDER BY ts DESC) = 1""",
    shapes.SNAP_BILLING_DAILY.name: BILLING_DAILY_SQL,
    shapes.DAILY_LEDGER.name: f"SELECT * FROM {RESULTS_DAILY_LEDGER.name}",
    shapes.HOSTS.name: """
        WITH recent AS (  -- exact last sample; raw rows of the last day only, never a full scan
            SELECT host, max(ts) AS last_sample FROM gpu_samples
            WHERE ts <= $latest
              AND ts >= (SELECT max(minute) FROM gpu_minute WHERE minute <= $latest)
                        - INTERVAL 1 DAY
            GROUP BY host
        )
        SELECT m.host, count(DISTINCT coalesce(m.parent_gpu_uuid, m.gpu_uuid)) AS gpus,
               min(m.minute) AS first_sample,
               coalesce(any_value(r.last_sample), max(m.minute)) AS last_sample,
               any_value(m.source) AS source
        FROM (SELECT * FROM gpu_minute WHERE minute <= $latest) m
        LEFT JOIN recent r USING (host) GROUP BY m.host""",
    # Data health: the newest bill per source, recent health records, the ingest ledger.
    shapes.BILLING_SOURCES.name: """
        SELECT source, ProviderName AS provider, count(*) AS line_items,
               max(ChargePeriodEnd) AS last_charge, any_value(BillingCurrency) AS currency
        FROM billing_items GROUP BY source, ProviderName""",
    shapes.HEALTH_RECENT.name: """
        SELECT * FROM health WHERE ts >= now() - INTERVAL 1 DAY ORDER BY ts DESC LIMIT 500""",
    shapes.INGEST_STATS.name: """
        SELECT kind, count(*) AS files, sum(rows) AS rows, max(ingested_at) AS last_ingest
        FROM ingested_files GROUP BY kind""",
    shapes.REJECTED_RECENT.name: """
        SELECT * FROM rejected_batches ORDER BY rejected_at DESC, path LIMIT 500""",
    # Alerts (all of them: few rows, and /metrics counts their wasted seconds since the start);
    # reads in warehouse/alerts.py.
    shapes.SNAP_ALERTS.name: f"SELECT * FROM {ALERTS.name}",
    shapes.GPU_COST_RATES.name: f"SELECT * FROM {RESULTS_GPU_COST_RATES.name}",
    # The advisor's results (migration 3); reads in warehouse/advisor_reads.py.
    shapes.USAGE_HOURLY.name: f"SELECT * FROM {RESULTS_USAGE_HOURLY.name}",
    shapes.RECOMMENDATIONS.name: f"SELECT * FROM {RESULTS_RECOMMENDATIONS.name}",
    shapes.ALTERNATIVES.name: f"SELECT * FROM {RESULTS_ALTERNATIVES.name}",
    shapes.INSTANCES.name: INSTANCE_TYPES_SQL,
    # Wasted high-end GPU time, every day (migration 13); reads in warehouse/waste_reads.py.
    shapes.WASTE_DAILY.name: f"SELECT * FROM {RESULTS_WASTE_DAILY.name}",
    # The hybrid's demand curves and the workloads' evidence (migration 10): the report's
    # recomputed recommendations read the evidence; the pages chart the curves.
    shapes.DEMAND_CURVES.name: f"SELECT * FROM {RESULTS_DEMAND_CURVES.name}",
    shapes.WORKLOAD_EVIDENCE.name: f"SELECT * FROM {RESULTS_WORKLOAD_EVIDENCE.name}",
}


def publish(wh: Warehouse, path: Path, *, days: int, now: datetime | None = None) -> Path:
    """Write the snapshot atomically: build `.<name>.tmp-<pid>`, then rename over `path`. The
    minute rollups of the last `days` days before `now` go in (the results: every day)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = default_tmp(path)
    for leftover in (tmp, Path(f"{tmp}.wal")):
        leftover.unlink(missing_ok=True)
    con = wh.db
    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    lo, hi = wh.sample_span(now)
    bounds = {"since": since, "latest": latest_allowed(now)}
    meta = {
        "published_at": now.isoformat(),
        "data_from": lo.isoformat() if lo else "",
        "data_as_of": hi.isoformat() if hi else "",
        "schema_version": str(SCHEMA_VERSION),
        "alerts_checked_at": _last_alert_check(con),
    }

    def build(target: Path) -> None:  # DuckDB writes the temporary file itself
        quoted = str(target).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS snap")
        try:
            for table, select in SNAPSHOT_SELECTS.items():
                params = {k: v for k, v in bounds.items() if f"${k}" in select}
                con.execute(f"CREATE TABLE snap.{table} AS {select}", params)
            con.execute(shapes.SNAP_META.duckdb_ddl(schema="snap"))
            con.executemany("INSERT INTO snap.meta VALUES (?, ?)", list(meta.items()))
        finally:
            con.execute("DETACH snap")

    return atomic_write(path, build, tmp=tmp)


def _last_alert_check(con: duckdb.DuckDBPyConnection) -> str:
    """When the alert check last ran (ISO 8601), "" before the first: pages say "checking…"
    rather than "no alerts" until then."""
    rows = con.execute("SELECT value FROM alert_meta WHERE key = 'last_check'").fetchall()
    return rows[0][0] if rows else ""


def _open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A private read-only connection to the snapshot at `path`.

    `duckdb.connect(path)` shares one cached database instance per path within a process, so a
    reader reopening after a publish would get the replaced file's instance back while any other
    connection to it is alive. A fresh in-memory instance that attaches the file avoids that.
    """
    con = connect(Path(":memory:"))
    quoted = str(path).replace("'", "''")
    con.execute(f"ATTACH '{quoted}' AS snap (READ_ONLY)")
    con.execute("USE snap")
    return con


def ledger_filter(
    since: datetime,
    until: date | None = None,
    /,
    *,
    hosts: list[str] | None = None,
    workloads: list[str] | None = None,
    placements: list[str] | None = None,
) -> tuple[str, dict]:
    """A WHERE clause over daily_ledger with every value bound as a parameter: the days from
    `since`'s (UTC) day up to `until` (exclusive; None: to the newest)."""
    clauses = ["day >= CAST($since AS DATE)"]
    params: dict = {"since": since}
    if until is not None:
        clauses.append("day < CAST($until AS DATE)")
        params["until"] = until
    for column, values in (("host", hosts), ("workload", workloads), ("placement", placements)):
        if values:
            clauses.append(f"list_contains(${column}s, {column})")
            params[f"{column}s"] = list(values)
    return " AND ".join(clauses), params


class SnapshotMissing(FileNotFoundError):
    """No snapshot has been published yet."""


class Snapshot:
    """A read-only view of the newest published snapshot; reopens when the file is replaced.

    Thread-safe: queries are serialized on one connection (Streamlit runs sessions on threads).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._ident: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns

    def _ensure(self) -> duckdb.DuckDBPyConnection:
        ident = self._stat()
        if ident is None:
            raise SnapshotMissing(f"no snapshot at {self.path} yet: is `gpuledger run` running?")
        if self._con is None or ident != self._ident:
            if self._con is not None:
                self._con.close()
                self._con = None
            try:
                self._con = _open_read_only(self.path)
            except duckdb.Error as exc:  # cut short or overwritten: the next publish replaces it
                raise SnapshotDamaged(self.path, str(exc).splitlines()[0]) from None
            self._ident = ident
        return self._con

    def exists(self) -> bool:
        return self._stat() is not None

    def query(self, sql: str, params: dict | None = None) -> pl.DataFrame:
        with self._lock:
            try:
                return self._ensure().sql(sql, params=params or {}).pl()
            except duckdb.Error as exc:
                if not is_damaged(exc):
                    raise
                raise SnapshotDamaged(self.path, str(exc).splitlines()[0]) from None

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    # Named reads -------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return dict(self.query("SELECT key, value FROM meta").iter_rows())

    def age_seconds(self) -> float:
        st = self._stat()
        return time.time() - st[1] / 1e9 if st else float("inf")

    def gpus_now(self) -> pl.DataFrame:
        """The newest sample of every GPU (the record's columns; those a snapshot published
        before they existed lacks, such as power_limit_w, as nulls)."""
        return conform(
            self.query("SELECT * FROM gpu_latest ORDER BY host, gpu_index, gpu_uuid"),
            "gpu_samples",
        )

    def hosts(self) -> pl.DataFrame:
        return self.query("SELECT * FROM hosts ORDER BY host")

    def daily_ledger(
        self, since: datetime, until: date | None = None, /, **filters: list[str] | None
    ) -> pl.DataFrame:
        """GPU-hours, busy GPU-hours and cost per day and placement; `until` and `filters` as
        in `ledger_filter` (hosts, workloads, placements: None or an empty list = all)."""
        where, params = ledger_filter(since, until, **filters)
        return self.query(
            "SELECT day, placement, sum(gpu_hours) AS gpu_hours,"
            " sum(busy_gpu_hours) AS busy_gpu_hours, sum(cost_usd) AS cost_usd"
            f" FROM daily_ledger WHERE {where}"
            " GROUP BY day, placement ORDER BY day, placement",
            params,
        )

    def ledger_totals(
        self, since: datetime, until: date | None = None, /, **filters: list[str] | None
    ) -> dict[str, float]:
        where, params = ledger_filter(since, until, **filters)
        frame = self.query(
            "SELECT coalesce(sum(gpu_hours), 0) AS gpu_hours,"
            " coalesce(sum(busy_gpu_hours), 0) AS busy_gpu_hours,"
            " coalesce(sum(activity_gpu_hours), 0) AS activity_gpu_hours,"
            " coalesce(sum(cost_usd) FILTER (WHERE placement = 'cloud'), 0) AS cloud_usd,"
            " coalesce(sum(cost_usd) FILTER (WHERE placement = 'local'), 0) AS local_usd"
            f" FROM daily_ledger WHERE {where}",
            params,
        )
        return frame.row(0, named=True)

    def daily_by_workload(
        self,
        since: datetime,
        placement: str,
        until: date | None = None,
        /,
        **filters: list[str] | None,
    ) -> pl.DataFrame:
        """Cost and GPU-hours per day and workload in one placement (e.g. cloud spend)."""
        where, params = ledger_filter(since, until, **filters)
        return self.query(
            "SELECT day, workload, sum(cost_usd) AS cost_usd, sum(gpu_hours) AS gpu_hours"
            f" FROM daily_ledger WHERE {where} AND placement = $placement"
            " GROUP BY day, workload ORDER BY day, workload",
            {**params, "placement": placement},
        )

    def ledger_dimensions(self) -> dict[str, list[str]]:
        """The hosts, workloads and placements the ledger knows (filter choices)."""
        out = {}
        for col in ("host", "workload", "placement"):
            frame = self.query(
                f"SELECT DISTINCT {col} AS v FROM daily_ledger WHERE {col} IS NOT NULL ORDER BY v"
            )
            out[col] = frame["v"].to_list()
        return out

    def sample_count(self) -> int:
        return int(self.query("SELECT coalesce(sum(samples), 0) AS n FROM gpu_minute")["n"][0])


def data_health_reads(snap: Snapshot) -> dict[str, pl.DataFrame]:
    """What the Data health page shows: hosts, billing sources, recent health records, ingest."""
    return {
        "hosts": snap.query(
            "SELECT host, gpus, source, last_sample,"
            " epoch(now()) - epoch(last_sample) AS lag_s FROM hosts ORDER BY host"
        ),
        "billing": snap.query(
            "SELECT source, provider, line_items, last_charge, currency,"
            " epoch(now()) - epoch(last_charge) AS lag_s FROM billing_sources"
            " ORDER BY source, provider"
        ),
        "health": snap.query(
            "SELECT ts, host, gpu_uuid, kind, message, source FROM health_recent ORDER BY ts DESC"
        ),
        "ingest": snap.query("SELECT * FROM ingest_stats ORDER BY kind"),
        "rejected": rejected_batches(snap),
    }


def rejected_batches(snap: Snapshot) -> pl.DataFrame:
    """The spool files the ingest set aside, newest first: when, their kind, their path under
    the spool's _rejected/ folder and why (empty from a snapshot published before there were
    any to show)."""
    table = shapes.REJECTED_RECENT.name
    found = snap.query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = $t", {"t": table}
    )
    if not found["n"][0]:
        return pl.DataFrame(schema=shapes.REJECTED_RECENT.polars_schema)
    return snap.query(
        f"SELECT rejected_at, kind, path, reason FROM {table} ORDER BY rejected_at DESC, path"
    )
