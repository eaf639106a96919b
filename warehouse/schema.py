"""Tables of the warehouse and their versioned migrations.

The `meta` table holds `schema_version`; `migrate` applies every migration above it, each in its
own transaction, so an older warehouse file is brought forward at open.
"""

from __future__ import annotations

import duckdb

from tables.stored import (
    ALERT_DELIVERIES,
    ALERT_EVENTS,
    ALERT_META,
    ALERTS,
    BILLING_ITEMS_TABLE,
    GPU_MINUTE,
    GPU_SAMPLES_TABLE,
    HEALTH_TABLE,
    INGESTED_FILES,
    LEDGER_DIRTY,
    LEDGER_HOSTS,
    LEDGER_STATE,
    META,
    PROCESS_SAMPLES_TABLE,
    REJECTED_BATCHES,
    RESULTS_ALTERNATIVES,
    RESULTS_DAILY_LEDGER,
    RESULTS_DEMAND_CURVES,
    RESULTS_GPU_COST_RATES,
    RESULTS_RECOMMENDATIONS,
    RESULTS_USAGE_HOURLY,
    RESULTS_WASTE_DAILY,
    RESULTS_WORKLOAD_EVIDENCE,
)
from tables.units import MINUTE_SIGNALS, activity_sql
from warehouse.db import transaction

# Every table is created from its definition (tables/stored.py) as the migration that created it
# had it, and every later column is added by the migration its definition names (`since`), so a
# fresh file and an old one brought forward end up alike (tests/tables/test_definitions.py).
_LEDGER = RESULTS_DAILY_LEDGER
_HOURLY = RESULTS_USAGE_HOURLY

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "raw tables, ingest ledger, minute rollups",
        [
            META.duckdb_ddl(as_of=1, if_not_exists=True),
            INGESTED_FILES.duckdb_ddl(as_of=1),
            GPU_SAMPLES_TABLE.duckdb_ddl(as_of=1),
            PROCESS_SAMPLES_TABLE.duckdb_ddl(as_of=1),
            HEALTH_TABLE.duckdb_ddl(as_of=1),
            BILLING_ITEMS_TABLE.duckdb_ddl(as_of=1),
            GPU_MINUTE.duckdb_ddl(as_of=1),
            _LEDGER.duckdb_ddl(as_of=1),
        ],
    ),
    (
        3,
        "advisor results: hourly GPU attribution, ledger detail, recommendations",
        [
            _HOURLY.duckdb_ddl(as_of=3),
            _LEDGER.add_column_ddl("idle_gpu_hours"),
            _LEDGER.add_column_ddl("idle_cost_usd"),
            _LEDGER.add_column_ddl("billed_cost_usd"),
            _LEDGER.add_column_ddl("list_cost_usd"),
            _LEDGER.add_column_ddl("energy_kwh"),
            RESULTS_RECOMMENDATIONS.duckdb_ddl(as_of=3),
            RESULTS_ALTERNATIVES.duckdb_ddl(as_of=3),
        ],
    ),
    (
        4,
        "alerts with state history, delivery log, current cost rates",
        [
            ALERTS.duckdb_ddl(as_of=4),
            ALERT_EVENTS.duckdb_ddl(as_of=4),
            ALERT_DELIVERIES.duckdb_ddl(as_of=4),
            ALERT_META.duckdb_ddl(as_of=4),
            RESULTS_GPU_COST_RATES.duckdb_ddl(as_of=4),
        ],
    ),
    (
        5,
        "MIG boards as one GPU, seconds with a known activity signal",
        [
            # Minutes rolled up before this migration: a minute with an average utilization or
            # SM active had its signal (busy was counted over all its seconds), one without had
            # none. MIG columns stay null there: those minutes counted every instance as a GPU.
            GPU_MINUTE.add_column_ddl("activity_seconds"),
            f"UPDATE {GPU_MINUTE.name} SET activity_seconds = CASE WHEN"
            f" {activity_sql(*MINUTE_SIGNALS)} IS NULL THEN 0.0 ELSE seconds END",
            GPU_MINUTE.add_column_ddl("parent_gpu_uuid"),
            GPU_MINUTE.add_column_ddl("mig_profile"),
            GPU_MINUTE.add_column_ddl("board_share"),
            # Results from before: busy was counted over every second (the next run recomputes).
            _HOURLY.add_column_ddl("activity_seconds"),
            f"UPDATE {_HOURLY.name} SET activity_seconds = seconds",
            _HOURLY.add_column_ddl("parent_gpu_uuid"),
            _HOURLY.add_column_ddl("mig_profile"),
            _LEDGER.add_column_ddl("activity_gpu_hours"),
            f"UPDATE {_LEDGER.name} SET activity_gpu_hours = gpu_hours",
        ],
    ),
    (
        6,
        "ledger bookkeeping: days an ingest touched, placements and inputs the ledger used",
        [
            # kind 'usage': the day's rollups or process samples changed (attribute it again);
            # 'cost': its bills, a host's placement or the prices changed (re-cost it).
            LEDGER_DIRTY.duckdb_ddl(as_of=6),
            LEDGER_HOSTS.duckdb_ddl(as_of=6),
            LEDGER_STATE.duckdb_ddl(as_of=6),
        ],
    ),
    (
        7,
        "ledger: local GPU-hours whose model has no purchase price (unpriced)",
        [_LEDGER.add_column_ddl("unpriced_gpu_hours")],
    ),
    (
        8,
        "current cost rates: the activity they hold is stored as activity_pct (was util_pct)",
        [RESULTS_GPU_COST_RATES.rename_column_ddl("activity_pct")],
    ),
    (
        9,
        "recommendations: GPUs after, how its GPUs work together, p95 busy, memory in total,"
        " capacity freed for others, the schedule, named confidence",
        # Filled by the next advisor run, which replaces the recommendations whole.
        [
            RESULTS_RECOMMENDATIONS.add_column_ddl(c.name)
            for c in RESULTS_RECOMMENDATIONS.columns
            if c.since == 9
        ],
    ),
    (
        10,
        "the hybrid's hourly demand curves, each workload's evidence (signal, process shape),"
        " and the commitment that covered each bill line (FOCUS CommitmentDiscountId, Type)",
        # Bill lines stored before keep no commitment (null): importing the file again fills it.
        [
            RESULTS_DEMAND_CURVES.duckdb_ddl(as_of=10),
            RESULTS_WORKLOAD_EVIDENCE.duckdb_ddl(as_of=10),
            BILLING_ITEMS_TABLE.add_column_ddl("CommitmentDiscountId"),
            BILLING_ITEMS_TABLE.add_column_ddl("CommitmentDiscountType"),
        ],
    ),
    (
        11,
        "spool files the ingest set aside, with the reason (Data health)",
        [REJECTED_BATCHES.duckdb_ddl(as_of=11)],
    ),
    (
        13,
        "wasted high-end GPU time per run and day, over all history",
        # Filled by the next ledger refresh: the waste's fingerprint is new (advisor/jobs.py),
        # so every day is marked and computed.
        [RESULTS_WASTE_DAILY.duckdb_ddl(as_of=13)],
    ),
    (
        14,
        "GPU samples: the enforced power limit, uncorrected ECC errors and the last XID error",
        [
            GPU_SAMPLES_TABLE.add_column_ddl("power_limit_w"),
            GPU_SAMPLES_TABLE.add_column_ddl("ecc_errors"),
            GPU_SAMPLES_TABLE.add_column_ddl("xid_error"),
        ],
    ),
    (
        17,
        "alternatives: the cloud of each cloud option (provider)",
        # Filled by the next advisor run, which replaces the alternatives whole.
        [RESULTS_ALTERNATIVES.add_column_ddl("provider")],
    ),
]

# Versions are taken in order; each feature owns its own number (2: billing sources,
# 3: advisor results, 4: alerts, 6: ledger bookkeeping, 7: unpriced GPU-hours, 8: activity_pct,
# 9-10: recommendations matched to hardware, 11: rejected spool files, 13: wasted time per day,
# 14: power limit and GPU errors), so parallel work never renumbers another's migration.
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
        with transaction(con):
            for stmt in statements:
                con.execute(stmt)
            done = applied | {version}
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(max(done))]
            )
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('applied_migrations', ?)",
                [",".join(str(v) for v in sorted(done))],
            )
        applied = done
    return found
