"""Tables shown on several pages, built the same way everywhere."""

from __future__ import annotations

import polars as pl
import streamlit as st

from tables.records import GPU_SAMPLES
from tables.units import MIB_PER_GIB, activity


def busy_text(
    busy_gpu_hours: float | None, activity_gpu_hours: float | None, gpu_hours: float | None
) -> str:
    """Busy GPU-hours over those with an activity signal, as a percentage; "unknown" where no
    hour had a signal (a MIG instance without DCGM profiling), never 0 %; "n/a" without any
    GPU-hours."""
    if not gpu_hours:
        return "n/a"
    if not activity_gpu_hours:
        return "unknown"
    return f"{(busy_gpu_hours or 0.0) / activity_gpu_hours:.0%}"


def busy_column(fraction: str = "busy_fraction", name: str = "busy %") -> pl.Expr:
    """A busy fraction column as text: "12.5 %", or "unknown" where it is null."""
    return (
        pl.when(pl.col(fraction).is_null())
        .then(pl.lit("unknown"))
        .otherwise(pl.format("{} %", (pl.col(fraction) * 100).round(1)))
        .alias(name)
    )


def gpu_table(samples: pl.DataFrame, *, with_host: bool = True) -> None:
    """One row per GPU: activity (the best signal, labelled), memory, power, workload."""
    label = GPU_SAMPLES.label  # headings from the definitions (tables/records.py)
    columns = [
        *(["host"] if with_host else []),
        pl.col("gpu_index").alias(label("gpu_index")),
        pl.col("gpu_model").alias(label("gpu_model")),
        activity().alias("activity %"),
        pl.when(pl.col("sm_active_pct").is_not_null())
        .then(pl.lit("SM active (") + pl.col("activity_kind") + pl.lit(")"))
        .otherwise(pl.lit("GPU util (nvml)"))
        .alias("signal"),
        (pl.col("mem_used_mib") / MIB_PER_GIB).round(1).alias(label("mem_used_mib")),
        (pl.col("mem_total_mib") / MIB_PER_GIB).round(0).alias(label("mem_total_mib")),
        pl.col("power_w").round(0).alias(label("power_w")),
        pl.col("workload").fill_null("—"),
    ]
    st.dataframe(
        samples.select(columns),
        hide_index=True,
        width="stretch",
        column_config={
            "activity %": st.column_config.ProgressColumn(  # busy is good: green when busy
                "activity %", min_value=0, max_value=100, format="%.0f%%", color="auto"
            )
        },
    )
