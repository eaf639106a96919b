"""Overview: GPUs by host with their current utilization, GPU-hours and spend over the chosen
days (the sidebar's filters), beside the previous period when asked."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from dashboard import charts, data, filters, tables
from dashboard.format import plural
from warehouse.alerts import snapshot_open_alert_count

st.title("Overview")

if not data.snapshot_ready():
    st.info(
        "Warming up: no snapshot has been published yet. `gpuledger run` (or `make run`) "
        "ingests the samples and publishes one within seconds; this page refreshes itself."
    )
    st.caption(f"Looking for {data.paths().snapshot}")

    @st.fragment(run_every=data.paths().refresh_s)
    def _wait() -> None:
        if data.snapshot_ready():
            st.rerun()

    _wait()
    st.stop()

version = data.published_at()
choices = data.ledger_choices(version)
flt = filters.sidebar(choices)
window, kw = flt.window, flt.as_kwargs()
view = data.overview(window.start, window.end, version, kw)
before = (
    data.ledger_totals(flt.previous.start, flt.previous.end, version, kw) if flt.compare else {}
)
meta, totals, daily, gpus = view["meta"], view["totals"], view["daily"], view["gpus"]
as_of = meta.get("data_as_of") or ""
st.caption(
    f"Data as of {as_of[:19].replace('T', ' ')} UTC · published "
    f"{meta.get('published_at', '')[:19].replace('T', ' ')} UTC"
    if as_of
    else "No GPU samples yet: start `gpuledger collect` on a GPU host or import samples."
)
open_alerts = snapshot_open_alert_count(data.snapshot())  # badge: see the Alerts page
checked_alerts = bool(meta.get("alerts_checked_at"))
if not checked_alerts:
    st.badge(
        "Checking for wasted high-end GPU time…", icon=":material/hourglass_top:", color="gray"
    )
else:
    st.badge(
        f"{plural(open_alerts, 'open alert')} on wasted high-end GPU time"
        if open_alerts
        else "No open alerts",
        icon=":material/notifications_active:" if open_alerts else ":material/check_circle:",
        color="red" if open_alerts else "green",
    )

period = window.label
since_words = f"UTC days {window.span()}"
gpu_hours = totals["gpu_hours"]
c1, c2, c3, c4 = st.columns(4)
c1.metric(
    f"GPU-hours, {period}",
    f"{gpu_hours:,.0f}",
    help=f"GPU-hours allocated on every GPU (a MIG board counts once); {since_words}.",
    **filters.compared(flt, gpu_hours, before.get("gpu_hours"), "{:,.0f}", better=None),
)
c2.metric(
    f"Busy, {period}",
    tables.busy_text(totals["busy_gpu_hours"], totals["activity_gpu_hours"], gpu_hours),
    help="Busy GPU-hours ÷ allocated GPU-hours with an activity signal (SM active where the GPU"
    " reports it, else utilization); unknown where none had one (MIG instances without DCGM"
    f" profiling); {since_words}.",
)
c3.metric(
    f"Cloud spend, {period}",
    f"${totals['cloud_usd']:,.0f}",
    help=f"The bill's EffectiveCost (amortized, after discounts); {since_words}.",
    **filters.compared(flt, totals["cloud_usd"], before.get("cloud_usd"), "${:,.0f}"),
)
c4.metric(
    f"Local cost, {period}",
    f"${totals['local_usd']:,.0f}",
    help=f"Amortized purchase + operations + measured energy; {since_words}.",
    **filters.compared(flt, totals["local_usd"], before.get("local_usd"), "${:,.0f}"),
)

extra = data.month_and_waste(window.start, window.end, version, kw)
wasted_before = (
    data.wasted(flt.previous.start, flt.previous.until.date(), version, kw)
    if flt.compare and extra["waste_checked"]
    else {}
)
checking = "checking…"
m1, m2, m3, m4 = st.columns(4)
m1.metric(
    "Spend, this month",
    f"${extra['month_usd']:,.0f}",
    help="Cloud EffectiveCost + local cost since the first of the month (UTC).",
)
m2.metric(
    "Cloud, this month",
    f"${extra['month_cloud_usd']:,.0f}",
    help="The bill's EffectiveCost since the first of the month (UTC).",
)
m3.metric(
    f"Wasted, {period}",
    f"${extra['wasted_usd']:,.0f}" if extra["waste_checked"] else checking,
    help="High-end GPU time a workload held but left idle, kept busy inefficiently, or that a"
    " smaller GPU would have done, valued at the GPU's cost per hour; "
    f"{since_words}. The same figure as the Alerts page and the weekly report for these days.",
    **filters.compared(flt, extra["wasted_usd"], wasted_before.get("wasted_usd"), "${:,.0f}"),
)
m4.metric(
    f"Wasted GPU-hours, {period}",
    f"{extra['wasted_gpu_hours']:,.1f}" if extra["waste_checked"] else checking,
    help=f"The GPU-hours of that wasted time; {since_words}.",
    **filters.compared(
        flt, extra["wasted_gpu_hours"], wasted_before.get("wasted_gpu_hours"), "{:,.1f}"
    ),
)

if daily.height:
    left, right = st.columns(2)
    left.altair_chart(
        charts.daily_by_placement(daily, "cost_usd", "Spend per day (USD)", "$,.2f", window),
        width="stretch",
    )
    right.altair_chart(
        charts.daily_by_placement(daily, "gpu_hours", "GPU-hours per day", ",.1f", window),
        width="stretch",
    )
    cloud_by_workload = view["cloud_by_workload"]
    if cloud_by_workload.height:
        st.altair_chart(
            charts.daily_by_workload(
                cloud_by_workload,
                "Cloud spend per workload per day (USD)",
                window,
                choices.get("workload", []),
            ),
            width="stretch",
        )
else:
    st.info(
        f"No cost data for {period} ({window.span()}) yet: import a FOCUS export or let the"
        " agents run."
    )


@st.fragment(run_every=data.paths().refresh_s)
def live_tile() -> None:
    """GPUs by host, refreshed from the newest spool files."""
    live = data.live_gpus()
    source = "live from the spool"
    if live.height == 0:
        live, source = gpus, "from the last snapshot"
    live = flt.gpus(live, data.cloud_hosts(version))  # the sidebar's hosts, workloads, placements
    st.subheader("GPUs by host")
    if live.height == 0:
        st.info("No GPU has reported yet.")
        return
    newest = live["ts"].max()
    st.caption(
        f"{live.height} GPUs on {live['host'].n_unique()} hosts, {source}, newest sample "
        f"{newest:%H:%M:%S} UTC"
        if isinstance(newest, datetime)
        else source
    )
    tables.gpu_table(live)


live_tile()

if data.lake_enabled():  # the seconds behind the minutes: raw samples from the Iceberg lake
    from dashboard import raw_hour

    hosts = data.snapshot().hosts()
    newest = hosts["last_sample"].max()
    raw_hour.section(
        sorted(hosts["host"].to_list()), newest if isinstance(newest, datetime) else None
    )
