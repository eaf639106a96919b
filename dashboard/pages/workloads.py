"""Workloads: the cost ledger per workload (or host, GPU model), cloud and local side by side,
with filters; `__idle__` is local GPU time with no process, its own row."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import streamlit as st

from dashboard import charts, data, filters, tables
from dashboard.format import money_column, usd_text
from dashboard.text import escape_markdown
from tables.published import COSTS
from tables.stored import RESULTS_USAGE_HOURLY
from tables.units import MIB_PER_GIB
from warehouse import advisor_reads

GROUPS = {"workload": "Workload", "host": "Host", "gpu_model": "GPU model"}
DRILL_DOWN = "drill-down"  # the drill-down's anchor: `?focus=` scrolls there


@st.cache_data(ttl=10, show_spinner=False)
def ledger_view(start: date, end: date, version: str) -> pl.DataFrame:
    """Daily ledger rows of the UTC days `start` to `end` (both included); `version` (publish
    time) keys the cache."""
    snap = data.snapshot()
    if not advisor_reads.has_advisor_tables(snap):
        return pl.DataFrame()
    return advisor_reads.ledger(snap, start, end + timedelta(days=1))


def chosen_rows(ledger: pl.DataFrame, flt: filters.Filters) -> pl.DataFrame:
    """The ledger rows of the sidebar's hosts, workloads and placements."""
    for column in ("host", "workload", "placement"):
        if flt.matches(column):
            ledger = ledger.filter(pl.col(column).is_in(flt.matches(column)))
    return ledger


def with_previous(summary: pl.DataFrame, previous: pl.DataFrame, key: str) -> pl.DataFrame:
    """The summary with the previous period's cost beside it (`cost_before_usd`, `change_usd`;
    a row new in this period has no cost before, a row gone from it is not listed)."""
    before = previous.select(
        pl.col(key).fill_null("(none)"), "placement", cost_before_usd=pl.col("cost_usd")
    )
    return summary.join(before, on=[key, "placement"], how="left", nulls_equal=True).with_columns(
        change_usd=pl.col("cost_usd") - pl.col("cost_before_usd").fill_null(0.0)
    )


WASTED = "wasted USD"


def with_waste(summary: pl.DataFrame, waste: pl.DataFrame, key: str) -> pl.DataFrame:
    """The summary with the stored waste of its rows (`wasted_usd`, 0 where none)."""
    per = waste.select(pl.col(key).fill_null("(none)"), "placement", "wasted_usd")
    return summary.join(per, on=[key, "placement"], how="left", nulls_equal=True).with_columns(
        pl.col("wasted_usd").fill_null(0.0)
    )


def scroll_to(anchor: str) -> None:
    """Scroll the page to the heading `anchor` once it is drawn (the charts above it take a
    moment to get their height, so again after they have)."""
    st.html(
        "<script>(() => {"
        f"const go = () => {{ const el = document.getElementById({anchor!r});"
        " if (el) { el.scrollIntoView({block: 'start'}); } return !!el; };"
        " let tries = 0; const timer = setInterval(() => {"
        " if ((go() && tries > 10) || tries > 50) clearInterval(timer); tries += 1; }, 100);"
        "})();</script>",
        unsafe_allow_javascript=True,
    )


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
choices = data.ledger_choices(version)
flt = filters.sidebar(choices)  # in the URL and the session, like the Overview's
window = flt.window
group = st.selectbox("Group by", list(GROUPS), format_func=GROUPS.__getitem__)
ledger = ledger_view(window.start, window.end, version)
if ledger.height == 0:
    st.info("No cost data in this window yet: let the agents run or import samples and bills.")
    st.stop()
st.caption(flt.describe())
rows = chosen_rows(ledger, flt)
before = (
    chosen_rows(ledger_view(flt.previous.start, flt.previous.end, version), flt)
    if flt.compare
    else None
)

summary = advisor_reads.summarize_ledger(rows, group)
cloud = float(rows.filter(pl.col("placement") == "cloud")["cost_usd"].sum())
local = float(rows.filter(pl.col("placement") == "local")["cost_usd"].sum())
gpu_hours = float(rows["gpu_hours"].sum())


def _before(placement: str | None = None, column: str = "cost_usd") -> float | None:
    if before is None or before.height == 0:
        return None
    part = before if placement is None else before.filter(pl.col("placement") == placement)
    return float(part[column].sum())


period, days_words = window.label, f"UTC days {window.span()}"
waste = data.wasted(
    window.start, window.end + timedelta(days=1), version, flt.as_kwargs(), (group, "placement")
)
c1, c2, c3, c4, c5 = st.columns(5)
c1.metric(
    f"Cloud spend, {period}",
    f"${cloud:,.2f}",
    help=f"The bill's EffectiveCost (amortized, after discounts); {days_words}.",
    **filters.compared(flt, cloud, _before("cloud"), "${:,.2f}"),
)
c2.metric(
    f"Local cost, {period}",
    f"${local:,.2f}",
    help=f"Amortized purchase + operations + measured energy; {days_words}.",
    **filters.compared(flt, local, _before("local"), "${:,.2f}"),
)
c3.metric(
    f"GPU-hours, {period}",
    f"{gpu_hours:,.1f}",
    help=f"GPU-hours allocated (a MIG board counts once); {days_words}.",
    **filters.compared(flt, gpu_hours, _before(column="gpu_hours"), "{:,.1f}", better=None),
)
c4.metric(
    f"Busy, {period}",
    tables.busy_text(
        float(summary["busy_gpu_hours"].sum()),
        float(summary["activity_gpu_hours"].sum()),
        gpu_hours,
    ),
    help="Busy GPU-hours ÷ GPU-hours with an activity signal; unknown where none had one;"
    f" {days_words}.",
)
c5.metric(
    f"Wasted, {period}",
    f"${waste['wasted_usd']:,.2f}" if waste["checked"] else "checking…",
    help="High-end GPU time held but left idle, kept busy inefficiently, or that a smaller GPU"
    f" would have done, at the GPU's cost; {days_words}. The Overview's and the Alerts page's"
    " figure for these days.",
)

key = group
label = COSTS.label  # headings from the definitions (tables/published.py)
shown = summary.with_columns(pl.col(key).fill_null("(none)"))
if before is not None:
    shown = with_previous(shown, advisor_reads.summarize_ledger(before, group), key)
shown = with_waste(shown, waste["rows"], key)
table = shown.select(
    key,
    "placement",
    pl.col("gpu_hours").round(2).alias(label("gpu_hours")),
    pl.col("busy_gpu_hours").round(2).alias(label("busy_gpu_hours")),
    tables.busy_column(name=label("busy_fraction")),
    pl.col("cost_usd").round(2).alias(label("cost_usd")),
    *(
        [usd_text("cost_before_usd", "cost before USD"), pl.col("change_usd").round(2)]
        if before is not None
        else []
    ),
    *([pl.col("wasted_usd").round(2).alias(WASTED)] if waste["checked"] else []),
    pl.col("idle_gpu_hours").round(2).alias(label("idle_gpu_hours")),
    pl.col("idle_cost_usd").round(2).alias(label("idle_cost_usd")),
    usd_text("billed_cost_usd", label("billed_cost_usd")),
    usd_text("list_cost_usd", label("list_cost_usd")),
)
hours = st.column_config.NumberColumn(format="localized")
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        label("gpu_hours"): hours,
        label("busy_gpu_hours"): hours,
        label("idle_gpu_hours"): hours,
        label("cost_usd"): money_column(),
        "cost before USD": st.column_config.TextColumn(
            help=f"The cost of {flt.previous.span()} (UTC days); — where the row is new."
        ),
        "change_usd": money_column(
            "change USD", help="This period's cost minus the previous period's."
        ),
        WASTED: money_column(
            help="High-end GPU time held but idle, inefficient or over-powered, at the GPU's"
            f" cost (the Alerts page's figure); {days_words}."
        ),
        label("idle_cost_usd"): money_column(
            help="GPU time no process held: local spare GPUs (__idle__), in the cloud the"
            " owner's idle instance time. Time held but left idle is in wasted USD."
        ),
        label("billed_cost_usd"): st.column_config.TextColumn(
            help="The bill's BilledCost (the invoice); — for local GPUs."
        ),
        label("list_cost_usd"): st.column_config.TextColumn(
            help="The bill's ListCost (before discounts); — where unknown."
        ),
    },
)

daily = (
    rows.group_by("day", key)
    .agg(cost_usd=pl.col("cost_usd").sum())
    .with_columns(pl.col(key).fill_null("(none)"))
    .sort("day", key)
)
st.altair_chart(
    charts.daily_by_workload(
        daily,
        f"Cost per day by {GROUPS[group].lower()} (USD)",
        window,
        choices.get(key, []),
        field=key,
        legend=GROUPS[group],
    ),
    width="stretch",
)
by_place = rows.group_by("day", "placement").agg(
    pl.col("gpu_hours").sum(), pl.col("cost_usd").sum()
)
st.altair_chart(
    charts.daily_by_placement(
        by_place.sort("day"), "gpu_hours", "GPU-hours per day", ",.1f", window
    ),
    width="stretch",
)


def _busy_fraction() -> pl.Expr:
    """Busy seconds over those with an activity signal; null (unknown) where none had one."""
    known = pl.col("activity_seconds").sum()
    return pl.when(known > 0).then(pl.col("busy_seconds").sum() / known).alias("busy_fraction")


@st.cache_data(ttl=10, show_spinner=False)
def workload_usage(workload: str, start: date, end: date, version: str) -> pl.DataFrame:
    """One workload's hourly use of each GPU over the UTC days `start` to `end`."""
    usage = advisor_reads.workload_gpu_usage(data.snapshot(), workload, _midnight(start))
    return usage.filter(pl.col("hour") < _midnight(end + timedelta(days=1)))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def gpus_used(usage: pl.DataFrame) -> pl.DataFrame:
    return (
        usage.group_by("host", "gpu_uuid", "gpu_model", "placement")
        .agg(
            (pl.col("seconds").sum() / 3600).round(1).alias(label("gpu_hours")),
            _busy_fraction(),
            (pl.col("mem_peak_mib").max() / MIB_PER_GIB)
            .round(1)
            .alias(RESULTS_USAGE_HOURLY.label("mem_peak_mib")),
        )
        .sort(label("gpu_hours"), "host", "gpu_uuid", descending=[True, False, False])
        .with_columns(tables.busy_column())
        .drop("busy_fraction")
    )


# Drill-down: one workload's GPUs, busy fraction over time, cost by day cloud vs local -----------
st.divider()
st.subheader("Drill down into one workload", anchor=DRILL_DOWN)
names = sorted(rows["workload"].drop_nulls().unique().to_list())
wanted = st.query_params.get("focus")
from_address = wanted in names and "focus" not in st.session_state  # a shared link, a reload
focus = st.selectbox(
    "Workload",
    names,
    index=names.index(wanted) if wanted in names else None,
    placeholder="choose a workload",
    key="focus",
)
if from_address:
    scroll_to(DRILL_DOWN)
if focus:
    st.query_params["focus"] = focus  # shareable, like the filters
    mine = rows.filter(pl.col("workload") == focus)
    usage = chosen_rows(workload_usage(focus, window.start, window.end, version), flt)
    st.markdown(f"**GPUs {escape_markdown(focus)} used**")
    if usage.height:
        st.dataframe(gpus_used(usage), hide_index=True, width="stretch")
        busy_over_time = (
            usage.group_by("hour")
            .agg(_busy_fraction().alias("busy"))
            .sort("hour")  # hours without an activity signal: no point, never 0
        )
        st.altair_chart(
            charts.busy_per_hour(busy_over_time, f"{focus}: busy fraction per hour", window),
            width="stretch",
        )
    else:
        st.info("No per-GPU telemetry for this workload in the window (a bill without agents).")
    per_day = mine.group_by("day", "placement").agg(
        pl.col("gpu_hours").sum(), pl.col("cost_usd").sum()
    )
    st.altair_chart(
        charts.daily_by_placement(
            per_day.sort("day"), "cost_usd", f"{focus}: cost per day (USD)", "$,.2f", window
        ),
        width="stretch",
    )
