"""The advisor's SQL against the warehouse (the writer): what its jobs read, and the one
transaction that stores their results (tables of migration 3, DESIGN.md §1: no SQL outside
warehouse/)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from warehouse.store import Warehouse

# Result tables the advisor replaces together, in this order.
ADVISOR_TABLES = (
    "results_usage_hourly",
    "results_daily_ledger",
    "results_recommendations",
    "results_alternatives",
)

MINUTE_COLUMNS = (
    "minute, host, gpu_uuid, gpu_model, workload, seconds, busy_seconds, energy_j,"
    " mem_used_max_mib, mem_total_mib"
)

# Per workload on one GPU in one minute, only where more than one workload shared the GPU that
# minute: the SM share NVML gave its processes (null when it gave none) and their memory. GPUs
# that never had two workloads in the window are left out first (a cheap pass), and minutes are
# bucketed on epoch microseconds (date_trunc on TIMESTAMPTZ is several times slower).
PROCESS_SHARES_SQL = """
    WITH shared AS (
        SELECT host, gpu_uuid FROM process_samples
        WHERE ts >= $since AND ts < $until AND workload IS NOT NULL
        GROUP BY host, gpu_uuid HAVING min(workload) <> max(workload)
    ),
    p AS (
        SELECT epoch_us(ts) // 60000000 AS m, host, gpu_uuid, workload,
               sum(sm_pct) AS sm_pct_sum, count(sm_pct) AS sm_samples,
               sum(used_mib) AS used_mib_sum, count(*) AS samples
        FROM process_samples SEMI JOIN shared USING (host, gpu_uuid)
        WHERE ts >= $since AND ts < $until AND workload IS NOT NULL
        GROUP BY ALL
    )
    SELECT to_timestamp(m * 60) AS minute, host, gpu_uuid, workload, sm_pct_sum, sm_samples,
           used_mib_sum, samples
    FROM p
    QUALIFY count(*) OVER (PARTITION BY m, host, gpu_uuid) > 1"""

INSTANCE_TYPES_SQL = """
    SELECT ResourceId AS host, mode(InstanceType) AS instance_type
    FROM billing_items
    WHERE ResourceId IS NOT NULL AND InstanceType IS NOT NULL AND ChargePeriodStart >= $since
    GROUP BY ResourceId"""


def advisor_minutes(wh: Warehouse, since: datetime, until: datetime) -> pl.DataFrame:
    """The gpu_minute rollups the attribution needs, in [since, until)."""
    return wh.db.sql(
        f"SELECT {MINUTE_COLUMNS} FROM gpu_minute WHERE minute >= $since AND minute < $until",
        params={"since": since, "until": until},
    ).pl()


def process_shares(wh: Warehouse, since: datetime, until: datetime) -> pl.DataFrame:
    """Per-workload SM and memory sums on the GPU-minutes that several workloads shared."""
    return wh.db.sql(PROCESS_SHARES_SQL, params={"since": since, "until": until}).pl()


def instance_types(wh: Warehouse, since: datetime) -> pl.DataFrame:
    """The instance type the bill names for each resource (host id = ResourceId)."""
    return wh.db.sql(INSTANCE_TYPES_SQL, params={"since": since}).pl()


def store_advisor_results(wh: Warehouse, frames: dict[str, pl.DataFrame]) -> None:
    """Replace the advisor's result tables in one transaction: readers of the next snapshot see
    a ledger and recommendations computed from the same data, never a mix."""
    unknown = set(frames) - set(ADVISOR_TABLES)
    if unknown:
        raise ValueError(f"not an advisor result table: {sorted(unknown)}")
    con = wh.db
    con.execute("BEGIN")
    try:
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
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
