"""Tables of the warehouse and their versioned migrations.

The `meta` table holds `schema_version`; `migrate` applies every migration above it, each in its
own transaction, so an older warehouse file is brought forward at open.
"""

from __future__ import annotations

import duckdb
import polars as pl

from tables.records import SCHEMAS

_DUCK_TYPES = {
    pl.Datetime("us", "UTC"): "TIMESTAMPTZ",
    pl.String(): "VARCHAR",
    pl.Float64(): "DOUBLE",
    pl.Int32(): "INTEGER",
    pl.Int64(): "BIGINT",
}


def _table_ddl(name: str, extra: str = "") -> str:
    cols = ", ".join(f'"{c}" {_DUCK_TYPES[t]}' for c, t in SCHEMAS[name].items())
    return f"CREATE TABLE {name} ({cols}{extra})"


GPU_MINUTE_DDL = """
CREATE TABLE gpu_minute (
    minute TIMESTAMPTZ, host VARCHAR, gpu_uuid VARCHAR, gpu_model VARCHAR, workload VARCHAR,
    samples INTEGER, seconds DOUBLE, busy_seconds DOUBLE, util_avg DOUBLE, sm_active_avg DOUBLE,
    activity_kind VARCHAR, mem_used_max_mib DOUBLE, mem_total_mib DOUBLE, power_avg_w DOUBLE,
    energy_j DOUBLE, source VARCHAR
)"""

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "raw tables, ingest ledger, minute rollups",
        [
            "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
            "CREATE TABLE ingested_files (path VARCHAR PRIMARY KEY, kind VARCHAR, rows BIGINT,"
            " ingested_at TIMESTAMPTZ)",
            _table_ddl("gpu_samples"),
            _table_ddl("process_samples"),
            _table_ddl("health"),
            _table_ddl("billing_items", ", batch VARCHAR"),
            GPU_MINUTE_DDL,
            "CREATE TABLE results_daily_ledger (day DATE, placement VARCHAR, workload VARCHAR,"
            " host VARCHAR, gpu_model VARCHAR, gpu_hours DOUBLE, busy_gpu_hours DOUBLE,"
            " cost_usd DOUBLE, currency VARCHAR)",
        ],
    ),
    (
        3,
        "advisor results: hourly GPU attribution, ledger detail, recommendations",
        [
            "CREATE TABLE results_usage_hourly (hour TIMESTAMPTZ, placement VARCHAR,"
            " host VARCHAR, gpu_uuid VARCHAR, gpu_model VARCHAR, workload VARCHAR, idle BOOLEAN,"
            " seconds DOUBLE, busy_seconds DOUBLE, energy_j DOUBLE, mem_peak_mib DOUBLE,"
            " mem_total_mib DOUBLE)",
            "ALTER TABLE results_daily_ledger ADD COLUMN idle_gpu_hours DOUBLE",
            "ALTER TABLE results_daily_ledger ADD COLUMN idle_cost_usd DOUBLE",
            "ALTER TABLE results_daily_ledger ADD COLUMN billed_cost_usd DOUBLE",
            "ALTER TABLE results_daily_ledger ADD COLUMN list_cost_usd DOUBLE",
            "ALTER TABLE results_daily_ledger ADD COLUMN energy_kwh DOUBLE",
            "CREATE TABLE results_recommendations (computed_at TIMESTAMPTZ,"
            " window_start TIMESTAMPTZ, window_end TIMESTAMPTZ, days_observed DOUBLE,"
            " workload VARCHAR, placement VARCHAR, sensitive BOOLEAN, hosts VARCHAR,"
            " instance_type VARCHAR, gpu_model VARCHAR, gpus INTEGER,"
            " gpu_hours_per_month DOUBLE, busy_fraction DOUBLE, duty_cycle DOUBLE,"
            " peak_memory_gib DOUBLE, current_monthly_cost_usd DOUBLE, action VARCHAR,"
            " alternative VARCHAR, alternative_monthly_cost_usd DOUBLE,"
            " monthly_savings_usd DOUBLE, upfront_usd DOUBLE, break_even_months DOUBLE,"
            " confidence DOUBLE, reasons VARCHAR[])",
            "CREATE TABLE results_alternatives (computed_at TIMESTAMPTZ, workload VARCHAR,"
            " option VARCHAR, kind VARCHAR, placement VARCHAR, gpu_model VARCHAR,"
            " gpus INTEGER, instance_type VARCHAR, host VARCHAR, monthly_cost_usd DOUBLE,"
            " monthly_savings_usd DOUBLE, upfront_usd DOUBLE, break_even_months DOUBLE,"
            " feasible BOOLEAN, chosen BOOLEAN, note VARCHAR)",
        ],
    ),
    (
        4,
        "alerts with state history, delivery log, current cost rates",
        [
            "CREATE TABLE alerts (alert_id VARCHAR, host VARCHAR, gpu_uuid VARCHAR,"
            " gpu_model VARCHAR, workload VARCHAR, kind VARCHAR, state VARCHAR,"
            " started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, resolved_at TIMESTAMPTZ,"
            " opened_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, duration_s DOUBLE, wasted_s DOUBLE,"
            " wasted_usd DOUBLE, usd_per_hour DOUBLE, placement VARCHAR, price_basis VARCHAR,"
            " activity_pct DOUBLE, util_pct DOUBLE, sm_active_pct DOUBLE,"
            " mem_used_max_gib DOUBLE, suggested_class VARCHAR, notify BOOLEAN)",
            "CREATE TABLE alert_events (alert_id VARCHAR, ts TIMESTAMPTZ, event VARCHAR,"
            " state VARCHAR, duration_s DOUBLE, wasted_usd DOUBLE, note VARCHAR)",
            "CREATE TABLE alert_deliveries (delivery_id VARCHAR, alert_id VARCHAR,"
            " event VARCHAR, channel VARCHAR, created_at TIMESTAMPTZ, status VARCHAR,"
            " attempts INTEGER, last_error VARCHAR, delivered_at TIMESTAMPTZ, message VARCHAR)",
            "CREATE TABLE alert_meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
            "CREATE TABLE results_gpu_cost_rates (as_of TIMESTAMPTZ, host VARCHAR,"
            " gpu_uuid VARCHAR, gpu_model VARCHAR, workload VARCHAR, placement VARCHAR,"
            " share DOUBLE, usd_per_hour DOUBLE, energy_usd_per_hour DOUBLE,"
            " price_basis VARCHAR, util_pct DOUBLE, power_w DOUBLE)",
        ],
    ),
    (
        5,
        "MIG boards as one GPU, seconds with a known activity signal",
        [
            # Minutes rolled up before this migration: a minute with an average utilization or
            # SM active had its signal (busy was counted over all its seconds), one without had
            # none. MIG columns stay null there: those minutes counted every instance as a GPU.
            "ALTER TABLE gpu_minute ADD COLUMN activity_seconds DOUBLE",
            "UPDATE gpu_minute SET activity_seconds = CASE WHEN coalesce(sm_active_avg,"
            " util_avg) IS NULL THEN 0.0 ELSE seconds END",
            "ALTER TABLE gpu_minute ADD COLUMN parent_gpu_uuid VARCHAR",
            "ALTER TABLE gpu_minute ADD COLUMN mig_profile VARCHAR",
            "ALTER TABLE gpu_minute ADD COLUMN board_share DOUBLE DEFAULT 1.0",
            # Results from before: busy was counted over every second (the next run recomputes).
            "ALTER TABLE results_usage_hourly ADD COLUMN activity_seconds DOUBLE",
            "UPDATE results_usage_hourly SET activity_seconds = seconds",
            "ALTER TABLE results_usage_hourly ADD COLUMN parent_gpu_uuid VARCHAR",
            "ALTER TABLE results_usage_hourly ADD COLUMN mig_profile VARCHAR",
            "ALTER TABLE results_daily_ledger ADD COLUMN activity_gpu_hours DOUBLE",
            "UPDATE results_daily_ledger SET activity_gpu_hours = gpu_hours",
        ],
    ),
    (
        6,
        "ledger bookkeeping: days an ingest touched, placements and inputs the ledger used",
        [
            # kind 'usage': the day's rollups or process samples changed (attribute it again);
            # 'cost': its bills, a host's placement or the prices changed (re-cost it).
            "CREATE TABLE ledger_dirty (day DATE, kind VARCHAR)",
            "CREATE TABLE ledger_hosts (host VARCHAR, placement VARCHAR, owner VARCHAR)",
            "CREATE TABLE ledger_state (key VARCHAR PRIMARY KEY, value VARCHAR)",
        ],
    ),
    (
        7,
        "ledger: local GPU-hours whose model has no purchase price (unpriced)",
        ["ALTER TABLE results_daily_ledger ADD COLUMN unpriced_gpu_hours DOUBLE"],
    ),
]

# Versions are taken in order; each feature owns its own number (2: billing sources,
# 3: advisor results, 4: alerts, 6: ledger bookkeeping, 7: unpriced GPU-hours), so parallel
# work never renumbers another's migration.
SCHEMA_VERSION = max(version for version, _title, _statements in MIGRATIONS)


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else 0


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    """The migrations this file has had: recorded one by one, so a migration numbered below the
    newest applied one (features land in any order) is still applied later."""
    if current_version(con) == 0:
        return set()
    rows = con.execute("SELECT value FROM meta WHERE key = 'applied_migrations'").fetchall()
    if rows and rows[0][0]:
        return {int(v) for v in rows[0][0].split(",")}
    return {1}  # files from before the ledger of applied migrations had only migration 1


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration this file has not had; returns the version found before."""
    found = current_version(con)
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"warehouse schema version {found} is newer than this gpuledger ({SCHEMA_VERSION})"
        )
    applied = applied_versions(con)
    for version, _title, statements in sorted(MIGRATIONS, key=lambda m: m[0]):
        if version in applied:
            continue
        con.execute("BEGIN")
        try:
            for stmt in statements:
                con.execute(stmt)
            applied.add(version)
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(max(applied))]
            )
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('applied_migrations', ?)",
                [",".join(str(v) for v in sorted(applied))],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return found
