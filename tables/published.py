"""The records the product publishes (DESIGN.md §3 contracts): the elements of the JSON arrays
`costs`, `recommend` and `alerts --format json` print, and the recommendations CSV download.

Each is a definition whose columns are the stored ones they come from (same name, type, unit,
meaning and heading), in the order they are printed; `required` names the fields the contract
promises. The CLI (cli/commands/) and the dashboard take their field lists and headings from here;
tests/cli check the order and the fields, which never change without DESIGN.md.
"""

from __future__ import annotations

import polars as pl

from tables.columns import Column, Table
from tables.stored import (
    ALERTS,
    RESULTS_ALTERNATIVES,
    RESULTS_DAILY_LEDGER,
    RESULTS_RECOMMENDATIONS,
)

_F = pl.Float64()

# `costs --format json`: the ledger added up per workload (or `--by` host, gpu_model, placement:
# that column then comes first instead of workload) and placement. __idle__ is its own workload.
_LEDGER = RESULTS_DAILY_LEDGER
COSTS = Table(
    "costs",
    (
        _LEDGER["workload"],
        _LEDGER["placement"],
        _LEDGER["gpu_hours"],
        _LEDGER["busy_gpu_hours"],
        _LEDGER["activity_gpu_hours"],
        _LEDGER["idle_gpu_hours"],
        _LEDGER["cost_usd"],
        _LEDGER["idle_cost_usd"],
        _LEDGER["billed_cost_usd"],
        _LEDGER["list_cost_usd"],
        _LEDGER["energy_kwh"],
        _LEDGER["unpriced_gpu_hours"],
        Column(
            "busy_fraction",
            _F,
            "fraction",
            "busy ÷ GPU-hours with an activity signal; null (unknown, never 0) where none had one",
            label="busy %",
        ),
    ),
    "GPU-hours, busy GPU-hours and money per workload and placement over [since, until)",
    key=("workload", "placement"),
    required=("workload", "placement", "gpu_hours", "busy_gpu_hours", "cost_usd"),
)
# What `--by` may group the costs by (the first column of a COSTS row).
COSTS_GROUP_BY = ("workload", "host", "gpu_model", "placement")

# `recommend --format json` (and --format csv with reasons joined): the contract's fields first.
_RECOMMENDATION_CONTRACT = (
    "workload",
    "action",
    "current_monthly_cost_usd",
    "monthly_savings_usd",
    "break_even_months",
    "confidence",
    "reasons",
)
RECOMMENDATION = RESULTS_RECOMMENDATIONS.select(
    *_RECOMMENDATION_CONTRACT,
    "placement",
    "sensitive",
    "gpu_model",
    "gpus",
    "hosts",
    "instance_type",
    "gpu_hours_per_month",
    "busy_fraction",
    "duty_cycle",
    "peak_memory_gib",
    "alternative",
    "alternative_monthly_cost_usd",
    "upfront_usd",
    "days_observed",
    "window_start",
    "window_end",
    "gpus_after",
    "assumption",
    "busy_gpus_p95",
    "memory_total_gib",
    "freed_capacity_usd",
    "schedule",
    "schedule_hours_per_month",
    "schedule_savings_usd",
    "confidence_level",
    "confidence_reasons",
    name="recommendation",
    meaning="where a workload should run, with the arithmetic (DESIGN.md §2 Recommendation)",
    required=_RECOMMENDATION_CONTRACT,
)

# The dashboard's "Download CSV" of recommendations (money to the cent, reasons joined).
RECOMMENDATIONS_CSV = Table(
    "recommendations_csv",
    tuple(
        RESULTS_RECOMMENDATIONS[n]
        for n in (
            "workload",
            "action",
            "placement",
            "gpu_model",
            "gpus",
            "alternative",
            "current_monthly_cost_usd",
            "alternative_monthly_cost_usd",
            "monthly_savings_usd",
            "upfront_usd",
            "break_even_months",
            "confidence",
            "busy_fraction",
            "duty_cycle",
            "peak_memory_gib",
            "gpu_hours_per_month",
            "days_observed",
            "gpus_after",
            "assumption",
            "freed_capacity_usd",
            "schedule",
            "schedule_savings_usd",
            "confidence_level",
        )
    )
    + (Column("reasons", pl.String(), "", "the arithmetic in words, joined with ' | '"),),
    "recommendations as the dashboard's CSV download",
    key=("workload",),
)

# `recommend --alternatives`: every option considered for a workload, feasible or not.
ALTERNATIVE = RESULTS_ALTERNATIVES.select(
    "workload",
    "option",
    "kind",
    "monthly_cost_usd",
    "monthly_savings_usd",
    "break_even_months",
    "feasible",
    "chosen",
    "note",
    "provider",
    name="alternative",
    meaning="an option considered for a workload, with its monthly cost and why (not) feasible",
)

# `alerts --format json`: one element per open or recent alert.
ALERT = ALERTS.select(
    "alert_id",
    "workload",
    "host",
    "gpu_uuid",
    "gpu_model",
    "kind",
    "state",
    "started_at",
    "ended_at",
    "resolved_at",
    "duration_s",
    "wasted_usd",
    "usd_per_hour",
    "placement",
    "price_basis",
    "activity_pct",
    "suggested_class",
    name="alert",
    meaning="an alert on wasted high-end GPU time",
    required=(
        "workload",
        "host",
        "gpu_uuid",
        "kind",
        "state",
        "started_at",
        "duration_s",
        "wasted_usd",
    ),
)

PUBLISHED: dict[str, Table] = {
    t.name: t for t in (COSTS, RECOMMENDATION, RECOMMENDATIONS_CSV, ALTERNATIVE, ALERT)
}
