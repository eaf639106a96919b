"""Workloads: the cost ledger per workload (or host, GPU model), cloud and local side by side,
with filters; `__idle__` is local GPU time with no process, its own row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import polars as pl
import streamlit as st

from dashboard import charts, data, filters, tables
from tables.published import COSTS
from tables.stored import RESULTS_USAGE_HOURLY
from tables.units import MIB_PER_GIB
from warehouse import advisor_reads

GROUPS = {"workload": "Workload", "host": "Host", "gpu_model": "GPU model"}


@st.cache_data(ttl=10, show_spinner=False)
def ledger_view(days: int, version: str) -> pl.DataFrame:
    """Daily ledger rows of the last `days` days; `version` (publish time) keys the cache."""
    snap = data.snapshot()
    if not advisor_reads.has_advisor_tables(snap):
        return pl.DataFrame()
    since = (datetime.now(UTC) - timedelta(days=days)).date()
    return advisor_reads.ledger(snap, since)


st.title("Workloads")
st.caption(
    "What each workload used and cost. Local: amortized purchase + operations + measured energy;"
    " cloud: the bill's EffectiveCost, split by GPU-seconds where the instance reports telemetry"
    " (its idle time stays with the workload its tag names). `__idle__`: local GPUs with no"
    " process."
)

if not data.snapshot_ready():
    st.info("No snapshot yet: `gpuledger run` publishes one after its first ingest.")
    st.stop()

version = data.published_at()
flt = filters.sidebar(data.ledger_choices(version))  # in the URL, like the Overview's
group = st.selectbox("Group by", list(GROUPS), format_func=GROUPS.__getitem__)
ledger = ledger_view(flt.days, version)
if ledger.height == 0:
    st.info("No cost data in this window yet: let the agents run or import samples and bills.")
    st.stop()
st.caption(flt.describe())
rows = ledger
for column, values in (
    ("host", flt.hosts),
    ("workload", flt.workloads),
    ("placement", flt.placements),
):
    if values:
        rows = rows.filter(pl.col(column).is_in(values))

summary = advisor_reads.summarize_ledger(rows, group)
cloud = rows.filter(pl.col("placement") == "cloud")["cost_usd"].sum()
local = rows.filter(pl.col("placement") == "local")["cost_usd"].sum()
gpu_hours = rows["gpu_hours"].sum()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Cloud spend", f"${cloud:,.2f}", help="EffectiveCost (amortized, after discounts)")
c2.metric("Local cost", f"${local:,.2f}", help="amortized purchase + operations + energy")
c3.metric("GPU-hours", f"{gpu_hours:,.1f}")
c4.metric(
    "Busy",
    tables.busy_text(
        float(summary["busy_gpu_hours"].sum()),
        float(summary["activity_gpu_hours"].sum()),
        float(gpu_hours),
    ),
    help="busy ÷ GPU-hours with an activity signal; unknown where none had one",
)

key = group
label = COSTS.label  # headings from the definitions (tables/published.py)
table = summary.select(
    pl.col(key).fill_null("(none)"),
    "placement",
    pl.col("gpu_hours").round(2).alias(label("gpu_hours")),
    pl.col("busy_gpu_hours").round(2).alias(label("busy_gpu_hours")),
    tables.busy_column(name=label("busy_fraction")),
    pl.col("cost_usd").round(2).alias(label("cost_usd")),
    pl.col("idle_gpu_hours").round(2).alias(label("idle_gpu_hours")),
    pl.col("idle_cost_usd").round(2).alias(label("idle_cost_usd")),
    pl.col("billed_cost_usd").round(2).alias(label("billed_cost_usd")),
    pl.col("list_cost_usd").round(2).alias(label("list_cost_usd")),
)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        label("cost_usd"): st.column_config.NumberColumn(format="dollar"),
        label("idle_cost_usd"): st.column_config.NumberColumn(
            format="dollar", help="cloud: the owner's idle instance time; __idle__: spare GPUs"
        ),
        label("billed_cost_usd"): st.column_config.NumberColumn(
            format="dollar", help="BilledCost (invoice)"
        ),
        label("list_cost_usd"): st.column_config.NumberColumn(
            format="dollar", help="ListCost (before deals)"
        ),
    },
)

daily = (
    rows.group_by("day", key)
    .agg(cost_usd=pl.col("cost_usd").sum())
    .with_columns(pl.col(key).fill_null("(none)"), label=pl.col("day").dt.strftime("%b %d"))
    .sort("day")
)
st.altair_chart(
    alt.Chart(daily.to_pandas(), title=f"Cost per day by {GROUPS[group].lower()} (USD)")
    .mark_bar()
    .encode(
        x=alt.X("label:O", title=None, sort=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("cost_usd:Q", title="USD", stack=True),
        color=alt.Color(f"{key}:N", title=GROUPS[group]),
        tooltip=[
            alt.Tooltip("day:T"),
            alt.Tooltip(f"{key}:N"),
            alt.Tooltip("cost_usd:Q", title="USD", format="$,.2f"),
        ],
    )
    .properties(height=300),
    width="stretch",
)
by_place = rows.group_by("day", "placement").agg(
    pl.col("gpu_hours").sum(), pl.col("cost_usd").sum()
)
st.altair_chart(
    charts.daily_by_placement(by_place.sort("day"), "gpu_hours", "GPU-hours per day", ",.1f"),
    width="stretch",
)


def _busy_fraction() -> pl.Expr:
    """Busy seconds over those with an activity signal; null (unknown) where none had one."""
    known = pl.col("activity_seconds").sum()
    return pl.when(known > 0).then(pl.col("busy_seconds").sum() / known).alias("busy_fraction")


# Drill-down: one workload's GPUs, busy fraction over time, cost by day cloud vs local -----------
st.divider()
st.subheader("Drill down into one workload")
names = sorted(rows["workload"].drop_nulls().unique().to_list())
wanted = st.query_params.get("focus")
focus = st.selectbox(
    "Workload",
    names,
    index=names.index(wanted) if wanted in names else None,
    placeholder="choose a workload",
    key="focus",
)
if focus:
    st.query_params["focus"] = focus  # shareable, like the filters
    mine = rows.filter(pl.col("workload") == focus)
    usage = advisor_reads.workload_gpu_usage(
        data.snapshot(), focus, datetime.now(UTC) - timedelta(days=flt.days)
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**GPUs used**")
        if usage.height:
            gpus_used = (
                usage.group_by("host", "gpu_uuid", "gpu_model", "placement")
                .agg(
                    (pl.col("seconds").sum() / 3600).round(1).alias(label("gpu_hours")),
                    _busy_fraction(),
                    (pl.col("mem_peak_mib").max() / MIB_PER_GIB)
                    .round(1)
                    .alias(RESULTS_USAGE_HOURLY.label("mem_peak_mib")),
                )
                .sort(label("gpu_hours"), descending=True)
                .with_columns(tables.busy_column())
                .drop("busy_fraction")
            )
            st.dataframe(gpus_used, hide_index=True, width="stretch")
        else:
            st.info("No per-GPU telemetry for this workload in the window (a bill without agents).")
    with right:
        if usage.height:
            busy_over_time = (
                usage.group_by("hour")
                .agg(_busy_fraction().alias("busy"))
                .sort("hour")  # hours without an activity signal: no point, never 0
            )
            st.altair_chart(
                alt.Chart(busy_over_time.to_pandas(), title=f"{focus}: busy fraction per hour")
                .mark_line()
                .encode(
                    x=alt.X("hour:T", title=None),
                    y=alt.Y(
                        "busy:Q",
                        title="busy",
                        axis=alt.Axis(format="%"),
                        scale=alt.Scale(domain=[0, 1]),
                    ),
                    tooltip=[alt.Tooltip("hour:T"), alt.Tooltip("busy:Q", format=".0%")],
                )
                .properties(height=260),
                width="stretch",
            )
    per_day = mine.group_by("day", "placement").agg(
        pl.col("gpu_hours").sum(), pl.col("cost_usd").sum()
    )
    st.altair_chart(
        charts.daily_by_placement(
            per_day.sort("day"), "cost_usd", f"{focus}: cost per day (USD)", "$,.2f"
        ),
        width="stretch",
    )
