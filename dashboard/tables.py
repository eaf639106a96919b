"""Tables shown on several pages, built the same way everywhere."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.live_view import of_text, signal_words
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
    """One row per GPU: activity (the best signal, labelled), memory and power against the GPU's
    (`40.5 of 80 GiB`, `350 of 700 W`), workload."""
    label = GPU_SAMPLES.label  # headings from the definitions (tables/records.py)
    columns = [
        *(["host"] if with_host else []),
        pl.col("gpu_index").alias(label("gpu_index")),
        pl.col("gpu_model").fill_null("—").alias(label("gpu_model")),
        activity().alias("activity %"),
        signal_words().alias("signal"),
        of_text(
            pl.col("mem_used_mib") / MIB_PER_GIB, pl.col("mem_total_mib") / MIB_PER_GIB, "GiB", 1
        ).alias("memory"),
        of_text(pl.col("power_w"), pl.col("power_limit_w"), "W", 0).alias("power"),
        pl.col("workload").fill_null("no process"),
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
