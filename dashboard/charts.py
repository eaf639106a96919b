"""Altair charts, with the same colors for cloud and local everywhere."""

from __future__ import annotations

import altair as alt
import polars as pl

PLACEMENT_COLORS = alt.Scale(domain=["cloud", "local"], range=["#4C78A8", "#F58518"])


def daily_by_workload(daily: pl.DataFrame, title: str) -> alt.Chart:
    """Stacked bars per day, one color per workload (cost in USD)."""
    return (
        alt.Chart(
            daily.with_columns(label=pl.col("day").dt.strftime("%b %d")).to_pandas(), title=title
        )
        .mark_bar()
        .encode(
            x=alt.X("label:O", title=None, sort=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("cost_usd:Q", title="USD", stack=True),
            color=alt.Color("workload:N", title="workload"),
            tooltip=[
                alt.Tooltip("day:T", title="day"),
                alt.Tooltip("workload:N"),
                alt.Tooltip("cost_usd:Q", title="USD", format="$,.2f"),
            ],
        )
        .properties(height=260)
    )


def daily_by_placement(daily: pl.DataFrame, value: str, title: str, fmt: str) -> alt.Chart:
    """Stacked bars per day, cloud and local."""
    return (
        alt.Chart(
            daily.with_columns(label=pl.col("day").dt.strftime("%b %d")).to_pandas(), title=title
        )
        .mark_bar()
        .encode(
            x=alt.X("label:O", title=None, sort=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y(f"{value}:Q", title=title, stack=True),
            color=alt.Color("placement:N", scale=PLACEMENT_COLORS, title="placement"),
            tooltip=[
                alt.Tooltip("day:T", title="day"),
                alt.Tooltip("placement:N"),
                alt.Tooltip(f"{value}:Q", title=title, format=fmt),
            ],
        )
        .properties(height=260)
    )
