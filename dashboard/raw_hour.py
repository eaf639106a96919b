"""The drill-down into one host and hour: its raw GPU samples, read from the lake (`[lake]
enabled`: the warehouse keeps only rollups, so the seconds behind a minute live there). Shown on
the Overview below the GPUs by host."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import polars as pl
import streamlit as st

from dashboard import data
from dashboard.format import plural

COLUMNS = ("ts", "gpu_index", "gpu_uuid", "workload", "util_pct", "sm_active_pct", "power_w")


def section(hosts: list[str], newest: datetime | None) -> None:
    """Pick a host and an hour (the newest sample's by default); its raw samples and a chart
    of each GPU's activity through the hour."""
    st.subheader("Raw samples of one host and hour")
    if not hosts:
        st.info("No host has reported yet.")
        return
    start = (newest or datetime.now(UTC)).astimezone(UTC)
    left, mid, right = st.columns(3)
    host = left.selectbox("Host", hosts, key="raw_host")
    day = mid.date_input("Day (UTC)", start.date(), key="raw_day")
    hour = right.selectbox("Hour (UTC)", list(range(24)), index=start.hour, key="raw_hour")
    at = datetime.combine(day, time(hour), tzinfo=UTC)
    rows = data.lake_hour(str(host), at)
    span = f"{at:%Y-%m-%d %H:00}–{at + timedelta(hours=1):%H:00} UTC"
    if rows.height == 0:
        st.info(f"The lake holds no sample of {host} for {span}.")
        return
    st.caption(
        f"{plural(rows.height, 'sample')} of {plural(rows['gpu_uuid'].n_unique(), 'GPU')} on"
        f" {host}, {span}, from the lake"
    )
    activity = rows.select(
        "ts", "gpu_index", pl.coalesce("sm_active_pct", "util_pct").alias("activity %")
    )
    st.line_chart(
        activity.pivot("gpu_index", index="ts", values="activity %").sort("ts"),
        x="ts",
        y_label="activity %",
    )
    st.dataframe(rows.select(COLUMNS), hide_index=True, width="stretch")
