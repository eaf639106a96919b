"""The daily cost ledger: GPU-hours, busy GPU-hours and money per day, placement and workload.

Pure functions, frames in and frames out (DESIGN.md §2, cost model):
- local: purchase price / (depreciation years x 8,760 h) + operations per GPU-hour for every
  sampled GPU-second, plus measured energy (power integrated over time x PUE x tariff);
  GPU time with no process goes to `__idle__`, as its own row;
- cloud: the bill's EffectiveCost by the resource's workload tag (`untagged` without one);
  telemetry from the instance gives its GPU-hours. Only USD is added up as cost_usd: a bill in
  another currency is kept beside, never summed with dollars.
"""

from __future__ import annotations

import math

import polars as pl

from config.settings import Config

HOURS_PER_YEAR = 8760.0
IDLE = "__idle__"
UNTAGGED = "untagged"


def local_rates(gpus: pl.DataFrame, cfg: Config, catalog: pl.DataFrame) -> pl.DataFrame:
    """Capital and operations USD per GPU-hour for each (host, gpu_model) in `gpus`.

    A host configured in [[local.hosts]] uses its own price and years; any other host the
    catalog purchase price of the model it reports and the [local] defaults.
    """
    configured = {h.name: h for h in cfg.local.hosts}
    prices = dict(
        catalog.filter(pl.col("kind") == "gpu")
        .select("gpu_model", "purchase_usd_per_gpu")
        .iter_rows()
    )
    rows = []
    for host, model in gpus.select("host", "gpu_model").unique().iter_rows():
        h = configured.get(host)
        years = cfg.local.depreciation_years
        ops = cfg.local.ops_usd_per_gpu_hour
        per_gpu = prices.get(model)
        if h is not None:
            years = h.depreciation_years if not math.isnan(h.depreciation_years) else years
            ops = h.ops_usd_per_gpu_hour if not math.isnan(h.ops_usd_per_gpu_hour) else ops
            if not math.isnan(h.purchase_usd):
                per_gpu = h.purchase_usd / h.gpu_count
        capital = (per_gpu or 0.0) / (years * HOURS_PER_YEAR)
        rows.append((host, model, capital, ops, per_gpu is not None))
    return pl.DataFrame(
        rows,
        schema={
            "host": pl.String,
            "gpu_model": pl.String,
            "capital_usd_per_gpu_hour": pl.Float64,
            "ops_usd_per_gpu_hour": pl.Float64,
            "priced": pl.Boolean,
        },
        orient="row",
    )


def cloud_hosts(billing_daily: pl.DataFrame) -> pl.DataFrame:
    """Resources the bill names, with the workload their tag gives (host id = ResourceId)."""
    return (
        billing_daily.filter(pl.col("resource_id").is_not_null())
        .group_by("resource_id")
        .agg(pl.col("workload").drop_nulls().first().alias("owner"))
        .rename({"resource_id": "host"})
    )


def daily_ledger(
    minutes: pl.DataFrame,
    billing_daily: pl.DataFrame,
    rates: pl.DataFrame,
    *,
    price_per_kwh: float,
    pue: float,
) -> pl.DataFrame:
    """One row per (day, placement, workload, host, gpu_model).

    `minutes` are gpu_minute rollups; `billing_daily` has day, workload, resource_id, currency,
    effective_cost (the snapshot's billing_daily shape).
    """
    owners = cloud_hosts(billing_daily)
    usage = (
        minutes.join(owners, on="host", how="left")
        .with_columns(
            day=pl.col("minute").dt.date(),
            placement=pl.when(
                pl.col("owner").is_not_null() | pl.col("host").is_in(owners["host"].implode())
            )
            .then(pl.lit("cloud"))
            .otherwise(pl.lit("local")),
        )
        .with_columns(
            # Unallocated time: local GPUs -> __idle__; a cloud instance's stays with its owner.
            workload=pl.coalesce(
                "workload",
                pl.when(pl.col("placement") == "cloud")
                .then(pl.coalesce("owner", pl.lit(UNTAGGED)))
                .otherwise(pl.lit(IDLE)),
            )
        )
        .join(rates, on=["host", "gpu_model"], how="left")
        .with_columns(
            cost_usd=pl.when(pl.col("placement") == "local")
            .then(
                pl.col("seconds")
                / 3600.0
                * (
                    pl.col("capital_usd_per_gpu_hour").fill_null(0.0)
                    + pl.col("ops_usd_per_gpu_hour").fill_null(0.0)
                )
                + pl.col("energy_j").fill_null(0.0) / 3.6e6 * pue * price_per_kwh
            )
            .otherwise(0.0)
        )
        .group_by("day", "placement", "workload", "host", "gpu_model")
        .agg(
            gpu_hours=pl.col("seconds").sum() / 3600.0,
            busy_gpu_hours=pl.col("busy_seconds").sum() / 3600.0,
            cost_usd=pl.col("cost_usd").sum(),
        )
        .with_columns(currency=pl.lit("USD"))
    )
    bills = (
        billing_daily.filter(pl.col("currency") == "USD")
        .group_by("day", "workload", "resource_id")
        .agg(cost_usd=pl.col("effective_cost").sum())
        .select(
            "day",
            placement=pl.lit("cloud"),
            workload=pl.col("workload").fill_null(UNTAGGED),
            host=pl.col("resource_id"),
            gpu_model=pl.lit(None, pl.String),
            gpu_hours=pl.lit(0.0),
            busy_gpu_hours=pl.lit(0.0),
            cost_usd="cost_usd",
            currency=pl.lit("USD"),
        )
    )
    # Cloud usage rows carry hours, bill rows carry money: merge them per (day, workload, host).
    merged = (
        pl.concat([usage, bills], how="vertical_relaxed")
        .group_by("day", "placement", "workload", "host")
        .agg(
            gpu_model=pl.col("gpu_model").drop_nulls().first(),
            gpu_hours=pl.col("gpu_hours").sum(),
            busy_gpu_hours=pl.col("busy_gpu_hours").sum(),
            cost_usd=pl.col("cost_usd").sum(),
            currency=pl.col("currency").first(),
        )
        .sort("day", "placement", "workload", "host")
    )
    return merged.select(
        "day",
        "placement",
        "workload",
        "host",
        "gpu_model",
        "gpu_hours",
        "busy_gpu_hours",
        "cost_usd",
        "currency",
    )
