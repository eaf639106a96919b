"""Alerts: wasted high-end GPU time, open and recent, and the money wasted per workload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import polars as pl
import streamlit as st

from dashboard import data
from tables.stored import ALERTS
from warehouse.alerts import snapshot_alerts, snapshot_waste_by_workload

DAYS = 7
KIND_LABELS = {
    "allocated_idle": "allocated, idle",
    "inefficient_busy": "busy, inefficient",
    "over_powered": "over-powered",
}


@st.cache_data(ttl=10, show_spinner=False)
def alerts_view(days: int, version: str) -> dict[str, pl.DataFrame]:
    """Open and recent alerts and the waste per workload; `version` (publish time) keys it."""
    snap = data.snapshot()
    since = datetime.now(UTC) - timedelta(days=days)
    return {
        "alerts": snapshot_alerts(snap, since),
        "by_workload": snapshot_waste_by_workload(snap, since),
    }


def alert_table(frame: pl.DataFrame) -> None:
    label = ALERTS.label  # headings from the definitions (tables/stored.py)
    table = frame.select(
        "workload",
        "host",
        pl.col("gpu_model").alias(label("gpu_model")),
        pl.col("kind").replace_strict(KIND_LABELS, default=pl.col("kind")).alias(label("kind")),
        pl.col("started_at").dt.strftime("%Y-%m-%d %H:%M").alias(label("started_at")),
        (pl.col("duration_s") / 3600).round(2).alias(label("duration_s")),
        pl.col("wasted_usd").round(2).alias(label("wasted_usd")),
        pl.col("usd_per_hour").round(4).alias(label("usd_per_hour")),
        pl.col("activity_pct").round(1).alias(label("activity_pct")),
        pl.col("suggested_class").fill_null("").alias(label("suggested_class")),
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={label("wasted_usd"): st.column_config.NumberColumn(format="$%.2f")},
    )


st.title("Alerts")
st.caption(
    "Wasted high-end GPU time: allocated but idle, busy but inefficient (SM active low), or "
    "over-powered (a smaller GPU class would do), valued at the GPU's cost per second."
)

if not data.snapshot_ready():
    st.info("No snapshot yet: `gpuledger run` publishes one after its first ingest.")
    st.stop()

view = alerts_view(DAYS, data.published_at())
alerts, by_workload = view["alerts"], view["by_workload"]
open_ = alerts.filter(pl.col("state") == "open")
recent = alerts.filter(pl.col("state") != "open")

c1, c2, c3 = st.columns(3)
c1.metric("Open alerts", f"{open_.height}")
c2.metric(
    f"Wasted, last {DAYS} days",
    f"${by_workload['wasted_usd'].sum():,.2f}",
    help="open alerts so far and alerts that ended in the window",
)
c3.metric(f"Wasted GPU-hours, last {DAYS} days", f"{by_workload['wasted_gpu_hours'].sum():,.1f}")

st.subheader("Open")
if open_.height:
    alert_table(open_)
else:
    st.success("No open alerts: no high-end GPU is wasting time right now.")

st.subheader(f"Money wasted per workload, last {DAYS} days")
if by_workload.height:
    chart_data = by_workload.with_columns(
        pl.col("kind").replace_strict(KIND_LABELS, default=pl.col("kind"))
    )
    st.altair_chart(
        alt.Chart(chart_data.to_pandas(), title="Wasted USD per workload")
        .mark_bar()
        .encode(
            y=alt.Y("workload:N", sort="-x", title=None),
            x=alt.X("wasted_usd:Q", title="wasted USD", stack=True),
            color=alt.Color("kind:N", title="kind"),
            tooltip=[
                alt.Tooltip("workload:N"),
                alt.Tooltip("kind:N"),
                alt.Tooltip("alerts:Q"),
                alt.Tooltip("wasted_gpu_hours:Q", title="GPU-hours", format=",.1f"),
                alt.Tooltip("wasted_usd:Q", title="USD", format="$,.2f"),
            ],
        )
        .properties(height=max(120, 40 * chart_data["workload"].n_unique())),
        width="stretch",
    )
else:
    st.info(f"No wasted high-end GPU time in the last {DAYS} days.")

st.subheader(f"Recent, last {DAYS} days")
if recent.height:
    alert_table(recent)
else:
    st.info("No resolved alerts in the window.")
