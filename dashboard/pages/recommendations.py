"""Recommendations: where each workload should run, the monthly savings (its own cash, with the
capacity it frees for others apart), the arithmetic, the confidence and why; a hybrid's demand
curve with its local base; every alternative considered, and a CSV download."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard import data, tables
from dashboard.charts import hybrid_demand
from dashboard.format import (
    ACTION_WORDS,
    dash,
    money_column,
    number_text,
    usd,
    usd_text,
    words,
    words_column,
)
from tables.stored import RESULTS_ALTERNATIVES, RESULTS_RECOMMENDATIONS
from warehouse import advisor_reads
from warehouse.advisor_reads import recommendations_csv


def options_table(options: pl.DataFrame) -> pl.DataFrame:
    """A workload's alternatives in words and dollars (`—` where a figure does not apply)."""
    alt_label = RESULTS_ALTERNATIVES.label
    return options.sort(~pl.col("feasible"), "monthly_cost_usd", nulls_last=True).select(
        dash("option"),
        dash("provider", alt_label("provider")),
        words_column("kind", {}),
        usd_text("monthly_cost_usd", alt_label("monthly_cost_usd")),
        usd_text("monthly_savings_usd", alt_label("monthly_savings_usd")),
        number_text("break_even_months", alt_label("break_even_months"), unit="months"),
        pl.when(pl.col("feasible")).then(pl.lit("yes")).otherwise(pl.lit("no")).alias("fits"),
        pl.when(pl.col("chosen")).then(pl.lit("yes")).otherwise(pl.lit("no")).alias("chosen"),
        dash("note", alt_label("note")),
    )


@st.cache_data(ttl=10, show_spinner=False)
def recommendations_view(version: str) -> dict[str, pl.DataFrame]:
    snap = data.snapshot()
    if not advisor_reads.has_advisor_tables(snap):
        return {"recs": pl.DataFrame(), "alts": pl.DataFrame(), "curves": pl.DataFrame()}
    return {
        "recs": advisor_reads.recommendations(snap),
        "alts": advisor_reads.alternatives(snap),
        "curves": advisor_reads.demand_curves(snap),
    }


CONFIDENCE_HELP = (
    "high, medium or low: low where any factor is bad (under a week observed, no activity"
    " signal), medium where any is weak (under two weeks, memory unknown, demand that varies),"
    " else high. Each recommendation's reasons name its factors."
)


def gpus_text(r: dict) -> str:
    """`8 → 3` where the chosen option changes the GPU count, else the count now."""
    after = r.get("gpus_after")
    if after is None or after == r["gpus"] or r["action"] in ("hybrid", "schedule"):
        return f"{r['gpus']}"
    return f"{r['gpus']} → {after}"


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
recs, alts, curves = view["recs"], view["alts"], view["curves"]
if recs.height == 0:
    st.info("No recommendations yet: they need at least one whole day of GPU data.")
    st.stop()

acted = recs.filter((pl.col("action") != "keep") | pl.col("alternative").is_not_null())
first = recs.row(0, named=True)
observed = f"{first['window_start']:%b %d} – {first['window_end']:%b %d, %Y} (UTC)"
freed = float(recs["freed_capacity_usd"].fill_null(0.0).sum())
c1, c2, c3, c4 = st.columns(4)
c1.metric(
    "Savings, a month",
    usd(float(acted["monthly_savings_usd"].sum())),
    help="What the workloads to act on would save of their own cash a month (730 h), from what"
    f" they used and cost {observed}.",
)
c4.metric(
    "Frees for others",
    usd(freed),
    help="What the GPUs they hand over are worth a month to saturated neighbours (the cloud"
    " price those would otherwise pay): capacity, not the workloads' own cash.",
)
c2.metric(
    "Workloads to act on",
    f"{acted.height} of {recs.height}",
    help=f"Workloads whose best option saves more than the minimum; observed {observed}.",
)
c3.metric(
    "Days observed",
    f"{first['days_observed']:g}",
    help=f"The whole days the recommendations are computed from: {observed}.",
)

actions = st.multiselect(
    "Actions",
    list(ACTION_WORDS),
    default=[a for a in ACTION_WORDS if a in set(recs["action"])],
    format_func=ACTION_WORDS.__getitem__,
)
shown = recs.filter(pl.col("action").is_in(actions)) if actions else recs
label = RESULTS_RECOMMENDATIONS.label  # headings from the definitions (tables/stored.py)
st.dataframe(
    shown.with_columns(duty_pct=pl.col("duty_cycle") * 100).select(
        "workload",
        words_column("action", ACTION_WORDS),
        dash("alternative"),
        pl.struct("gpus", "gpus_after", "action")
        .map_elements(gpus_text, return_dtype=pl.String)
        .alias("GPUs"),
        pl.col("current_monthly_cost_usd").round(2).alias(label("current_monthly_cost_usd")),
        pl.col("monthly_savings_usd").round(2).alias(label("monthly_savings_usd")),
        usd_text("freed_capacity_usd", label("freed_capacity_usd")),
        dash("schedule"),
        number_text("break_even_months", label("break_even_months"), unit="months"),
        dash("confidence_level", label("confidence_level")),
        "confidence",
        tables.busy_column(name=label("busy_fraction")),
        number_text("duty_pct", label("duty_cycle"), unit="%"),
        number_text("peak_memory_gib", label("peak_memory_gib"), unit="GiB"),
    ),
    hide_index=True,
    width="stretch",
    column_config={
        label("current_monthly_cost_usd"): money_column(help="What it costs a month now."),
        label("monthly_savings_usd"): money_column(
            help="The workload's own cash saved a month by the action."
        ),
        label("confidence"): st.column_config.ProgressColumn(
            min_value=0.0, max_value=1.0, format="%.2f", help=CONFIDENCE_HELP
        ),
        label("confidence_level"): st.column_config.TextColumn(help=CONFIDENCE_HELP),
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
    title = f"{r['workload']}: {words(r['action'], ACTION_WORDS)}"
    if r["action"] != "keep":
        title += f", saves {usd(r['monthly_savings_usd'])} a month"
    with st.expander(title, expanded=r["action"] != "keep"):
        for reason in r["reasons"] or []:
            st.markdown(f"- {reason.replace('$', chr(92) + '$')}")
        curve = curves.filter(pl.col("workload") == r["workload"]) if curves.height else curves
        if r["action"] == "hybrid" and curve.height:
            st.altair_chart(hybrid_demand(curve), width="stretch")
        options = alts.filter(pl.col("workload") == r["workload"])
        if options.height:
            st.dataframe(options_table(options), hide_index=True, width="stretch")
