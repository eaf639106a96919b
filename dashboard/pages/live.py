"""Live: every GPU's utilization (the best signal, labelled), memory, power and processes,
refreshed every few seconds from the newest spool files."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import data, tables
from dashboard.text import escape_markdown

st.title("Live")
refresh = data.paths().refresh_s
st.caption(
    f"Refreshed every {refresh:g} s from the newest spool files, before the warehouse ingests "
    "them. Activity is SM active where the GPU reports it (GPM or DCGM), else NVML utilization."
)


@st.fragment(run_every=refresh)
def live() -> None:
    gpus = data.live_gpus()
    if gpus.height == 0:
        st.info(
            "No GPU has reported in the last minute. Start the agent on your GPU hosts "
            "(`gpuledger collect --source nvml`) or `gpuledger run` for the demo fleet."
        )
        return
    procs = data.live_processes()
    newest = gpus["ts"].dt.max()
    st.caption(f"{gpus.height} GPUs, newest sample {newest:%H:%M:%S} UTC")
    for (host,), part in gpus.group_by("host", maintain_order=True):
        st.subheader(escape_markdown(str(host)))
        tables.gpu_table(part, with_host=False)
        host_procs = procs.filter(pl.col("host") == host)
        if host_procs.height:
            with st.expander(f"{host_procs.height} process(es)"):
                st.dataframe(
                    host_procs.select(
                        "gpu_uuid", "pid", "user", "workload", "used_mib", "sm_pct", "command"
                    ),
                    hide_index=True,
                    width="stretch",
                )


live()
