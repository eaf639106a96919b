"""The advisor's SQL against the warehouse (the writer): what its jobs read, and the
transactions that store their results (tables of migration 3, the ledger bookkeeping of
migration 6; DESIGN.md §1: no SQL outside warehouse/).

The ledger covers every day the warehouse holds data for, and an ingest re-costs only the days
it touched: ingest marks them in `ledger_dirty` (warehouse/store.py), the advisor job reads the
marks, recomputes those days a bounded chunk at a time and, per chunk, replaces their rows and
clears their marks in one transaction (`store_ledger_days`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import duckdb
import polars as pl

from tables.stored import (
    ADVISOR_RESULTS,
    MINUTE_ATTRIBUTION,
    MINUTE_WASTE,
    RESULTS_DAILY_LEDGER,
    RESULTS_USAGE_HOURLY,
    RESULTS_WASTE_DAILY,
)
from warehouse.db import transaction
from warehouse.store import (
    BILL_DAY,
    BILLING_DAILY_FROM,
    BILLING_DAILY_SQL,
    Warehouse,
    mark_dirty_frame,
)

# Result tables the advisor replaces together, in this order (tables/stored.py).
ADVISOR_TABLES = ADVISOR_RESULTS
# The gpu_minute columns the attribution reads.
MINUTE_COLUMNS_SQL = MINUTE_ATTRIBUTION.sql_columns()
_USAGE = RESULTS_USAGE_HOURLY.name
_LEDGER = RESULTS_DAILY_LEDGER.name
_WASTE = RESULTS_WASTE_DAILY.name

# Per workload on one GPU in one minute, only where more than one workload shared the GPU that
# minute: the SM share NVML gave its processes (null when it gave none) and their memory. GPUs
# that never had two workloads in the window are left out first (a cheap pass), and minutes are
# bucketed on epoch microseconds (date_trunc on TIMESTAMPTZ is several times slower).
# {where}: the rows' time condition (`$since` to `$until`, or one of `_days_where`).
PROCESS_SHARES_SQL = """
    WITH shared AS (
        SELECT host, gpu_uuid FROM process_samples
        WHERE {where} AND workload IS NOT NULL
        GROUP BY host, gpu_uuid HAVING min(workload) <> max(workload)
    ),
    p AS (
        SELECT epoch_us(ts) // 60000000 AS m, host, gpu_uuid, workload,
               sum(sm_pct) AS sm_pct_sum, count(sm_pct) AS sm_samples,
               sum(used_mib) AS used_mib_sum, count(*) AS samples
        FROM process_samples SEMI JOIN shared USING (host, gpu_uuid)
        WHERE {where} AND workload IS NOT NULL
        GROUP BY ALL
    )
    SELECT to_timestamp(m * 60) AS minute, host, gpu_uuid, workload, sm_pct_sum, sm_samples,
           used_mib_sum, samples
    FROM p
    QUALIFY count(*) OVER (PARTITION BY m, host, gpu_uuid) > 1"""

# Per billed resource: the instance type its lines name most, and the commitment (reservation,
# savings plan) its newest covered line since $since names (null: none covered it).
INSTANCE_TYPES_SQL = """
    SELECT ResourceId AS host, mode(InstanceType) AS instance_type,
           arg_max(CommitmentDiscountId, ChargePeriodStart) AS commitment_id,
           arg_max(CommitmentDiscountType, ChargePeriodStart)
               FILTER (WHERE CommitmentDiscountId IS NOT NULL) AS commitment_type
    FROM billing_items
    WHERE ResourceId IS NOT NULL AND InstanceType IS NOT NULL AND ChargePeriodStart >= $since
    GROUP BY ResourceId"""


def advisor_minutes(wh: Warehouse, since: datetime, until: datetime) -> pl.DataFrame:
    """The gpu_minute rollups the attribution needs, in [since, until)."""
    return wh.db.sql(
        f"SELECT {MINUTE_COLUMNS_SQL} FROM gpu_minute WHERE minute >= $since AND minute < $until",
        params={"since": since, "until": until},
    ).pl()


def process_shares(wh: Warehouse, since: datetime, until: datetime) -> pl.DataFrame:
    """Per-workload SM and memory sums on the GPU-minutes that several workloads shared."""
    return wh.db.sql(
        PROCESS_SHARES_SQL.format(where="ts >= $since AND ts < $until"),
        params={"since": since, "until": until},
    ).pl()


def instance_types(wh: Warehouse, since: datetime) -> pl.DataFrame:
    """The instance type the bill names for each resource (host id = ResourceId)."""
    return wh.db.sql(INSTANCE_TYPES_SQL, params={"since": since}).pl()


def store_advisor_results(wh: Warehouse, frames: dict[str, pl.DataFrame]) -> None:
    """Replace the advisor's result tables in one transaction: readers of the next snapshot see
    a ledger and recommendations computed from the same data, never a mix."""
    unknown = set(frames) - set(ADVISOR_TABLES)
    if unknown:
        raise ValueError(f"not an advisor result table: {sorted(unknown)}")
    with transaction(wh.db) as con:
        for table in ADVISOR_TABLES:
            if table not in frames:
                continue
            con.register("advisor_rows", frames[table])
            try:
                con.execute(f"DELETE FROM {table}")
                if frames[table].height:
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM advisor_rows")
            finally:
                con.unregister("advisor_rows")


# The ledger's bookkeeping (migration 6) ------------------------------------------------------
EPOCH_DAY = date(1970, 1, 1)
US_PER_DAY = 86_400_000_000


def _days_where(column: str, days: Sequence[date]) -> tuple[str, dict]:
    """A condition (and its parameters) on a TIMESTAMPTZ column: its UTC day is one of `days`.
    The constant bounds let DuckDB skip row groups by their zone maps; where the days have gaps,
    the day number is compared too (integer arithmetic on epoch microseconds: many times faster
    than a cast to DATE, which goes through the time zone)."""
    first, last = min(days), max(days)
    params: dict = {
        "lo": datetime.combine(first, time(), UTC),
        "hi": datetime.combine(last, time(), UTC) + timedelta(days=1),
    }
    where = f"{column} >= $lo AND {column} < $hi"
    if len(set(days)) < (last - first).days + 1:
        where += f" AND list_contains($day_nos, epoch_us({column}) // {US_PER_DAY})"
        params["day_nos"] = [(d - EPOCH_DAY).days for d in days]
    return where, params


def table_columns(wh: Warehouse, table: str) -> list[str]:
    """The columns of a warehouse table, in order (they change with migrations)."""
    rows = wh.db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        " ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def ledger_state(wh: Warehouse) -> dict[str, str]:
    """What the stored ledger was computed with (fingerprints of its inputs)."""
    return dict(wh.db.execute("SELECT key, value FROM ledger_state").fetchall())


def ledger_hosts(wh: Warehouse) -> pl.DataFrame:
    """The placement and owner each host had when its ledger days were last computed."""
    return wh.db.sql("SELECT host, placement, owner FROM ledger_hosts").pl()


def dirty_days(wh: Warehouse) -> pl.DataFrame:
    """day, usage (the day's attribution must be recomputed, not only its cost), oldest first."""
    return wh.db.sql(
        "SELECT day, bool_or(kind = 'usage') AS usage FROM ledger_dirty GROUP BY day ORDER BY day"
    ).pl()


def known_days(wh: Warehouse) -> pl.Series:
    """Every day the warehouse holds rollups, bills or ledger results for."""
    return wh.db.sql(
        f"""
        SELECT DISTINCT CAST(minute AS DATE) AS day FROM gpu_minute
        UNION SELECT DISTINCT {BILL_DAY} FROM billing_items
        UNION SELECT DISTINCT day FROM {_LEDGER}
        UNION SELECT DISTINCT CAST(hour AS DATE) FROM {_USAGE}"""
    ).pl()["day"]


def host_days(wh: Warehouse, hosts: Sequence[str]) -> pl.Series:
    """The days with rollups or stored attribution of any of `hosts`."""
    return wh.db.sql(
        f"""
        SELECT DISTINCT CAST(minute AS DATE) AS day FROM gpu_minute
        WHERE list_contains($hosts, host)
        UNION SELECT DISTINCT CAST(hour AS DATE) FROM {_USAGE}
        WHERE list_contains($hosts, host)""",
        params={"hosts": list(hosts)},
    ).pl()["day"]


def mark_days(
    wh: Warehouse,
    marks: dict[str, pl.Series],
    *,
    state: dict[str, str] | None = None,
    hosts: pl.DataFrame | None = None,
) -> None:
    """In one transaction: mark days dirty (kind -> dates), record ledger state keys and the
    placements (host, placement, owner) that caused the marks, so a crash never loses a mark
    whose cause is already recorded as handled."""
    with transaction(wh.db) as con:
        for kind, days in marks.items():
            mark_dirty_frame(con, kind, days)
        for key, value in (state or {}).items():
            con.execute("INSERT OR REPLACE INTO ledger_state VALUES (?, ?)", [key, value])
        if hosts is not None and hosts.height:
            _replace_hosts(con, hosts)


def _replace_hosts(con: duckdb.DuckDBPyConnection, hosts: pl.DataFrame) -> None:
    con.register("placed_hosts", hosts.select("host", "placement", "owner"))
    try:
        con.execute("DELETE FROM ledger_hosts WHERE host IN (SELECT host FROM placed_hosts)")
        con.execute("INSERT INTO ledger_hosts SELECT host, placement, owner FROM placed_hosts")
    finally:
        con.unregister("placed_hosts")


def minutes_on_days(wh: Warehouse, days: Sequence[date]) -> pl.DataFrame:
    """The gpu_minute rollups the attribution needs, on `days` (UTC)."""
    where, params = _days_where("minute", days)
    return wh.db.sql(
        f"SELECT {MINUTE_COLUMNS_SQL} FROM gpu_minute WHERE {where}", params=params
    ).pl()


def process_shares_on_days(wh: Warehouse, days: Sequence[date]) -> pl.DataFrame:
    """`process_shares` on `days` (UTC)."""
    where, params = _days_where("ts", days)
    return wh.db.sql(PROCESS_SHARES_SQL.format(where=where), params=params).pl()


def billing_on_days(wh: Warehouse, days: Sequence[date]) -> pl.DataFrame:
    """billing_daily rows of `days`."""
    where, params = _days_where("ChargePeriodStart", days)
    return wh.db.sql(f"{BILLING_DAILY_FROM} WHERE {where} GROUP BY ALL", params=params).pl()


def billed_resources(wh: Warehouse) -> pl.DataFrame:
    """resource_id and workload of every billing_daily row that names a resource, over all
    time: what a host's placement and owner are decided from (advisor.ledger.host_placements)."""
    return wh.db.sql(
        f"SELECT resource_id, workload FROM ({BILLING_DAILY_SQL}) WHERE resource_id IS NOT NULL"
    ).pl()


def usage_on_days(wh: Warehouse, days: Sequence[date]) -> pl.DataFrame:
    """The stored hourly attribution (every column) of `days`."""
    where, params = _days_where("hour", days)
    return wh.db.sql(f"SELECT * FROM {_USAGE} WHERE {where}", params=params).pl()


def usage_between(wh: Warehouse, since: datetime, until: datetime) -> pl.DataFrame:
    """Stored hourly attribution in [since, until)."""
    return wh.db.sql(
        f"SELECT * FROM {_USAGE} WHERE hour >= $since AND hour < $until",
        params={"since": since, "until": until},
    ).pl()


def ledger_between(wh: Warehouse, since: date, until: date) -> pl.DataFrame:
    """Stored daily ledger rows of days in [since, until)."""
    return wh.db.sql(
        f"SELECT * FROM {_LEDGER} WHERE day >= $since AND day < $until",
        params={"since": since, "until": until},
    ).pl()


# Wasted high-end GPU time per run and day (migration 13) ------------------------------------
def waste_span(
    wh: Warehouse, lo: datetime, hi: datetime, reach: timedelta
) -> tuple[datetime, datetime]:
    """[since, until) of the minute rollups that decide every run touching [lo, hi): `reach`
    either side, and further to the whole of any stored run that comes within `reach`."""
    row = wh.db.execute(
        f"SELECT min(run_started_at), max(run_ended_at) FROM {_WASTE}"
        " WHERE run_ended_at >= ? AND run_started_at < ?",
        [lo - reach, hi + reach],
    ).fetchall()[0]
    since, until = lo - reach, hi + reach
    if row[0] is not None:
        since, until = min(since, row[0]), max(until, row[1] + reach)
    return since, until


def waste_minutes(wh: Warehouse, since: datetime, until: datetime) -> pl.DataFrame:
    """The gpu_minute rollups the wasted-time detection reads, in [since, until)."""
    return wh.db.sql(
        f"SELECT {MINUTE_WASTE.sql_columns()} FROM gpu_minute"
        " WHERE minute >= $since AND minute < $until",
        params={"since": since, "until": until},
    ).pl()


def _replace_waste(
    con: duckdb.DuckDBPyConnection,
    days: Sequence[date],
    rows: pl.DataFrame,
    spans: Sequence[tuple[datetime, datetime]],
) -> None:
    """Delete the stored waste of `days` and every stored run that overlaps one of `spans` (the
    runs recomputed whole), then insert `rows` (in the caller's transaction)."""
    con.execute(f"DELETE FROM {_WASTE} WHERE list_contains($days, day)", {"days": list(days)})
    for lo, hi in spans:
        con.execute(
            f"DELETE FROM {_WASTE} WHERE run_started_at < $hi AND run_ended_at > $lo",
            {"lo": lo, "hi": hi},
        )
    if rows.height:
        con.register("waste_rows", rows)
        try:
            con.execute(f"INSERT INTO {_WASTE} BY NAME SELECT * FROM waste_rows").fetchall()
        finally:
            con.unregister("waste_rows")


def store_ledger_days(
    wh: Warehouse,
    days: Sequence[date],
    usage: pl.DataFrame,
    ledger: pl.DataFrame,
    placements: pl.DataFrame,
    waste: tuple[pl.DataFrame, Sequence[tuple[datetime, datetime]]] | None = None,
) -> None:
    """Replace the hourly attribution and the ledger rows of `days` with the recomputed ones,
    record the hosts' placements they were computed with and clear the days' dirty marks, in one
    transaction: a crash leaves the days marked, to be recomputed by the next run. `waste` is the
    recomputed wasted time (rows, and the spans whose runs were recomputed whole)."""
    if not days:
        return
    with transaction(wh.db) as con:
        _store_ledger_rows(con, days, usage, ledger, placements, waste)


def store_partition_days(
    wh: Warehouse,
    days: Sequence[date],
    hosts: Sequence[str],
    minutes: pl.DataFrame,
    usage: pl.DataFrame,
    ledger: pl.DataFrame,
    placements: pl.DataFrame,
) -> None:
    """The partition jobs' results from raw samples (advisor/lake_jobs.py) in one transaction:
    the minute rollups of `hosts` on `days` replaced by `minutes`, then the days' hourly
    attribution and ledger as `store_ledger_days` stores them."""
    if not days:
        return
    where, params = _days_where("minute", days)
    with transaction(wh.db) as con:
        con.execute(
            f"DELETE FROM gpu_minute WHERE {where} AND list_contains($hosts, host)",
            {**params, "hosts": list(hosts)},
        ).fetchall()
        if minutes.height:
            con.register("partition_minutes", minutes)
            try:
                con.execute(
                    "INSERT INTO gpu_minute BY NAME SELECT * FROM partition_minutes"
                ).fetchall()
            finally:
                con.unregister("partition_minutes")
        _store_ledger_rows(con, days, usage, ledger, placements, None)


def _store_ledger_rows(
    con: duckdb.DuckDBPyConnection,
    days: Sequence[date],
    usage: pl.DataFrame,
    ledger: pl.DataFrame,
    placements: pl.DataFrame,
    waste: tuple[pl.DataFrame, Sequence[tuple[datetime, datetime]]] | None,
) -> None:
    """`store_ledger_days`'s statements, in the caller's transaction."""
    listed = {"days": list(days)}
    where, params = _days_where("hour", days)
    con.execute(f"DELETE FROM {_USAGE} WHERE {where}", params).fetchall()
    con.execute(f"DELETE FROM {_LEDGER} WHERE list_contains($days, day)", listed).fetchall()
    if waste is not None:
        _replace_waste(con, days, *waste)
    for table, frame in ((_USAGE, usage), (_LEDGER, ledger)):
        if frame.height == 0:
            continue
        con.register("ledger_rows", frame)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM ledger_rows").fetchall()
        finally:
            con.unregister("ledger_rows")
    con.execute("DELETE FROM ledger_dirty WHERE list_contains($days, day)", listed).fetchall()
    if placements.height:
        _replace_hosts(con, placements)
