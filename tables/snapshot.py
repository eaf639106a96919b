"""Every table of the read-only snapshot (`dashboard.duckdb`) the writer publishes after each
cycle (warehouse/snapshot.py fills them; DESIGN.md §1 rule 3). Most are copies of warehouse
tables under a shorter name; the others are readings made for the pages.
tests/tables/test_definitions.py fails when a published snapshot and a definition disagree.
"""

from __future__ import annotations

import polars as pl

from tables.columns import UTC_TS, Column, Table, key_value_table
from tables.records import GPU_SAMPLES, HEALTH
from tables.stored import (
    ALERTS,
    BILLING_DAILY,
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
from tables.stored import REJECTED_BATCHES as _REJECTED_BATCHES

_S = pl.String()

SNAP_GPU_MINUTE = GPU_MINUTE.copy_as("gpu_minute", "the minute rollups of the last snapshot_days")
GPU_LATEST = GPU_SAMPLES.copy_as("gpu_latest", "the newest sample of every GPU")
SNAP_BILLING_DAILY = BILLING_DAILY
DAILY_LEDGER = RESULTS_DAILY_LEDGER.copy_as("daily_ledger", "the daily ledger, every day")
HOSTS = Table(
    "hosts",
    (
        Column("host", _S, "", "the host"),
        Column("gpus", pl.Int64(), "GPUs", "physical GPUs seen (a MIG board counts once)"),
        Column("first_sample", UTC_TS, "", "its first minute in the snapshot"),
        Column("last_sample", UTC_TS, "", "its newest sample"),
        Column("source", _S, "", "a collector it was read with"),
    ),
    "every host with GPU minutes",
    key=("host",),
)
BILLING_SOURCES = Table(
    "billing_sources",
    (
        Column("source", _S, "", "focus | cur | aws_ce | demo"),
        Column("provider", _S, "", "FOCUS ProviderName"),
        Column("line_items", pl.Int64(), "count", "bill lines stored"),
        Column("last_charge", UTC_TS, "", "the newest ChargePeriodEnd"),
        Column("currency", _S, "", "a BillingCurrency of its lines"),
    ),
    "the newest bill per source and provider (Data health)",
    key=("source", "provider"),
)
HEALTH_RECENT = HEALTH.copy_as("health_recent", "health records of the last day (500 at most)")
INGEST_STATS = Table(
    "ingest_stats",
    (
        Column("kind", _S, "", "the spool kind"),
        Column("files", pl.Int64(), "count", "spool files taken"),
        Column("rows", pl.Int128(), "count", "rows they held"),
        Column("last_ingest", UTC_TS, "", "when the newest was taken"),
    ),
    "the ingest ledger per spool kind (Data health)",
    key=("kind",),
)
REJECTED_RECENT = _REJECTED_BATCHES.copy_as(
    "rejected_recent", "spool files the ingest set aside, newest first (500 at most)"
)
SNAP_ALERTS = ALERTS.copy_as("alerts", "every alert")
GPU_COST_RATES = RESULTS_GPU_COST_RATES.copy_as("gpu_cost_rates")
USAGE_HOURLY = RESULTS_USAGE_HOURLY.copy_as("usage_hourly")
RECOMMENDATIONS = RESULTS_RECOMMENDATIONS.copy_as("recommendations")
ALTERNATIVES = RESULTS_ALTERNATIVES.copy_as("alternatives")
WASTE_DAILY = RESULTS_WASTE_DAILY.copy_as("waste_daily", "wasted high-end GPU time, every day")
DEMAND_CURVES = RESULTS_DEMAND_CURVES.copy_as("demand_curves")
WORKLOAD_EVIDENCE = RESULTS_WORKLOAD_EVIDENCE.copy_as("workload_evidence")
INSTANCES = Table(
    "instances",
    (
        Column("host", _S, "", "a bill's ResourceId (the agent's host id on that instance)"),
        Column("instance_type", _S, "", "the instance type the bill names most"),
        Column(
            "commitment_id",
            _S,
            "",
            "the commitment (FOCUS CommitmentDiscountId) its newest covered line names",
        ),
        Column("commitment_type", _S, "", "its kind (FOCUS CommitmentDiscountType)"),
    ),
    "the instance type of every billed resource, and the commitment that covers it",
    key=("host",),
)
SNAP_META = key_value_table(
    "meta",
    "published_at, data_from, data_as_of, schema_version, alerts_checked_at (the last alert"
    " check, empty before the first)",
    primary_key=False,
)

# In the order the snapshot is written.
SNAPSHOT_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        SNAP_GPU_MINUTE,
        GPU_LATEST,
        SNAP_BILLING_DAILY,
        DAILY_LEDGER,
        HOSTS,
        BILLING_SOURCES,
        HEALTH_RECENT,
        INGEST_STATS,
        REJECTED_RECENT,
        SNAP_ALERTS,
        GPU_COST_RATES,
        USAGE_HOURLY,
        RECOMMENDATIONS,
        ALTERNATIVES,
        INSTANCES,
        WASTE_DAILY,
        DEMAND_CURVES,
        WORKLOAD_EVIDENCE,
        SNAP_META,
    )
}
# The advisor's results a snapshot must hold for its pages (warehouse/advisor_reads.py).
ADVISOR_SNAPSHOT_TABLES = (
    USAGE_HOURLY.name,
    RECOMMENDATIONS.name,
    ALTERNATIVES.name,
    INSTANCES.name,
)
