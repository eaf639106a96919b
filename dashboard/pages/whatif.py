"""What-if: where a described workload should run, priced with the catalog and the team's own
local costs and spare capacity (the same comparison as the recommendations)."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import streamlit as st

from advisor.recommend import Params
from advisor.whatif import Question, WhatIfError, measured_watts, team_capacity, what_if
from config.catalog import gpu_classes, load_catalog
from dashboard import data
from dashboard.format import (
    ACTION_WORDS,
    dash,
    number_text,
    usd,
    usd_text,
    words,
    words_column,
)
from tables.clouds import label as cloud_label
from warehouse import advisor_reads


@st.cache_data(ttl=300, show_spinner=False)
def catalog() -> pl.DataFrame:
    return load_catalog(data.effective_config().catalog_path)


@st.cache_data(ttl=30, show_spinner=False)
def team_usage(version: str) -> pl.DataFrame:
    """The snapshot's hourly usage (spare capacity, measured power); empty without one."""
    if not data.snapshot_ready():
        return pl.DataFrame()
    snap = data.snapshot()
    if not advisor_reads.has_advisor_tables(snap):
        return pl.DataFrame()
    return advisor_reads.usage_hourly(snap)


@st.cache_data(ttl=30, show_spinner=False)
def team_instances(version: str) -> list[str]:
    """The instance types the team's workloads run on (they settle the clouds that may be
    proposed where [advisor] clouds is empty); none without a snapshot."""
    if not data.snapshot_ready():
        return []
    snap = data.snapshot()
    if not advisor_reads.has_advisor_tables(snap):
        return []
    return advisor_reads.recommendations(snap)["instance_type"].drop_nulls().to_list()


st.title("What-if")
st.caption(
    "Describe a workload; gpuledger prices it on every cloud instance of the catalog (AWS,"
    " Azure and Google Cloud), on local GPUs bought for it, and on the team's spare local GPUs,"
    " with the same rules as the recommendations (monthly = 730 h). Only the clouds of"
    " [advisor] clouds (else those the team's bills name) are proposed; the others are listed"
    " for comparison."
)

cfg = data.effective_config()
cat = catalog()
classes = gpu_classes(cat)["gpu_model"].to_list()
with st.form("whatif"):
    a, b, c = st.columns(3)
    gpu = a.selectbox("GPU class it runs on", classes, index=classes.index("H100"))
    count = b.number_input("GPUs at once", min_value=1, max_value=512, value=1, step=1)
    current = c.radio(
        "Runs today", ["cloud", "local"], horizontal=True, help="cloud: the cheapest instance"
    )
    hours = a.slider("Hours a day", min_value=1.0, max_value=24.0, value=20.0, step=0.5)
    busy = b.slider("Busy while it runs (%)", min_value=0, max_value=100, value=70)
    memory = c.number_input("Peak GPU memory (GiB)", min_value=1.0, value=60.0, step=1.0)
    sensitive = a.checkbox("Sensitive: must never run in the cloud")
    st.form_submit_button("Compare", type="primary")

version = data.published_at() if data.snapshot_ready() else ""
usage = team_usage(version)
now = datetime.now(UTC)
question = Question(
    gpu=gpu,
    count=int(count),
    hours_per_day=float(hours),
    busy=busy / 100.0,
    memory_gib=float(memory),
    sensitive=sensitive,
    current=current,
)
try:
    rec = what_if(
        question,
        cat,
        Params.from_config(cfg),
        capacity=team_capacity(usage, cat, now, cfg.advisor.window_days) if usage.height else None,
        watts=measured_watts(usage, cat, busy / 100.0) if usage.height else {},
        instance_types=team_instances(version),
    )
except WhatIfError as exc:
    st.error(str(exc))
    st.stop()

chosen = rec.chosen
m1, m2, m3 = st.columns(3)
m1.metric(
    "Today, a month",
    usd(rec.profile.current_monthly_cost),
    help="What it costs a month (730 h) where it runs today.",
)
m2.metric(
    "Action",
    words(rec.action, ACTION_WORDS),
    help=f"{chosen.option}." if chosen else "No cheaper option fits.",
)
m3.metric(
    "Saves, a month",
    usd(chosen.monthly_savings if chosen else 0.0),
    help=f"Pays back in {chosen.break_even_months:.1f} months."
    if chosen and chosen.break_even_months
    else "Nothing is bought up front.",
)
for reason in rec.reasons:
    st.markdown(f"- {reason.replace('$', chr(92) + '$')}")
if not usage.height:
    st.caption("No snapshot with local GPU data: spare local capacity is not considered.")

st.subheader("Every option")
options = pl.DataFrame(
    [
        {
            "option": x.option,
            "cloud": cloud_label(x.provider) if x.provider else None,
            "kind": x.kind,
            "USD/month": x.monthly_cost,
            "saves USD/month": x.monthly_savings,
            "break-even months": x.break_even_months,
            "feasible": x.feasible,
            "why": x.note,
        }
        for x in rec.alternatives
    ],
    schema={
        "option": pl.String,
        "cloud": pl.String,
        "kind": pl.String,
        "USD/month": pl.Float64,
        "saves USD/month": pl.Float64,
        "break-even months": pl.Float64,
        "feasible": pl.Boolean,
        "why": pl.String,
    },
).sort(~pl.col("feasible"), "USD/month", nulls_last=True)
st.dataframe(
    options.select(
        dash("option"),
        dash("cloud"),
        words_column("kind", {}),
        usd_text("USD/month"),
        usd_text("saves USD/month"),
        number_text("break-even months", unit="months"),
        pl.when(pl.col("feasible")).then(pl.lit("yes")).otherwise(pl.lit("no")).alias("fits"),
        dash("why"),
    ),
    hide_index=True,
    width="stretch",
)
