"""The recommendations as tables: one row per workload (RECOMMENDATION_SCHEMA) and one per
alternative considered (ALTERNATIVE_SCHEMA), and `recommendations`, the whole way there from the
hourly usage and the ledger: measure, price the alternatives, choose."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from advisor.recommend.alternatives import Alternative
from advisor.recommend.choose import ACTIONS, Recommendation, recommend_profiles
from advisor.recommend.params import Params, with_clouds
from advisor.recommend.profiles import measured_profiles
from advisor.recommend.usage import Window, observed_window
from tables.stored import RESULTS_ALTERNATIVES, RESULTS_RECOMMENDATIONS

RECOMMENDATION_SCHEMA: dict[str, pl.DataType] = RESULTS_RECOMMENDATIONS.polars_schema
ALTERNATIVE_SCHEMA: dict[str, pl.DataType] = RESULTS_ALTERNATIVES.polars_schema


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
    billed = instances["instance_type"].to_list() if "instance_type" in instances.columns else []
    params = with_clouds(params, billed, catalog)
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
        "provider": a.provider,
    }
