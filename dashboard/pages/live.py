"""Live: every GPU as nvitop shows it (activity, memory and power now and over the last minutes,
temperature, SM clock, power against its limit, errors, open alerts) and the processes on it,
refreshed every few seconds from the newest spool files."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import data, live_view
from dashboard.format import plural
from dashboard.text import escape_markdown
from warehouse.live import newest_per_gpu

st.title("Live")
refresh = data.paths().refresh_s
st.caption(
    f"Refreshed every {refresh:g} s from the newest spool files, before the warehouse ingests"
    " them. Activity is SM active where the GPU reports it (GPM or DCGM), else NVML utilization;"
    " the sparklines show the last 5 minutes."
)


@st.fragment(run_every=refresh)
def live() -> None:
    samples = live_view.history()
    if samples.height == 0:
        st.info(
            "No GPU has reported in the last 5 minutes. Start the agent on your GPU hosts "
            "(`gpuledger collect --source nvml`) or `gpuledger run` for the demo fleet."
        )
        return
    version = data.published_at()
    gpus = newest_per_gpu(samples)
    lines = live_view.sparklines(samples)
    procs = data.live_processes()
    alerts = live_view.open_alerts(version)
    types = live_view.instance_types(version)
    newest = gpus.select(pl.col("ts").max().dt.strftime("%H:%M:%S")).item()
    st.caption(
        f"{plural(gpus.height, 'GPU')} on {plural(gpus['host'].n_unique(), 'host')}, newest"
        f" sample {newest} UTC"
        + (f"; {plural(alerts.height, 'open alert')} highlighted" if alerts.height else "")
    )
    for (host,), part in gpus.group_by("host", maintain_order=True):
        st.subheader(escape_markdown(live_view.host_title(str(host), types)))
        mine = alerts.filter(pl.col("host") == host) if alerts.height else alerts
        live_view.gpu_table(live_view.gpu_rows(part, lines, mine))
        host_procs = procs.filter(pl.col("host") == host)
        if host_procs.height:
            with st.expander(plural(host_procs.height, "process", "processes")):
                st.dataframe(
                    live_view.process_rows(host_procs, part),
                    hide_index=True,
                    width="stretch",
                    column_config={"command": st.column_config.TextColumn(width="large")},
                )


live()
