"""Every table of the warehouse (`warehouse.duckdb`), as it is after the newest migration.

warehouse/schema.py creates and migrates the file from these definitions: each column's `since`
is the migration that added it (`renamed`: the one that renamed it), so a table is created as an
older migration had it and brought forward by the later ones, exactly as an older file is.
tests/tables/test_definitions.py fails when a migrated file and a definition disagree.

Money (DESIGN.md §2 "Cloud cost"): the bill's FOCUS columns keep their FOCUS names in
`billing_items` (EffectiveCost, BilledCost, ListCost, in BillingCurrency). Per day and resource
they are `effective_cost`, `billed_cost`, `list_cost` (the billing_daily reading below), and in the
ledger a cloud row's `cost_usd` is its share of `effective_cost` (`billed_cost_usd`,
`list_cost_usd` beside it); a local row's `cost_usd` is capital + operations + energy. Every
money column the product shows or publishes ends in `_usd`.
"""

from __future__ import annotations

import polars as pl

from tables.columns import UTC_TS, Column, Table, key_value_table
from tables.records import (
    BILLING_ITEMS,
    COMMITMENT_COLUMNS,
    GPU_SAMPLES,
    HEALTH,
    PROCESS_SAMPLES,
)

_S = pl.String()
_F = pl.Float64()
_I32 = pl.Int32()
_I64 = pl.Int64()
_B = pl.Boolean()
_D = pl.Date()


# Columns several tables share (one definition each).
_HOST = Column("host", _S, "", "the host")
_PLACEMENT = Column("placement", _S, "", "local | cloud")
_COMPUTED_AT = Column("computed_at", UTC_TS, "", "when the advisor ran")

# Bookkeeping ---------------------------------------------------------------------------------
META = key_value_table("meta", "schema_version, applied_migrations, raw_kept_from (retention)")

INGESTED_FILES = Table(
    "ingested_files",
    (
        Column("path", _S, "", "the spool file, relative to the spool directory"),
        Column("kind", _S, "", "its spool kind (gpu_samples, process_samples, ...)"),
        Column("rows", _I64, "count", "rows it held"),
        Column("ingested_at", UTC_TS, "", "when it was taken"),
    ),
    "the ingest ledger: every spool file taken, in the transaction that stored its rows",
    key=("path",),
    primary_key=True,
)

REJECTED_BATCHES = Table(
    "rejected_batches",
    (
        Column("path", _S, "", "the spool file, relative to the spool (now under _rejected/)"),
        Column("kind", _S, "", "its spool kind (gpu_samples, process_samples, ...)"),
        Column("reason", _S, "", "why the ingest set it aside (file row and column where known)"),
        Column("rejected_at", UTC_TS, "", "when it was set aside"),
    ),
    "spool files the ingest could not take, moved to spool/_rejected (warehouse/quarantine.py)",
    key=("path",),
    primary_key=True,
    since=11,
)

# Raw records: the spool kinds as collectors write them (tables/records.py). --------------------
GPU_SAMPLES_TABLE = GPU_SAMPLES
PROCESS_SAMPLES_TABLE = PROCESS_SAMPLES
HEALTH_TABLE = HEALTH
# The bill line, the batch that brought it, then the commitment that covered it (migration 10
# added those two after `batch`, so they come last in the stored table too).
BILLING_ITEMS_TABLE = Table(
    BILLING_ITEMS.name,
    tuple(c for c in BILLING_ITEMS if c.name not in COMMITMENT_COLUMNS)
    + (Column("batch", _S, "", "the spool file the row came from (relative path)"),)
    + tuple(BILLING_ITEMS[c] for c in COMMITMENT_COLUMNS),
    "bill lines in FOCUS shape, each with the spool batch that brought it",
    key=BILLING_ITEMS.key,
)

# Minute rollups ------------------------------------------------------------------------------
GPU_MINUTE = Table(
    "gpu_minute",
    (
        Column("minute", UTC_TS, "", "the minute (UTC)"),
        Column("host", _S, "", "the agent's host id"),
        Column("gpu_uuid", _S, "", "the GPU (a MIG instance, or a board's unpartitioned rest)"),
        Column("gpu_model", _S, "", "the model name the source reported"),
        Column("workload", _S, "", "the workload on the GPU; null: no process"),
        Column("samples", _I32, "count", "samples in the minute"),
        Column("seconds", _F, "GPU-s", "GPU-seconds the samples stand for (gaps capped)"),
        Column("busy_seconds", _F, "GPU-s", "seconds × activity"),
        Column("util_avg", _F, "%", "mean utilization.gpu"),
        Column("sm_active_avg", _F, "%", "mean SM active, null where unknown"),
        Column("activity_kind", _S, "", "the activity signal of the minute's samples"),
        Column("mem_used_max_mib", _F, "MiB", "peak memory.used"),
        Column("mem_total_mib", _F, "MiB", "the GPU's memory"),
        Column("power_avg_w", _F, "W", "mean power draw"),
        Column("energy_j", _F, "J", "energy measured (counter deltas, else power × seconds)"),
        Column("source", _S, "", "the collector"),
        Column(
            "activity_seconds", _F, "GPU-s", "of `seconds`, those with an activity signal", since=5
        ),
        Column("parent_gpu_uuid", _S, "", "a MIG instance's board", since=5),
        Column(
            "mig_profile", _S, "", "a MIG instance's profile (unpartitioned: the rest)", since=5
        ),
        Column(
            "board_share",
            _F,
            "fraction",
            "the part of a physical GPU the row stands for (1 outside MIG)",
            since=5,
            default="1.0",
        ),
    ),
    "GPU samples per GPU, minute and workload; kept for good (raw samples are trimmed)",
    key=("host", "gpu_uuid", "minute", "workload"),
)
# What each reader of the rollups takes (different readers, different names).
MINUTE_ATTRIBUTION = GPU_MINUTE.select(
    "minute",
    "host",
    "gpu_uuid",
    "gpu_model",
    "workload",
    "seconds",
    "busy_seconds",
    "energy_j",
    "mem_used_max_mib",
    "mem_total_mib",
    "activity_seconds",
    "parent_gpu_uuid",
    "mig_profile",
    meaning="the minute rollups the hourly attribution reads (advisor/attribution.py)",
)
MINUTE_WASTE = GPU_MINUTE.select(
    "minute",
    "host",
    "gpu_uuid",
    "gpu_model",
    "workload",
    "seconds",
    "busy_seconds",
    "util_avg",
    "sm_active_avg",
    "activity_kind",
    "mem_used_max_mib",
    "mem_total_mib",
    "power_avg_w",
    "activity_seconds",
    "board_share",
    meaning="the minute rollups the wasted-time check reads (advisor/waste.py)",
)

# The advisor's results -----------------------------------------------------------------------
_DAILY_LEDGER_COLUMNS = (
    Column("day", _D, "", "the UTC day"),
    Column("placement", _S, "", "local | cloud"),
    Column("workload", _S, "", "the workload; __idle__: local GPUs without a process"),
    Column("host", _S, "", "the host (a cloud instance id)"),
    Column("gpu_model", _S, "", "the GPU model"),
    Column("gpu_hours", _F, "GPU-h", "allocated GPU-hours", label="GPU-hours"),
    Column(
        "busy_gpu_hours",
        _F,
        "GPU-h",
        "GPU-hours × activity; null where no hour had a signal",
        label="busy GPU-hours",
    ),
    Column(
        "cost_usd",
        _F,
        "USD",
        "local: capital + operations + energy; cloud: the share of the bill's EffectiveCost",
        label="cost USD",
    ),
    Column("currency", _S, "", "the money's currency (only USD is added up)"),
    Column(
        "idle_gpu_hours",
        _F,
        "GPU-h",
        "of gpu_hours, those with no process",
        label="idle GPU-hours",
        since=3,
    ),
    Column(
        "idle_cost_usd",
        _F,
        "USD",
        "of cost_usd, the idle share (cloud: the owner's idle instance time)",
        label="idle USD",
        since=3,
    ),
    Column(
        "billed_cost_usd",
        _F,
        "USD",
        "cloud: the share of the bill's BilledCost (the invoice); null for local",
        label="billed USD",
        since=3,
    ),
    Column(
        "list_cost_usd",
        _F,
        "USD",
        "cloud: the share of the bill's ListCost (before deals); null where unknown",
        label="list USD",
        since=3,
    ),
    Column("energy_kwh", _F, "kWh", "energy measured", since=3),
    Column(
        "activity_gpu_hours",
        _F,
        "GPU-h",
        "of gpu_hours, those with an activity signal (busy fraction = busy / these)",
        since=5,
    ),
    Column(
        "unpriced_gpu_hours",
        _F,
        "GPU-h",
        "local GPU-hours whose model has no purchase price (cost holds ops and energy only)",
        since=7,
    ),
)
RESULTS_DAILY_LEDGER = Table(
    "results_daily_ledger",
    _DAILY_LEDGER_COLUMNS,
    "GPU-hours, busy GPU-hours and money per day, placement, workload, host and GPU model",
    key=("day", "placement", "workload", "host", "gpu_model"),
)

RESULTS_USAGE_HOURLY = Table(
    "results_usage_hourly",
    (
        Column("hour", UTC_TS, "", "the hour (UTC)"),
        _PLACEMENT,
        _HOST,
        Column("gpu_uuid", _S, "", "the GPU"),
        Column("gpu_model", _S, "", "its model"),
        Column("workload", _S, "", "the workload (null where idle)"),
        Column("idle", _B, "", "no process held the GPU"),
        Column("seconds", _F, "GPU-s", "allocated GPU-seconds"),
        Column("busy_seconds", _F, "GPU-s", "seconds × activity"),
        Column("energy_j", _F, "J", "energy measured"),
        Column("mem_peak_mib", _F, "MiB", "peak memory used", label="peak memory GiB"),
        Column("mem_total_mib", _F, "MiB", "the GPU's memory"),
        Column(
            "activity_seconds", _F, "GPU-s", "of `seconds`, those with an activity signal", since=5
        ),
        Column("parent_gpu_uuid", _S, "", "a MIG instance's board", since=5),
        Column("mig_profile", _S, "", "a MIG instance's profile", since=5),
    ),
    "allocated and busy GPU-seconds per hour, GPU and workload (the attribution)",
    key=("hour", "host", "gpu_uuid", "workload"),
    since=3,
)

_MONTHLY_SAVINGS = Column(
    "monthly_savings_usd",
    _F,
    "USD/month",
    "the workload's own cash saved a month by the alternative",
    label="saves USD/month",
)
_BREAK_EVEN = Column(
    "break_even_months",
    _F,
    "months",
    "months until money spent up front is saved back; null where nothing is bought",
    label="break-even months",
)
_UPFRONT = Column("upfront_usd", _F, "USD", "money spent up front (hardware bought)")

RESULTS_RECOMMENDATIONS = Table(
    "results_recommendations",
    (
        _COMPUTED_AT,
        Column("window_start", UTC_TS, "", "first instant of the window observed"),
        Column("window_end", UTC_TS, "", "end of the window observed"),
        Column("days_observed", _F, "days", "days the workload was seen in the window"),
        Column("workload", _S, "", "the workload"),
        Column("placement", _S, "", "where it runs now: local | cloud"),
        Column("sensitive", _B, "", "must never be recommended to the cloud"),
        Column("hosts", _S, "", "the hosts it ran on, comma-separated"),
        Column("instance_type", _S, "", "its cloud instance type, where cloud"),
        Column("gpu_model", _S, "", "its GPU model now"),
        Column("gpus", _I32, "GPUs", "GPUs it holds now"),
        Column("gpu_hours_per_month", _F, "GPU-h/month", "GPU-hours held, scaled to 730 h"),
        Column(
            "busy_fraction",
            _F,
            "fraction",
            "busy ÷ GPU-hours with an activity signal",
            label="busy %",
        ),
        Column(
            "duty_cycle", _F, "fraction", "share of hours it was active", label="active hours %"
        ),
        Column(
            "peak_memory_gib", _F, "GiB", "peak GPU memory, null where unknown", label="peak GiB"
        ),
        Column(
            "current_monthly_cost_usd",
            _F,
            "USD/month",
            "what it costs a month where it runs now",
            label="now USD/month",
        ),
        Column(
            "action",
            _S,
            "",
            "keep | move_to_local | buy_local | move_to_cloud | downsize | hybrid | schedule",
        ),
        Column("alternative", _S, "", "the option chosen (null for keep)"),
        Column(
            "alternative_monthly_cost_usd", _F, "USD/month", "what the alternative costs a month"
        ),
        _MONTHLY_SAVINGS,
        _UPFRONT,
        _BREAK_EVEN,
        Column("confidence", _F, "fraction", "grows with days observed"),
        Column("reasons", pl.List(_S), "", "the arithmetic in words"),
        # Matching each workload to the right hardware (migration 9, issue 13).
        Column(
            "gpus_after",
            _I32,
            "GPUs",
            "GPUs the chosen option holds (a hybrid: its local base); null for keep",
            label="GPUs after",
            since=9,
        ),
        Column(
            "assumption",
            _S,
            "",
            "how its GPUs work together: single_gpu | multi_gpu_job | independent | idle_gpus |"
            " unknown (why: in the reasons)",
            since=9,
        ),
        Column(
            "busy_gpus_p95",
            _F,
            "GPUs",
            "GPU-equivalents busy at once in its busiest hours (p95 of the hours it held GPUs);"
            " null where unknown",
            label="busy GPUs p95",
            since=9,
        ),
        Column(
            "memory_total_gib",
            _F,
            "GiB",
            "the most GPU memory its processes held at once over all its GPUs; null where unknown",
            label="memory GiB in total",
            since=9,
        ),
        Column(
            "freed_capacity_usd",
            _F,
            "USD/month",
            "what the GPUs it hands over are worth a month to others (not its own cash)",
            label="frees for others USD/month",
            since=9,
        ),
        Column(
            "schedule",
            _S,
            "",
            "stop when idle: the hours (UTC) it would run in; null where none is proposed",
            since=9,
        ),
        Column(
            "schedule_hours_per_month",
            _F,
            "h",
            "hours a month it would hold its GPUs on that schedule",
            label="scheduled h/month",
            since=9,
        ),
        Column(
            "schedule_savings_usd",
            _F,
            "USD/month",
            "what the schedule saves a month (part of monthly_savings_usd)",
            label="schedule saves USD/month",
            since=9,
        ),
        Column(
            "confidence_level",
            _S,
            "",
            "high | medium | low: days observed, activity signal, memory, demand stability",
            label="confidence level",
            since=9,
        ),
        Column(
            "confidence_reasons",
            pl.List(_S),
            "",
            "one reason per factor of the confidence level",
            since=9,
        ),
    ),
    "one recommendation per workload over the window (DESIGN.md §2 Recommendation)",
    key=("workload",),
    since=3,
)

RESULTS_ALTERNATIVES = Table(
    "results_alternatives",
    (
        _COMPUTED_AT,
        Column("workload", _S, "", "the workload"),
        Column("option", _S, "", "the option, in words"),
        Column("kind", _S, "", "current | spare | buy | cloud | downsize | hybrid | schedule ..."),
        _PLACEMENT,
        Column("gpu_model", _S, "", "the GPU class it would use"),
        Column("gpus", _I32, "GPUs", "GPUs it would hold"),
        Column("instance_type", _S, "", "the cloud instance type, where cloud"),
        Column("host", _S, "", "the local host, where spare capacity"),
        Column(
            "monthly_cost_usd", _F, "USD/month", "what it would cost a month", label="USD/month"
        ),
        _MONTHLY_SAVINGS,
        _UPFRONT,
        _BREAK_EVEN,
        Column("feasible", _B, "", "enough memory and throughput for the workload"),
        Column("chosen", _B, "", "the option the recommendation took"),
        Column("note", _S, "", "why (not) feasible, in words", label="why"),
        Column(
            "provider",
            _S,
            "",
            "the cloud of a cloud option: aws | azure | gcp (tables/clouds.py); empty for local",
            label="cloud",
            since=17,
        ),
    ),
    "every alternative considered per workload, feasible or not",
    key=("workload", "option"),
    since=3,
)

# The hybrid's hourly demand curve and the evidence beyond the hourly attribution (migration 10).
RESULTS_DEMAND_CURVES = Table(
    "results_demand_curves",
    (
        _COMPUTED_AT,
        Column("workload", _S, "", "a workload recommended a hybrid"),
        Column("hour", UTC_TS, "", "an hour of the window (UTC)"),
        Column("gpus", _F, "GPUs", "GPUs its processes held that hour (its demand)"),
        Column(
            "base_gpus",
            _F,
            "GPUs",
            "the chosen line: local GPUs carry the demand up to it, the cloud the rest",
            label="local base",
        ),
    ),
    "the hourly demand curve of each workload recommended a hybrid, with the chosen base line",
    key=("workload", "hour"),
    since=10,
)

RESULTS_WORKLOAD_EVIDENCE = Table(
    "results_workload_evidence",
    (
        _COMPUTED_AT,
        Column("workload", _S, "", "the workload"),
        Column(
            "sm_active_share",
            _F,
            "fraction",
            "of its GPU-seconds, those whose activity was SM active (NVML GPM, DCGM)",
        ),
        Column("util_share", _F, "fraction", "of its GPU-seconds, those with only utilization.gpu"),
        Column(
            "busy_minutes",
            _I64,
            "count",
            "minutes its processes ran on a GPU busy at least [advisor] active_hour_busy_pct",
        ),
        Column(
            "multi_gpu_minutes",
            _I64,
            "count",
            "of those, minutes one command (or pid) was busy on two or more of its GPUs at once",
        ),
        Column("job_gpus", _I32, "GPUs", "the most GPUs one command was busy on at once"),
        Column("max_process_mib", _F, "MiB", "the most memory one process held on one GPU"),
        Column("processes", _I64, "count", "its processes (host and pid) seen"),
        Column("p90_process_s", _F, "s", "how long 90 % of its processes lived at most"),
    ),
    "what the raw data says about each workload beyond the hourly attribution, over the"
    " advisor window: its activity signal (minute rollups) and its process shape (the process"
    " samples still kept)",
    key=("workload",),
    since=10,
)

RESULTS_GPU_COST_RATES = Table(
    "results_gpu_cost_rates",
    (
        Column("as_of", UTC_TS, "", "the minute the rates are for"),
        _HOST,
        Column("gpu_uuid", _S, "", "the GPU"),
        Column("gpu_model", _S, "", "its model"),
        Column("workload", _S, "", "the workload on it (__idle__ or the owner where none)"),
        _PLACEMENT,
        Column("share", _F, "fraction", "the workload's share of the GPU's newest minute"),
        Column("usd_per_hour", _F, "USD/h", "capital + operations, or the cloud price, × share"),
        Column("energy_usd_per_hour", _F, "USD/h", "measured energy × share (local GPUs)"),
        Column("price_basis", _S, "", "where the price came from"),
        Column(
            "activity_pct",
            _F,
            "%",
            "activity of the newest minute (SM active, else utilization.gpu)",
            renamed=("util_pct", 8),
        ),
        Column("power_w", _F, "W", "mean power draw of the newest minute"),
    ),
    "what every GPU costs per hour right now, per workload on it (/metrics)",
    key=("host", "gpu_uuid", "workload"),
    since=4,
)

# Wasted high-end GPU time over all history (migration 13) -----------------------------------------
RESULTS_WASTE_DAILY = Table(
    "results_waste_daily",
    (
        Column("day", _D, "", "the UTC day of this part of the run"),
        _HOST,
        Column("gpu_uuid", _S, "", "the GPU"),
        Column("gpu_model", _S, "", "its model", label="GPU"),
        Column("workload", _S, "", "the workload holding it"),
        Column("kind", _S, "", "allocated_idle | inefficient_busy | over_powered"),
        _PLACEMENT,
        Column(
            "run_started_at", UTC_TS, "", "start of the whole wasted run (with its key: the run)"
        ),
        Column("run_ended_at", UTC_TS, "", "end of the whole run, as far as the data goes"),
        Column("started_at", UTC_TS, "", "start of the run's part on this day"),
        Column("ended_at", UTC_TS, "", "end of the run's part on this day"),
        Column("duration_s", _F, "s", "clock seconds of the run on this day"),
        Column("wasted_s", _F, "GPU-s", "GPU-seconds wasted on this day"),
        Column(
            "wasted_usd",
            _F,
            "USD",
            "the wasted time of this day valued at the GPU's cost (over-powered: the price above"
            " the smaller class)",
            label="wasted USD",
        ),
        Column("usd_per_hour", _F, "USD/h", "the GPU's cost per hour", label="USD/h"),
        Column("price_basis", _S, "", "where the price came from"),
        Column("suggested_class", _S, "", "a smaller GPU class that fits (over_powered)"),
    ),
    "wasted high-end GPU time (DESIGN.md §2), one row per run and UTC day: the one figure the"
    " pages, the report and the alerts' money agree on",
    key=("day", "host", "gpu_uuid", "workload", "kind", "run_started_at"),
    since=13,
)

# Alerts (migration 4) ------------------------------------------------------------------------
_WASTED_USD = Column(
    "wasted_usd", _F, "USD", "the wasted time valued at the GPU's cost", label="wasted USD"
)
ALERTS = Table(
    "alerts",
    (
        Column("alert_id", _S, "", "stable id of the run"),
        _HOST,
        Column("gpu_uuid", _S, "", "the GPU"),
        Column("gpu_model", _S, "", "its model", label="GPU"),
        Column("workload", _S, "", "the workload holding it"),
        Column("kind", _S, "", "allocated_idle | inefficient_busy | over_powered"),
        Column("state", _S, "", "open | resolved"),
        Column("started_at", UTC_TS, "", "start of the wasted run", label="started (UTC)"),
        Column("ended_at", UTC_TS, "", "end of the run so far"),
        Column("resolved_at", UTC_TS, "", "when it was resolved"),
        Column("opened_at", UTC_TS, "", "when the alert was opened"),
        Column("updated_at", UTC_TS, "", "last check that changed it"),
        Column("duration_s", _F, "s", "length of the run", label="duration"),
        Column("wasted_s", _F, "GPU-s", "GPU-seconds wasted"),
        _WASTED_USD,
        Column("usd_per_hour", _F, "USD/h", "the GPU's cost per hour", label="USD/h"),
        _PLACEMENT,
        Column("price_basis", _S, "", "where the price came from"),
        Column("activity_pct", _F, "%", "activity over the run", label="activity %"),
        Column("util_pct", _F, "%", "utilization.gpu over the run"),
        Column("sm_active_pct", _F, "%", "SM active over the run, null where unknown"),
        Column("mem_used_max_gib", _F, "GiB", "peak memory used"),
        Column(
            "suggested_class",
            _S,
            "",
            "a smaller GPU class that fits (over_powered)",
            label="smaller GPU that fits",
        ),
        Column("notify", _B, "", "whether it is sent to the channels"),
    ),
    "wasted high-end GPU time, one row per run (DESIGN.md §2)",
    key=("alert_id",),
    since=4,
)
ALERT_EVENTS = Table(
    "alert_events",
    (
        Column("alert_id", _S, "", "the alert"),
        Column("ts", UTC_TS, "", "when"),
        Column("event", _S, "", "opened | resolved | suppressed"),
        Column("state", _S, "", "the alert's state after it"),
        Column("duration_s", _F, "s", "the run's length then"),
        _WASTED_USD,
        Column("note", _S, "", "why, in words"),
    ),
    "each alert's state history",
    key=("alert_id", "ts", "event"),
    since=4,
)
ALERT_DELIVERIES = Table(
    "alert_deliveries",
    (
        Column("delivery_id", _S, "", "the message"),
        Column("alert_id", _S, "", "the alert; null for a digest"),
        Column("event", _S, "", "opened | resolved | digest"),
        Column("channel", _S, "", "the channel it goes to"),
        Column("created_at", UTC_TS, "", "when it was queued"),
        Column("status", _S, "", "pending | sent | failed"),
        Column("attempts", _I32, "count", "attempts made"),
        Column("last_error", _S, "", "the last failure"),
        Column("delivered_at", UTC_TS, "", "when it was sent"),
        Column("message", _S, "", "the notification as JSON, so a restart can send it"),
    ),
    "the outbox: every message stored before it is sent",
    key=("delivery_id",),
    since=4,
)
ALERT_META = key_value_table("alert_meta", "the alert check's bookkeeping", since=4)

# The ledger's bookkeeping (migration 6) --------------------------------------------------------
LEDGER_DIRTY = Table(
    "ledger_dirty",
    (
        Column("day", _D, "", "a UTC day the ledger must recompute"),
        Column("kind", _S, "", "usage: attribute it again; cost: re-cost it"),
    ),
    "days an ingest touched",
    key=("day", "kind"),
    since=6,
)
LEDGER_HOSTS = Table(
    "ledger_hosts",
    (
        _HOST,
        Column("placement", _S, "", "local | cloud, as its ledger days were computed"),
        Column("owner", _S, "", "the workload its bill's tag names"),
    ),
    "the placement and owner each host's ledger days were computed with",
    key=("host",),
    since=6,
)
LEDGER_STATE = key_value_table(
    "ledger_state", "fingerprints of what the ledger was computed with", since=6
)

WAREHOUSE_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        META,
        INGESTED_FILES,
        GPU_SAMPLES_TABLE,
        PROCESS_SAMPLES_TABLE,
        HEALTH_TABLE,
        BILLING_ITEMS_TABLE,
        GPU_MINUTE,
        RESULTS_DAILY_LEDGER,
        RESULTS_USAGE_HOURLY,
        RESULTS_RECOMMENDATIONS,
        RESULTS_ALTERNATIVES,
        ALERTS,
        ALERT_EVENTS,
        ALERT_DELIVERIES,
        ALERT_META,
        RESULTS_GPU_COST_RATES,
        LEDGER_DIRTY,
        LEDGER_HOSTS,
        LEDGER_STATE,
        RESULTS_WASTE_DAILY,
        REJECTED_BATCHES,
        RESULTS_DEMAND_CURVES,
        RESULTS_WORKLOAD_EVIDENCE,
    )
}

# Every table of results (what the advisor and the alert check computed): replaced, never edited.
RESULT_TABLES = frozenset(name for name in WAREHOUSE_TABLES if name.startswith("results_"))
# Result tables the advisor replaces together, in this order (warehouse/results.py).
ADVISOR_RESULTS = (
    RESULTS_USAGE_HOURLY.name,
    RESULTS_DAILY_LEDGER.name,
    RESULTS_RECOMMENDATIONS.name,
    RESULTS_ALTERNATIVES.name,
    RESULTS_DEMAND_CURVES.name,
    RESULTS_WORKLOAD_EVIDENCE.name,
)

# A reading, not a table: bills per day, workload and resource (warehouse/store.py
# BILLING_DAILY_SQL; the snapshot's billing_daily). Money keeps one name per basis from the bill
# to the ledger: EffectiveCost -> effective_cost -> the ledger's cost_usd (cloud rows).
BILLING_DAILY = Table(
    "billing_daily",
    (
        Column("day", _D, "", "the UTC day of ChargePeriodStart"),
        Column("provider", _S, "", "FOCUS ProviderName"),
        Column("workload", _S, "", "the workload tag; untagged where none"),
        Column("resource_id", _S, "", "FOCUS ResourceId"),
        Column("instance_type", _S, "", "the instance type"),
        Column("currency", _S, "", "FOCUS BillingCurrency"),
        Column("source", _S, "", "focus | cur | aws_ce | demo"),
        Column("effective_cost", _F, "currency", "sum of FOCUS EffectiveCost"),
        Column("billed_cost", _F, "currency", "sum of FOCUS BilledCost"),
        Column("list_cost", _F, "currency", "sum of FOCUS ListCost"),
        Column("line_items", _I64, "count", "bill lines added up"),
    ),
    "the bill per day, workload and resource, every money basis kept",
    key=("day", "workload", "resource_id", "instance_type", "currency", "source", "provider"),
)
