"""The recommendations as tables: one row per workload (RECOMMENDATION_SCHEMA) and one per
alternative considered (ALTERNATIVE_SCHEMA), and `recommendations`, the whole way there from the
hourly usage and the ledger: measure, price the alternatives, choose."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from advisor.recommend.alternatives import Alternative
from advisor.recommend.choose import ACTIONS, Recommendation, recommend_profiles
from advisor.recommend.params import Params
from advisor.recommend.profiles import measured_profiles
from advisor.recommend.usage import Window, observed_window

RECOMMENDATION_SCHEMA: dict[str, pl.DataType] = {
    "computed_at": pl.Datetime("us", "UTC"),
    "window_start": pl.Datetime("us", "UTC"),
    "window_end": pl.Datetime("us", "UTC"),
    "days_observed": pl.Float64(),
    "workload": pl.String(),
    "placement": pl.String(),
    "sensitive": pl.Boolean(),
    "hosts": pl.String(),
    "instance_type": pl.String(),
    "gpu_model": pl.String(),
    "gpus": pl.Int32(),
    "gpu_hours_per_month": pl.Float64(),
    "busy_fraction": pl.Float64(),
    "duty_cycle": pl.Float64(),
    "peak_memory_gib": pl.Float64(),
    "current_monthly_cost_usd": pl.Float64(),
    "action": pl.String(),
    "alternative": pl.String(),
    "alternative_monthly_cost_usd": pl.Float64(),
    "monthly_savings_usd": pl.Float64(),
    "upfront_usd": pl.Float64(),
    "break_even_months": pl.Float64(),
    "confidence": pl.Float64(),
    "reasons": pl.List(pl.String()),
}

ALTERNATIVE_SCHEMA: dict[str, pl.DataType] = {
    "computed_at": pl.Datetime("us", "UTC"),
    "workload": pl.String(),
    "option": pl.String(),
    "kind": pl.String(),
    "placement": pl.String(),
    "gpu_model": pl.String(),
    "gpus": pl.Int32(),
    "instance_type": pl.String(),
    "host": pl.String(),
    "monthly_cost_usd": pl.Float64(),
    "monthly_savings_usd": pl.Float64(),
    "upfront_usd": pl.Float64(),
    "break_even_months": pl.Float64(),
    "feasible": pl.Boolean(),
    "chosen": pl.Boolean(),
    "note": pl.String(),
}


def recommendations(
    usage: pl.DataFrame,
    ledger: pl.DataFrame,
    instances: pl.DataFrame,
    catalog: pl.DataFrame,
    params: Params,
    sensitive: set[str] | frozenset[str],
    *,
    end: datetime,
    now: datetime | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Recommendations (RECOMMENDATION_SCHEMA) and every alternative (ALTERNATIVE_SCHEMA) for the
    window of `params.window_days` whole days before `end`."""
    now = now or datetime.now(UTC)
    window = observed_window(usage, end, params.window_days)
    profiles, capacity = measured_profiles(
        usage, ledger, instances, catalog, params, sensitive, window
    )
    recs = recommend_profiles(profiles, capacity, catalog, params)
    return recommendation_frames(recs, window, now)


def recommendation_frames(
    recs: list[Recommendation], window: Window, now: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The recommendations, the most saved first, and their alternatives, by workload and cost."""
    rows = [
        {
            "computed_at": now,
            "window_start": window.start,
            "window_end": window.end,
            **r.as_row(),
        }
        for r in recs
    ]
    alt_rows = [_alternative_row(r, a, now) for r in recs for a in r.alternatives]
    recs_frame = _frame(rows, RECOMMENDATION_SCHEMA)
    alts_frame = _frame(alt_rows, ALTERNATIVE_SCHEMA)
    order = {a: i for i, a in enumerate(ACTIONS)}
    recs_frame = recs_frame.sort(
        pl.col("monthly_savings_usd").fill_null(0) * -1,
        pl.col("action").replace_strict(order, default=9),
        "workload",
    )
    return recs_frame, alts_frame.sort("workload", "monthly_cost_usd", "option")


def _frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def _alternative_row(r: Recommendation, a: Alternative, now: datetime) -> dict[str, Any]:
    return {
        "computed_at": now,
        "workload": r.profile.workload,
        "option": a.option,
        "kind": a.kind,
        "placement": a.placement,
        "gpu_model": a.gpu_model,
        "gpus": a.gpus,
        "instance_type": a.instance_type,
        "host": a.host,
        "monthly_cost_usd": a.monthly_cost,
        "monthly_savings_usd": a.monthly_savings,
        "upfront_usd": a.upfront,
        "break_even_months": a.break_even_months,
        "feasible": a.feasible,
        "chosen": a is r.chosen,
        "note": a.note,
    }
