"""Alerts: wasted high-end GPU time. The money wasted per workload over the chosen days (the
sidebar's filters, as on the Overview) is the stored waste (the same figure the Overview and the
weekly report show for those days); the alerts, open and recent, are the live notification layer
on top of it."""

from __future__ import annotations

from datetime import datetime

import altair as alt
import polars as pl
import streamlit as st

from dashboard import charts, data, filters
from dashboard.format import (
    KIND_WORDS,
    dash,
    duration_text,
    money_column,
    number_text,
    plural,
    usd,
    words_column,
)
from tables.stored import ALERTS
from warehouse.alerts import snapshot_alerts

CHECKING = "checking…"


@st.cache_data(ttl=10, show_spinner=False)
def alerts_view(since: datetime, until: datetime, version: str) -> pl.DataFrame:
    """Open alerts and those whose run ended in [since, until); `version` (publish time) keys
    it."""
    alerts = snapshot_alerts(data.snapshot(), since)
    return alerts.filter((pl.col("state") == "open") | (pl.col("ended_at") < until))


def chosen_alerts(alerts: pl.DataFrame, flt: filters.Filters) -> pl.DataFrame:
    """The alerts of the sidebar's hosts, workloads and placements."""
    for column in ("host", "workload", "placement"):
        if flt.matches(column):
            alerts = alerts.filter(pl.col(column).is_in(flt.matches(column)))
    return alerts


def alert_table(frame: pl.DataFrame) -> None:
    label = ALERTS.label  # headings from the definitions (tables/stored.py)
    table = frame.select(
        "workload",
        "host",
        dash("gpu_model", label("gpu_model")),
        words_column("kind", KIND_WORDS, label("kind")),
        pl.col("started_at").dt.strftime("%Y-%m-%d %H:%M").alias(label("started_at")),
        duration_text("duration_s", label("duration_s")),
        pl.col("wasted_usd").fill_null(0.0).alias(label("wasted_usd")),
        pl.col("usd_per_hour").fill_null(0.0).alias(label("usd_per_hour")),
        number_text("activity_pct", label("activity_pct"), unit="%"),
        dash("suggested_class", label("suggested_class")),
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            label("wasted_usd"): money_column(help="The run's wasted time at the GPU's cost."),
            label("usd_per_hour"): money_column(help="What the GPU costs an hour."),
        },
    )


def waste_chart(by_workload: pl.DataFrame) -> alt.Chart:
    """Wasted USD per workload, stacked by kind (each workload's bar keeps its height)."""
    chart_data = by_workload.with_columns(words_column("kind", KIND_WORDS))
    return charts.wasted_per_workload(chart_data, "Wasted USD per workload")


st.title("Alerts")
st.caption(
    "Wasted high-end GPU time: allocated but idle, busy but inefficient (few SMs active), or"
    " over-powered (a smaller GPU class would do), valued at the GPU's cost per hour. The money"
    " below is the wasted time stored for every day; alerts notify while it happens."
)

if not data.snapshot_ready():
    st.info("No snapshot yet: `gpuledger run` publishes one after its first ingest.")
    st.stop()

version = data.published_at()
flt = filters.sidebar(data.ledger_choices(version))  # the Overview's filters, kept across pages
window, kw = flt.window, flt.as_kwargs()
checked_at = data.snapshot().meta().get("alerts_checked_at", "")
period = window.label
days_words = f"UTC days {window.span()}"
waste = data.wasted(window.start, window.until.date(), version, kw, ("workload", "kind"))
before = (
    data.wasted(flt.previous.start, flt.previous.until.date(), version, kw)
    if flt.compare and waste["checked"]
    else {}
)
alerts = chosen_alerts(alerts_view(window.since, window.until, version), flt)
open_ = alerts.filter(pl.col("state") == "open")
recent = alerts.filter(pl.col("state") != "open")

c1, c2, c3 = st.columns(3)
c1.metric(
    "Open alerts",
    f"{open_.height}" if checked_at else CHECKING,
    help=f"Runs of wasted time still going at the last check ({checked_at[:16].replace('T', ' ')}"
    " UTC)."
    if checked_at
    else "The first check runs within a minute of `gpuledger run` starting.",
)
c2.metric(
    f"Wasted, {period}",
    usd(waste["wasted_usd"]) if waste["checked"] else CHECKING,
    help="High-end GPU time a workload held but left idle, kept busy inefficiently, or that a"
    f" smaller GPU would have done, valued at the GPU's cost per hour; {days_words}. The same"
    " figure as the Overview and the weekly report for these days.",
    **filters.compared(flt, waste["wasted_usd"], before.get("wasted_usd"), "${:,.2f}"),
)
c3.metric(
    f"Wasted GPU-hours, {period}",
    f"{waste['wasted_gpu_hours']:,.1f}" if waste["checked"] else CHECKING,
    help=f"The GPU-hours of that wasted time; {days_words}.",
    **filters.compared(flt, waste["wasted_gpu_hours"], before.get("wasted_gpu_hours"), "{:,.1f}"),
)

st.subheader("Open")
if not checked_at:
    st.info("Checking for wasted high-end GPU time… the first check runs within a minute.")
elif open_.height:
    alert_table(open_)
else:
    st.success("No open alerts: no high-end GPU is wasting time right now.")

st.subheader(f"Money wasted per workload, {period}")
by_workload = waste["rows"]
if by_workload.height:
    st.altair_chart(waste_chart(by_workload), width="stretch")
    st.caption(
        f"{plural(waste['runs'], 'run')} of wasted time, {usd(waste['wasted_usd'])} in all;"
        f" {days_words}."
    )
elif not waste["checked"]:
    st.info("Checking for wasted high-end GPU time… the next publication of the data has it.")
else:
    st.info(f"No wasted high-end GPU time in the {period} ({days_words}).")

st.subheader(f"Recent, {period}")
if recent.height:
    alert_table(recent)
elif not checked_at:
    st.info("Checking for wasted high-end GPU time…")
else:
    st.info(f"No alert ended in the {period}.")
