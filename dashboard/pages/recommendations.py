"""Recommendations: where each workload should run, the monthly savings, and the arithmetic;
every alternative considered, and a CSV download."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import data, tables
from tables.stored import RESULTS_ALTERNATIVES, RESULTS_RECOMMENDATIONS
from warehouse import advisor_reads
from warehouse.advisor_reads import recommendations_csv

ACTION_LABELS = {
    "keep": "keep",
    "move_to_local": "move to local",
    "buy_local": "buy local",
    "move_to_cloud": "move to cloud",
    "downsize": "downsize",
}


@st.cache_data(ttl=10, show_spinner=False)
def recommendations_view(version: str) -> dict[str, pl.DataFrame]:
    snap = data.snapshot()
    if not advisor_reads.has_advisor_tables(snap):
        return {"recs": pl.DataFrame(), "alts": pl.DataFrame()}
    return {
        "recs": advisor_reads.recommendations(snap),
        "alts": advisor_reads.alternatives(snap),
    }


st.title("Recommendations")
st.caption(
    "For each workload over the last whole days (up to [advisor] window_days), scaled to a month"
    " of 730 h: the current cost beside every feasible alternative from the catalog and the"
    " team's spare local GPUs. Savings below the minimum ($ and %) keep a workload as it is."
)

if not data.snapshot_ready():
    st.info("No snapshot yet: `gpuledger run` publishes one after its first ingest.")
    st.stop()

view = recommendations_view(data.published_at())
recs, alts = view["recs"], view["alts"]
if recs.height == 0:
    st.info("No recommendations yet: they need at least one whole day of GPU data.")
    st.stop()

acted = recs.filter(pl.col("action") != "keep")
first = recs.row(0, named=True)
c1, c2, c3 = st.columns(3)
c1.metric("Savings found", f"${acted['monthly_savings_usd'].sum():,.2f}/month")
c2.metric("To act on", f"{acted.height} of {recs.height} workloads")
c3.metric(
    "Days observed",
    f"{first['days_observed']:g}",
    help=f"{first['window_start']:%Y-%m-%d} to {first['window_end']:%Y-%m-%d} (UTC)",
)

actions = st.multiselect(
    "Actions",
    list(ACTION_LABELS),
    default=[a for a in ACTION_LABELS if a in set(recs["action"])],
    format_func=ACTION_LABELS.__getitem__,
)
shown = recs.filter(pl.col("action").is_in(actions)) if actions else recs
label = RESULTS_RECOMMENDATIONS.label  # headings from the definitions (tables/stored.py)
st.dataframe(
    shown.select(
        "workload",
        "action",
        pl.col("alternative").fill_null("—"),
        pl.col("current_monthly_cost_usd").round(2).alias(label("current_monthly_cost_usd")),
        pl.col("monthly_savings_usd").round(2).alias(label("monthly_savings_usd")),
        pl.col("break_even_months").round(1).alias(label("break_even_months")),
        "confidence",
        tables.busy_column(name=label("busy_fraction")),
        (pl.col("duty_cycle") * 100).round(1).alias(label("duty_cycle")),
        pl.col("peak_memory_gib").round(1).alias(label("peak_memory_gib")),
    ),
    hide_index=True,
    width="stretch",
    column_config={
        label("current_monthly_cost_usd"): st.column_config.NumberColumn(format="dollar"),
        label("monthly_savings_usd"): st.column_config.NumberColumn(format="dollar"),
        label("confidence"): st.column_config.ProgressColumn(
            min_value=0.0, max_value=1.0, format="%.2f"
        ),
    },
)
st.download_button(
    "Download CSV",
    data=recommendations_csv(shown).encode(),
    file_name="gpuledger-recommendations.csv",
    mime="text/csv",
    icon=":material/download:",
)

st.subheader("The arithmetic")
for r in shown.iter_rows(named=True):
    title = f"{r['workload']}: {ACTION_LABELS.get(r['action'], r['action'])}"
    if r["action"] != "keep":
        title += f", saves ${r['monthly_savings_usd']:,.2f} a month"
    with st.expander(title, expanded=r["action"] != "keep"):
        for reason in r["reasons"] or []:
            st.markdown(f"- {reason.replace('$', chr(92) + '$')}")
        options = alts.filter(pl.col("workload") == r["workload"])
        if options.height:
            alt_label = RESULTS_ALTERNATIVES.label
            st.dataframe(
                options.select(
                    "option",
                    pl.col("provider").alias(alt_label("provider")),
                    "kind",
                    pl.col("monthly_cost_usd").round(2).alias(alt_label("monthly_cost_usd")),
                    pl.col("monthly_savings_usd").round(2).alias(alt_label("monthly_savings_usd")),
                    pl.col("break_even_months").round(1).alias(alt_label("break_even_months")),
                    "feasible",
                    "chosen",
                    pl.col("note").alias(alt_label("note")),
                ).sort(~pl.col("feasible"), alt_label("monthly_cost_usd")),
                hide_index=True,
                width="stretch",
            )
