"""The recommendations as tables: one row per workload (RECOMMENDATION_SCHEMA), one per
alternative considered (ALTERNATIVE_SCHEMA) and the hourly demand curve of each workload told to
go hybrid (DEMAND_CURVE_SCHEMA); `recommendation_results` (and `recommendations`, its first two)
the whole way there from the hourly usage and the ledger: measure, price the alternatives,
choose."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from advisor.recommend.alternatives import Alternative
from advisor.recommend.choose import ACTIONS, Recommendation, recommend_profiles
from advisor.recommend.params import Params, with_clouds
from advisor.recommend.profiles import measured_profiles
from advisor.recommend.usage import Window, observed_window
from tables.stored import RESULTS_ALTERNATIVES, RESULTS_DEMAND_CURVES, RESULTS_RECOMMENDATIONS

RECOMMENDATION_SCHEMA: dict[str, pl.DataType] = RESULTS_RECOMMENDATIONS.polars_schema
ALTERNATIVE_SCHEMA: dict[str, pl.DataType] = RESULTS_ALTERNATIVES.polars_schema
DEMAND_CURVE_SCHEMA: dict[str, pl.DataType] = RESULTS_DEMAND_CURVES.polars_schema


@dataclass
class RecommendationResults:
    """What one run of the recommendations publishes."""

    recommendations: pl.DataFrame  # RECOMMENDATION_SCHEMA
    alternatives: pl.DataFrame  # ALTERNATIVE_SCHEMA
    curves: pl.DataFrame  # DEMAND_CURVE_SCHEMA


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
    evidence: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Recommendations (RECOMMENDATION_SCHEMA) and every alternative (ALTERNATIVE_SCHEMA) for the
    window of `params.window_days` whole days before `end`."""
    out = recommendation_results(
        usage, ledger, instances, catalog, params, sensitive, end=end, now=now, evidence=evidence
    )
    return out.recommendations, out.alternatives


def recommendation_results(
    usage: pl.DataFrame,
    ledger: pl.DataFrame,
    instances: pl.DataFrame,
    catalog: pl.DataFrame,
    params: Params,
    sensitive: set[str] | frozenset[str],
    *,
    end: datetime,
    now: datetime | None = None,
    evidence: pl.DataFrame | None = None,
) -> RecommendationResults:
    """The recommendations, their alternatives and the hybrids' demand curves for the window of
    `params.window_days` whole days before `end`; `evidence`: results_workload_evidence rows
    (warehouse/evidence.py), where the raw data was at hand."""
    now = now or datetime.now(UTC)
    billed = instances["instance_type"].to_list() if "instance_type" in instances.columns else []
    params = with_clouds(params, billed, catalog)
    window = observed_window(usage, end, params.window_days)
    profiles, capacity = measured_profiles(
        usage, ledger, instances, catalog, params, sensitive, window, evidence
    )
    recs = recommend_profiles(profiles, capacity, catalog, params)
    frames = recommendation_frames(recs, window, now)
    return RecommendationResults(*frames, demand_curves(recs, window, now))


def demand_curves(recs: list[Recommendation], window: Window, now: datetime) -> pl.DataFrame:
    """The hourly demand curve and chosen base line of every workload told to go hybrid."""
    rows = []
    for r in recs:
        c, load = r.chosen, r.profile.load
        if r.action != "hybrid" or c is None or load is None:
            continue
        for i, gpus in enumerate(load.curve):
            rows.append(
                {
                    "computed_at": now,
                    "workload": r.profile.workload,
                    "hour": window.start + timedelta(hours=i),
                    "gpus": gpus,
                    "base_gpus": c.base_gpus,
                }
            )
    return _frame(rows, DEMAND_CURVE_SCHEMA)


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
        (pl.col("monthly_savings_usd").fill_null(0) + pl.col("freed_capacity_usd").fill_null(0))
        * -1,
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
