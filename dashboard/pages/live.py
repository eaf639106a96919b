"""Live: every GPU's utilization (the best signal, labelled), memory, power and processes,
refreshed every few seconds from the newest spool files."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import data
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
    newest = gpus["ts"].max()
    st.caption(f"{gpus.height} GPUs, newest sample {newest:%H:%M:%S} UTC")
    for (host,), part in gpus.group_by("host", maintain_order=True):
        st.subheader(escape_markdown(str(host)))
        table = part.select(
            pl.col("gpu_index").alias("gpu"),
            pl.col("gpu_model").alias("model"),
            pl.coalesce("sm_active_pct", "util_pct").alias("activity %"),
            pl.when(pl.col("sm_active_pct").is_not_null())
            .then(pl.lit("SM active (") + pl.col("activity_kind") + pl.lit(")"))
            .otherwise(pl.lit("GPU util (nvml)"))
            .alias("signal"),
            (pl.col("mem_used_mib") / 1024).round(1).alias("memory GiB"),
            (pl.col("mem_total_mib") / 1024).round(0).alias("of GiB"),
            pl.col("power_w").round(0).alias("power W"),
            pl.col("workload").fill_null("—"),
        )
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "activity %": st.column_config.ProgressColumn(
                    "activity %", min_value=0, max_value=100, format="%.0f%%"
                )
            },
        )
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
