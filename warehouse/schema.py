"""Tables of the warehouse and their versioned migrations.

The `meta` table holds `schema_version`; `migrate` applies every migration above it, each in its
own transaction, so an older warehouse file is brought forward at open.
"""

from __future__ import annotations

import duckdb
import polars as pl

from collectors.schema import SCHEMAS

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
]

# Versions are taken in order; each feature owns its own number (2: billing sources,
# 3: advisor results, 4: alerts), so parallel work never renumbers another's migration.
SCHEMA_VERSION = max(version for version, _title, _statements in MIGRATIONS)


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else 0


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema to SCHEMA_VERSION; returns the version found before."""
    found = current_version(con)
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"warehouse schema version {found} is newer than this gpuledger ({SCHEMA_VERSION})"
        )
    for version, _title, statements in sorted(MIGRATIONS, key=lambda m: m[0]):
        if version <= found:
            continue
        con.execute("BEGIN")
        try:
            for stmt in statements:
                con.execute(stmt)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return found
