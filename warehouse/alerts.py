"""All SQL of the alerts: the recent minutes a check reads, the alerts with their state history,
the delivery log (an outbox: a message is stored before it is sent, so a restart resends what was
pending), and the reads the CLI, the dashboard and /metrics make on the published snapshot.

Tables are defined in tables/stored.py (created by migration 4). Writes take the writer
`Warehouse`; snapshot reads take a `Snapshot` and answer empty frames on a snapshot published
before alerts existed.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from tables.columns import UTC_TS
from tables.stored import (
    ALERT_DELIVERIES,
    ALERT_EVENTS,
    ALERTS,
    MINUTE_WASTE,
    RESULTS_WASTE_DAILY,
)
from warehouse.db import transaction

if TYPE_CHECKING:
    from warehouse.snapshot import Snapshot
    from warehouse.store import Warehouse

ALERT_SCHEMA: dict[str, pl.DataType] = ALERTS.polars_schema
EVENT_SCHEMA: dict[str, pl.DataType] = ALERT_EVENTS.polars_schema
DELIVERY_SCHEMA: dict[str, pl.DataType] = ALERT_DELIVERIES.polars_schema


# Reads for a check (writer) -------------------------------------------------------------------
def recent_minutes(wh: Warehouse, since: datetime, reach: pl.DataFrame) -> pl.DataFrame:
    """gpu_minute rows from `since`, and further back for the GPUs in `reach` (host, gpu_uuid,
    since): an open alert's run is read whole, from its start, so it stays one alert."""
    con = wh.db
    reach = (
        reach.select("host", "gpu_uuid", pl.col("since").cast(UTC_TS))
        .group_by("host", "gpu_uuid")
        .agg(pl.col("since").min())
    )
    con.register("alert_reach", reach)
    try:
        return con.sql(
            f"""
            SELECT {MINUTE_WASTE.sql_columns()} FROM gpu_minute WHERE minute >= $since
            UNION ALL
            SELECT {MINUTE_WASTE.sql_columns("m")}
            FROM gpu_minute m JOIN alert_reach r USING (host, gpu_uuid)
            WHERE m.minute >= r.since AND m.minute < $since""",
            params={"since": since},
        ).pl()
    finally:
        con.unregister("alert_reach")


def waste_reach(wh: Warehouse, since: datetime) -> pl.DataFrame:
    """host, gpu_uuid, since: the stored runs of wasted time (results_waste_daily, over all
    history) that began before `since` and go on to it; a check reads their GPUs from the run's
    start, so an alert's run is the stored run, whole, with the same money."""
    return wh.db.sql(
        f"""
        SELECT DISTINCT host, gpu_uuid, run_started_at AS since FROM {RESULTS_WASTE_DAILY.name}
        WHERE run_started_at < $since AND run_ended_at >= $since - INTERVAL 2 MINUTE""",
        params={"since": since},
    ).pl()


def cloud_instances(wh: Warehouse, hosts: list[str], since: datetime) -> pl.DataFrame:
    """For each of `hosts` the bill names since `since`: its newest instance type and owner tag."""
    return wh.db.sql(
        """
        SELECT ResourceId AS host,
               arg_max(InstanceType, ChargePeriodStart) AS instance_type,
               arg_max(workload, ChargePeriodStart) AS owner
        FROM billing_items
        WHERE ChargePeriodStart >= $since AND list_contains($hosts::VARCHAR[], ResourceId)
        GROUP BY ResourceId""",
        params={"since": since, "hosts": hosts},
    ).pl()


def known_alerts(wh: Warehouse, since: datetime) -> pl.DataFrame:
    """Open alerts, and every alert whose run ended at or after `since`."""
    return _typed(
        wh.db.sql(
            "SELECT * FROM alerts WHERE state = 'open' OR ended_at >= $since ORDER BY started_at",
            params={"since": since},
        ).pl(),
        ALERT_SCHEMA,
    )


def alerts_between(wh: Warehouse, since: datetime, until: datetime) -> pl.DataFrame:
    """Alerts whose run overlaps [since, until) (for the daily digest)."""
    return _typed(
        wh.db.sql(
            "SELECT * FROM alerts WHERE started_at < $until AND ended_at >= $since"
            " ORDER BY wasted_usd DESC",
            params={"since": since, "until": until},
        ).pl(),
        ALERT_SCHEMA,
    )


def list_alerts(wh: Warehouse, since: datetime) -> pl.DataFrame:
    return _typed(wh.db.sql(_LIST_SQL, params={"since": since}).pl(), ALERT_SCHEMA)


def events(wh: Warehouse, alert_id: str | None = None) -> pl.DataFrame:
    """The state history (of one alert, or all), oldest first."""
    return wh.db.sql(
        "SELECT * FROM alert_events WHERE $id IS NULL OR alert_id = $id ORDER BY ts, event",
        params={"id": alert_id},
    ).pl()


def deliveries(wh: Warehouse, *, status: str | None = None) -> pl.DataFrame:
    return _typed(
        wh.db.sql(
            "SELECT * FROM alert_deliveries WHERE $status IS NULL OR status = $status"
            " ORDER BY created_at, delivery_id",
            params={"status": status},
        ).pl(),
        DELIVERY_SCHEMA,
    )


def get_meta(wh: Warehouse, key: str) -> str | None:
    rows = wh.db.execute("SELECT value FROM alert_meta WHERE key = ?", [key]).fetchall()
    return rows[0][0] if rows else None


# Writes (writer) ------------------------------------------------------------------------------
def apply_check(
    wh: Warehouse,
    *,
    inserts: pl.DataFrame,
    updates: pl.DataFrame,
    new_events: pl.DataFrame,
    outbox: pl.DataFrame,
    meta: dict[str, str],
) -> None:
    """Store one check's outcome in one transaction: new alerts, updated ones, their events,
    the messages to send, and the check's bookkeeping (`alert_meta`)."""
    con = wh.db
    frames = {
        "new_alerts": _typed(inserts, ALERT_SCHEMA),
        "upd_alerts": _typed(updates, ALERT_SCHEMA),
        "new_events": _typed(new_events, EVENT_SCHEMA),
        "new_outbox": _typed(outbox, DELIVERY_SCHEMA),
    }
    try:
        with transaction(con):
            for name, frame in frames.items():
                con.register(name, frame)
            con.execute("INSERT INTO alerts BY NAME SELECT * FROM new_alerts").fetchall()
            sets = ", ".join(f"{c} = u.{c}" for c in ALERT_SCHEMA if c != "alert_id")
            con.execute(
                f"UPDATE alerts SET {sets} FROM upd_alerts u WHERE alerts.alert_id = u.alert_id"
            ).fetchall()
            con.execute("INSERT INTO alert_events BY NAME SELECT * FROM new_events").fetchall()
            con.execute("INSERT INTO alert_deliveries BY NAME SELECT * FROM new_outbox").fetchall()
            if meta:
                con.executemany(
                    "INSERT OR REPLACE INTO alert_meta VALUES (?, ?)", list(meta.items())
                )
    finally:
        for name in frames:
            con.unregister(name)


def record_deliveries(wh: Warehouse, results: pl.DataFrame) -> None:
    """Store the outcome of sent messages: delivery_id, status, attempts, last_error,
    delivered_at."""
    if results.height == 0:
        return
    con = wh.db
    frame = results.select(
        pl.col("delivery_id").cast(pl.String),
        pl.col("status").cast(pl.String),
        pl.col("attempts").cast(pl.Int32),
        pl.col("last_error").cast(pl.String),
        pl.col("delivered_at").cast(UTC_TS),
    )
    con.register("delivery_results", frame)
    try:
        con.execute(
            """
            UPDATE alert_deliveries SET status = r.status, attempts = r.attempts,
                   last_error = r.last_error, delivered_at = r.delivered_at
            FROM delivery_results r WHERE alert_deliveries.delivery_id = r.delivery_id"""
        ).fetchall()
    finally:
        con.unregister("delivery_results")


# Snapshot reads (readers: CLI, dashboard, /metrics) --------------------------------------------
_LIST_SQL = """
    SELECT * FROM alerts WHERE state = 'open' OR ended_at >= $since
    ORDER BY state = 'open' DESC, started_at DESC"""


def snapshot_alerts(snap: Snapshot, since: datetime) -> pl.DataFrame:
    """Open alerts, and those whose run ended since `since`; open ones first, newest first."""
    return _snap(snap, _LIST_SQL, ALERT_SCHEMA, {"since": since})


def snapshot_open_alert_count(snap: Snapshot) -> int:
    frame = _snap(snap, "SELECT count(*) AS n FROM alerts WHERE state = 'open'", {"n": pl.Int64()})
    return int(frame["n"][0]) if frame.height else 0


def snapshot_waste_by_workload(snap: Snapshot, since: datetime) -> pl.DataFrame:
    """Money and GPU-hours wasted per workload and kind over alerts that ended since `since`."""
    return _snap(
        snap,
        """
        SELECT workload, kind, count(*) AS alerts, sum(wasted_s) / 3600.0 AS wasted_gpu_hours,
               sum(wasted_usd) AS wasted_usd
        FROM alerts WHERE state = 'open' OR ended_at >= $since
        GROUP BY workload, kind ORDER BY wasted_usd DESC, workload, kind""",
        {
            "workload": pl.String(),
            "kind": pl.String(),
            "alerts": pl.Int64(),
            "wasted_gpu_hours": pl.Float64(),
            "wasted_usd": pl.Float64(),
        },
        {"since": since},
    )


def snapshot_waste_totals(snap: Snapshot) -> pl.DataFrame:
    """All-time wasted seconds and money per workload and kind (the /metrics counters; only
    ever grow, as alerts are kept and an open one's figures only grow)."""
    return _snap(
        snap,
        """
        SELECT workload, kind, sum(wasted_s) AS wasted_s, sum(wasted_usd) AS wasted_usd,
               count(*) FILTER (WHERE state = 'open') AS open_alerts
        FROM alerts GROUP BY workload, kind ORDER BY workload, kind""",
        {
            "workload": pl.String(),
            "kind": pl.String(),
            "wasted_s": pl.Float64(),
            "wasted_usd": pl.Float64(),
            "open_alerts": pl.Int64(),
        },
    )


def snapshot_cost_rates(snap: Snapshot) -> pl.DataFrame:
    """USD per hour each workload costs now (capital + operations or cloud price, plus energy)."""
    return _snap(
        snap,
        """
        SELECT workload, placement, sum(usd_per_hour + energy_usd_per_hour) AS usd_per_hour,
               sum(share) AS gpus
        FROM gpu_cost_rates GROUP BY workload, placement ORDER BY workload, placement""",
        {
            "workload": pl.String(),
            "placement": pl.String(),
            "usd_per_hour": pl.Float64(),
            "gpus": pl.Float64(),
        },
    )


# Helpers --------------------------------------------------------------------------------------
def _typed(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """`frame` with exactly `schema`'s columns and types (missing ones null)."""
    if frame.height == 0 and not set(schema) <= set(frame.columns):
        return pl.DataFrame(schema=schema)
    return frame.select(
        [
            (pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in schema.items()
        ]
    )


def _snap(
    snap: Snapshot,
    sql: str,
    schema: dict[str, pl.DataType],
    params: dict | None = None,
) -> pl.DataFrame:
    try:
        return _typed(snap.query(sql, params), schema)
    except duckdb.CatalogException:  # a snapshot published before alerts existed
        return pl.DataFrame(schema=schema)
