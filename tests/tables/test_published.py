"""The published records (tables/published.py) are what the CLI and the CSV download print: their
fields and order are the ones DESIGN.md §3 and users' scripts rely on, as they were before the
definitions existed (the lists below are copied from the hand-written code they replaced)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import polars as pl

from advisor.alerts import contract_row
from cli.commands.recommend import _alternative_rows, contract_rows
from tables.published import ALERT, ALTERNATIVE, COSTS, RECOMMENDATION, RECOMMENDATIONS_CSV
from tables.stored import (
    ALERTS,
    RESULTS_ALTERNATIVES,
    RESULTS_DAILY_LEDGER,
    RESULTS_RECOMMENDATIONS,
)
from warehouse.advisor_reads import recommendations_csv, summarize_ledger

T = datetime(2026, 11, 2, tzinfo=UTC)
RECOMMEND_JSON = [
    "workload", "action", "current_monthly_cost_usd", "monthly_savings_usd", "break_even_months",
    "confidence", "reasons", "placement", "sensitive", "gpu_model", "gpus", "hosts",
    "instance_type", "gpu_hours_per_month", "busy_fraction", "duty_cycle", "peak_memory_gib",
    "alternative", "alternative_monthly_cost_usd", "upfront_usd", "days_observed", "window_start",
    "window_end", "gpus_after", "assumption", "busy_gpus_p95", "memory_total_gib",
    "freed_capacity_usd", "schedule", "schedule_hours_per_month", "schedule_savings_usd",
    "confidence_level", "confidence_reasons",
]  # fmt: skip
ALERT_JSON = [
    "alert_id", "workload", "host", "gpu_uuid", "gpu_model", "kind", "state", "started_at",
    "ended_at", "resolved_at", "duration_s", "wasted_usd", "usd_per_hour", "placement",
    "price_basis", "activity_pct", "suggested_class",
]  # fmt: skip
COSTS_JSON = [
    "workload", "placement", "gpu_hours", "busy_gpu_hours", "activity_gpu_hours",
    "idle_gpu_hours", "cost_usd", "idle_cost_usd", "billed_cost_usd", "list_cost_usd",
    "energy_kwh", "unpriced_gpu_hours", "busy_fraction",
]  # fmt: skip
RECOMMENDATIONS_CSV_HEADER = [
    "workload", "action", "placement", "gpu_model", "gpus", "alternative",
    "current_monthly_cost_usd", "alternative_monthly_cost_usd", "monthly_savings_usd",
    "upfront_usd", "break_even_months", "confidence", "busy_fraction", "duty_cycle",
    "peak_memory_gib", "gpu_hours_per_month", "days_observed", "gpus_after", "assumption",
    "freed_capacity_usd", "schedule", "schedule_savings_usd", "confidence_level", "reasons",
]  # fmt: skip
ALTERNATIVES_JSON = [
    "workload", "option", "kind", "monthly_cost_usd", "monthly_savings_usd", "break_even_months",
    "feasible", "chosen", "note", "provider",
]  # fmt: skip


def recommendation() -> pl.DataFrame:
    row = {
        "computed_at": T, "window_start": T, "window_end": T, "days_observed": 30.0,
        "workload": "llm", "placement": "cloud", "sensitive": False, "hosts": "i-0abc",
        "instance_type": "p5.48xlarge", "gpu_model": "H100", "gpus": 8,
        "gpu_hours_per_month": 5840.0, "busy_fraction": 0.91234, "duty_cycle": 1.0,
        "peak_memory_gib": 71.256, "current_monthly_cost_usd": 71_937.456, "action": "buy_local",
        "alternative": "buy 8 x H100", "alternative_monthly_cost_usd": 20_000.004,
        "monthly_savings_usd": 51_937.452, "upfront_usd": 240_000.0,
        "break_even_months": 4.6209, "confidence": 0.9, "reasons": ["a", "b"],
    }  # fmt: skip
    return pl.DataFrame([row], schema=RESULTS_RECOMMENDATIONS.polars_schema)


def test_recommend_json_fields_come_in_their_published_order():
    (row,) = contract_rows(recommendation())
    assert list(row) == RECOMMEND_JSON == list(RECOMMENDATION.names)
    assert RECOMMENDATION.required == tuple(RECOMMEND_JSON[:7])
    # money to the cent, break-even to a tenth, fractions to 4 places
    assert (row["current_monthly_cost_usd"], row["break_even_months"]) == (71_937.46, 4.6)
    assert (row["busy_fraction"], row["peak_memory_gib"]) == (0.9123, 71.26)


def test_the_recommendations_csv_has_its_published_header_and_rounding():
    text = recommendations_csv(recommendation())
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert list(row) == RECOMMENDATIONS_CSV_HEADER == list(RECOMMENDATIONS_CSV.names)
    assert row["reasons"] == "a | b" and row["monthly_savings_usd"] == "51937.45"
    assert row["gpu_hours_per_month"] == "5840.0" and row["busy_fraction"] == "0.9123"


def test_alert_json_fields_come_in_their_published_order():
    alert = {name: None for name in ALERTS.names} | {"started_at": T, "wasted_usd": 1 / 3}
    row = contract_row(alert)
    assert list(row) == ALERT_JSON == list(ALERT.names)
    assert row["started_at"] == T.isoformat() and row["wasted_usd"] == 0.333333
    assert set(ALERT.required) == {
        "workload", "host", "gpu_uuid", "kind", "state", "started_at", "duration_s", "wasted_usd"
    }  # fmt: skip


def test_costs_rows_come_in_their_published_order_whatever_they_are_grouped_by():
    ledger = pl.DataFrame(
        [{"day": date(2026, 11, 2), "placement": "local", "workload": "llm", "host": "h",
          "gpu_model": "H100", "gpu_hours": 2.0, "busy_gpu_hours": 1.0, "cost_usd": 3.0}],
        schema=RESULTS_DAILY_LEDGER.polars_schema,
    )  # fmt: skip
    assert summarize_ledger(ledger).columns == COSTS_JSON == list(COSTS.names)
    assert summarize_ledger(ledger, "host").columns == ["host", *COSTS_JSON[1:]]
    assert summarize_ledger(ledger, "placement").columns == COSTS_JSON[1:]
    assert set(COSTS.required) == {
        "workload",
        "placement",
        "gpu_hours",
        "busy_gpu_hours",
        "cost_usd",
    }


def test_recommend_alternatives_rows_come_in_their_order():
    alts = pl.DataFrame(
        [{"workload": "llm", "option": "spare", "monthly_cost_usd": 1.234, "feasible": True}],
        schema=RESULTS_ALTERNATIVES.polars_schema,
    )
    (row,) = _alternative_rows(alts, "json")
    assert list(row) == ALTERNATIVES_JSON == list(ALTERNATIVE.names)
    assert row["monthly_cost_usd"] == 1.23
