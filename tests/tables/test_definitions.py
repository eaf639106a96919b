"""The stored tables agree with their definitions (tables/stored.py, tables/snapshot.py,
tables/billing_state.py): a fresh warehouse, an old one brought forward by the migrations, a
published snapshot and the billing state file each have exactly the defined tables, with the
defined columns in the defined order and of the defined types."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from tables.billing_state import BILLING_STATE_TABLES
from tables.columns import Column, Table, information_schema_type
from tables.published import PUBLISHED
from tables.snapshot import SNAPSHOT_TABLES
from tables.stored import WAREHOUSE_TABLES
from warehouse import schema
from warehouse.billing_state import BillingState
from warehouse.snapshot import publish
from warehouse.store import Warehouse

# Migration 1 as warehouse/schema.py wrote it by hand at commit 2d74084 (before the
# definitions): a file made then must still come forward to exactly the definitions.
MIGRATION_1_AT_2D74084 = [
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE TABLE ingested_files (path VARCHAR PRIMARY KEY, kind VARCHAR, rows BIGINT,"
    " ingested_at TIMESTAMPTZ)",
    'CREATE TABLE gpu_samples ("ts" TIMESTAMPTZ, "host" VARCHAR, "gpu_uuid" VARCHAR,'
    ' "gpu_index" INTEGER, "gpu_model" VARCHAR, "util_pct" DOUBLE, "sm_active_pct" DOUBLE,'
    ' "activity_kind" VARCHAR, "mem_used_mib" DOUBLE, "mem_total_mib" DOUBLE, "power_w" DOUBLE,'
    ' "energy_mj" DOUBLE, "sm_clock_mhz" DOUBLE, "temperature_c" DOUBLE,'
    ' "sm_occupancy_pct" DOUBLE, "tensor_active_pct" DOUBLE, "dram_active_pct" DOUBLE,'
    ' "parent_gpu_uuid" VARCHAR, "mig_profile" VARCHAR, "workload" VARCHAR, "source" VARCHAR)',
    'CREATE TABLE process_samples ("ts" TIMESTAMPTZ, "host" VARCHAR, "gpu_uuid" VARCHAR,'
    ' "pid" BIGINT, "user" VARCHAR, "command" VARCHAR, "container" VARCHAR, "pod" VARCHAR,'
    ' "namespace" VARCHAR, "used_mib" DOUBLE, "sm_pct" DOUBLE, "workload" VARCHAR,'
    ' "source" VARCHAR)',
    'CREATE TABLE health ("ts" TIMESTAMPTZ, "host" VARCHAR, "gpu_uuid" VARCHAR, "kind" VARCHAR,'
    ' "message" VARCHAR, "source" VARCHAR)',
    'CREATE TABLE billing_items ("ChargePeriodStart" TIMESTAMPTZ, "ChargePeriodEnd" TIMESTAMPTZ,'
    ' "BillingPeriodStart" TIMESTAMPTZ, "BillingAccountId" VARCHAR, "ProviderName" VARCHAR,'
    ' "ServiceName" VARCHAR, "ResourceId" VARCHAR, "SkuId" VARCHAR, "ChargeCategory" VARCHAR,'
    ' "PricingUnit" VARCHAR, "PricingQuantity" DOUBLE, "ConsumedQuantity" DOUBLE,'
    ' "BilledCost" DOUBLE, "EffectiveCost" DOUBLE, "ListCost" DOUBLE, "BillingCurrency" VARCHAR,'
    ' "Tags" VARCHAR, "RegionId" VARCHAR, "InstanceType" VARCHAR, "workload" VARCHAR,'
    ' "source" VARCHAR, "scope" VARCHAR, batch VARCHAR)',
    """
CREATE TABLE gpu_minute (
    minute TIMESTAMPTZ, host VARCHAR, gpu_uuid VARCHAR, gpu_model VARCHAR, workload VARCHAR,
    samples INTEGER, seconds DOUBLE, busy_seconds DOUBLE, util_avg DOUBLE, sm_active_avg DOUBLE,
    activity_kind VARCHAR, mem_used_max_mib DOUBLE, mem_total_mib DOUBLE, power_avg_w DOUBLE,
    energy_j DOUBLE, source VARCHAR
)""",
    "CREATE TABLE results_daily_ledger (day DATE, placement VARCHAR, workload VARCHAR,"
    " host VARCHAR, gpu_model VARCHAR, gpu_hours DOUBLE, busy_gpu_hours DOUBLE,"
    " cost_usd DOUBLE, currency VARCHAR)",
]


def columns_of(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> dict:
    """table -> [(column, data type, default)] as the file has them, in column order."""
    where = "WHERE table_catalog = $catalog" if catalog else ""
    rows = con.execute(
        "SELECT table_name, column_name, data_type, column_default"
        f" FROM information_schema.columns {where} ORDER BY table_name, ordinal_position",
        {"catalog": catalog} if catalog else {},
    ).fetchall()
    out: dict[str, list] = {}
    for table, column, dtype, default in rows:
        out.setdefault(table, []).append((column, dtype, default))
    return out


def defined(tables: dict[str, Table], *, defaults: bool = True) -> dict:
    def default(c: Column) -> str | None:
        return c.default if defaults else None

    return {
        name: [(c.name, information_schema_type(c.dtype), default(c)) for c in t]
        for name, t in tables.items()
    }


def test_a_fresh_warehouse_has_exactly_the_defined_tables(tmp_path):
    with Warehouse(tmp_path / "w.duckdb", tmp_path / "spool") as wh:
        got = columns_of(wh.db)
        version = schema.current_version(wh.db)
    assert got == defined(WAREHOUSE_TABLES)
    assert version == schema.SCHEMA_VERSION >= 13


def test_a_warehouse_made_at_migration_1_comes_forward_to_the_definitions(tmp_path):
    """A file as gpuledger made it before the migrations 3 to 8 (its DDL written by hand), with
    rows, reaches the defined shape and keeps its rows."""
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    for stmt in MIGRATION_1_AT_2D74084:
        con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")  # no applied_migrations yet
    con.execute(
        "INSERT INTO gpu_minute (minute, host, gpu_uuid, seconds, busy_seconds, util_avg)"
        " VALUES (TIMESTAMPTZ '2026-01-01 00:00:00+00', 'h', 'G', 60, 30, 50)"
    )
    con.execute("INSERT INTO results_daily_ledger (day, gpu_hours) VALUES ('2026-01-01', 2.0)")
    con.close()

    with Warehouse(db, tmp_path / "spool") as wh:
        got = columns_of(wh.db)
        applied = schema.applied_versions(wh.db)
        minute = wh.db.execute("SELECT seconds, activity_seconds, board_share FROM gpu_minute")
        minute_row = minute.fetchall()
        ledger_row = wh.db.execute(
            "SELECT gpu_hours, activity_gpu_hours, unpriced_gpu_hours FROM results_daily_ledger"
        ).fetchall()
    assert got == defined(WAREHOUSE_TABLES)
    assert applied == {v for v, _, _ in schema.MIGRATIONS}
    assert minute_row == [(60.0, 60.0, 1.0)]  # migration 5: the minute had its signal
    assert ledger_row == [(2.0, 2.0, None)]


def test_migration_8_keeps_the_stored_cost_rates_activity_under_its_new_name(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    monkeypatch.setattr(schema, "MIGRATIONS", [m for m in schema.MIGRATIONS if m[0] < 8])
    con = duckdb.connect(str(db))
    schema.migrate(con)
    con.execute(
        "INSERT INTO results_gpu_cost_rates (host, gpu_uuid, workload, util_pct)"
        " VALUES ('h', 'G', 'w', 37.5)"
    )
    monkeypatch.undo()
    assert schema.migrate(con) == 7
    names = [c[0] for c in columns_of(con)["results_gpu_cost_rates"]]
    assert "util_pct" not in names and names[10] == "activity_pct"
    assert con.execute("SELECT activity_pct FROM results_gpu_cost_rates").fetchall() == [(37.5,)]
    con.close()


def test_a_published_snapshot_has_exactly_the_defined_tables(tmp_path):
    """The snapshot's tables are made by SELECTs (warehouse/snapshot.py): their shapes follow
    the queries, and must still be the defined ones (CREATE TABLE AS keeps no defaults)."""
    snap = tmp_path / "dashboard.duckdb"
    with Warehouse(tmp_path / "w.duckdb", tmp_path / "spool") as wh:
        publish(wh, snap, days=3, now=datetime(2026, 1, 1, tzinfo=UTC))
    con = duckdb.connect(str(snap), read_only=True)
    try:
        got = columns_of(con)
    finally:
        con.close()
    assert got == defined(SNAPSHOT_TABLES, defaults=False)


def test_the_billing_state_file_has_exactly_the_defined_tables(tmp_path):
    with BillingState(tmp_path / "billing_state.duckdb") as state:
        got = columns_of(state.db)
    assert got == defined(BILLING_STATE_TABLES)


def test_a_definition_gives_its_polars_schema_ddl_and_labels():
    t = Table(
        "t",
        (
            Column("day", pl.Date(), "", "the day"),
            Column("cost_usd", pl.Float64(), "USD", "money", label="cost USD"),
            Column("tags", pl.List(pl.String()), "", "names", since=2),
            Column("share", pl.Float64(), "fraction", "part", since=3, renamed=("frac", 4)),
        ),
        key=("day",),
        primary_key=True,
    )
    assert t.names == ("day", "cost_usd", "tags", "share")
    assert t.polars_schema == {
        "day": pl.Date(),
        "cost_usd": pl.Float64(),
        "tags": pl.List(pl.String()),
        "share": pl.Float64(),
    }
    assert t.label("cost_usd") == "cost USD" and t.label("day") == "day"
    assert (
        t.duckdb_ddl(as_of=1)
        == 'CREATE TABLE t ("day" DATE, "cost_usd" DOUBLE, PRIMARY KEY ("day"))'
    )
    assert t.duckdb_ddl(as_of=3).endswith('"tags" VARCHAR[], "frac" DOUBLE, PRIMARY KEY ("day"))')
    assert '"share" DOUBLE' in t.duckdb_ddl()
    assert t.add_column_ddl("tags") == 'ALTER TABLE t ADD COLUMN "tags" VARCHAR[]'
    assert t.rename_column_ddl("share") == 'ALTER TABLE t RENAME COLUMN "frac" TO "share"'
    assert t.empty().schema == pl.Schema(t.polars_schema)


def test_a_definition_refuses_unknown_units_types_and_keys():
    with pytest.raises(ValueError, match="unknown unit 'dollars'"):
        Column("x", pl.Float64(), "dollars")
    with pytest.raises(TypeError, match="no DuckDB type"):
        Column("x", pl.Float32())
    with pytest.raises(ValueError, match=r"columns \['nope'\] are not its columns"):
        Table("t", (Column("a", pl.String()),), key=("nope",))
    with pytest.raises(ValueError, match="repeated"):
        Table("t", (Column("a", pl.String()), Column("a", pl.String())))


def test_every_defined_column_says_what_it_means():
    tables = [
        *WAREHOUSE_TABLES.values(),
        *SNAPSHOT_TABLES.values(),
        *BILLING_STATE_TABLES.values(),
        *PUBLISHED.values(),
    ]
    vague = [f"{t.name}.{c.name}" for t in tables for c in t if len(c.meaning) < 3]
    assert vague == []
    assert all(t.meaning for t in tables)
