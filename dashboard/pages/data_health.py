"""Data health: per source the last sample or bill and its lag, errors, the catalog's and the
snapshot's age."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import streamlit as st

from config.catalog import catalog_ages, catalog_oldest, load_catalog
from config.gpu_class import unpriced_warnings
from dashboard import data
from dashboard.format import UNKNOWN, duration, duration_text, plural
from dashboard.text import escape_markdown, printable_frame
from tables.escape import printable
from warehouse import advisor_reads
from warehouse.billing_state import pull_status_rows, status_path

st.title("Data health")

cfg = data.effective_config()
snap_ok = data.snapshot_ready()
age = data.snapshot().age_seconds() if snap_ok else None
catalog: pl.DataFrame | None
oldest: date | None
try:
    catalog = load_catalog(cfg.catalog_path)
    oldest = catalog_oldest(catalog)
except Exception as exc:  # a broken catalog is exactly what this page must show
    catalog, oldest = None, None
    st.error(f"The price catalog cannot be read: {escape_markdown(printable(exc))}")

c1, c2, c3 = st.columns(3)
c1.metric(
    "Snapshot age",
    f"{age:.0f} s" if age is not None else "none yet",
    help="time since `gpuledger run` last published the read-only snapshot",
)
c2.metric(
    "Oldest price",
    str(oldest) if oldest else "unreadable",
    help="The oldest as_of of the price catalog's rows; each cloud's below.",
)
c3.metric(
    "Oldest price's age",
    f"{(date.today() - oldest).days:,} days" if oldest else "n/a",
    help=f"A cloud whose oldest price is older than [catalog] max_age_days"
    f" ({cfg.catalog.max_age_days}) is warned about below.",
)
if catalog is not None:
    # the newest and oldest as_of of each cloud's prices and of the GPU classes
    ages = catalog_ages(catalog, date.today(), cfg.catalog.max_age_days)
    with st.expander("Catalog age by cloud", expanded=bool(ages["stale"].any())):
        for r in ages.filter(pl.col("stale")).iter_rows(named=True):
            refresh = " (`gpuledger catalog refresh aws`)" if r["provider"] == "aws" else ""
            st.warning(
                f"{r['provider']}: the oldest price is from {r['oldest']}, {r['age_days']} days"
                f" old (more than [catalog] max_age_days = {cfg.catalog.max_age_days}): update"
                f" {r['provider']}'s rows{refresh}."
            )
        st.dataframe(
            ages.select(
                pl.col("provider").alias("cloud"),
                "rows",
                pl.col("oldest").alias("oldest as_of"),
                pl.col("newest").alias("newest as_of"),
                pl.col("age_days").alias("oldest age (days)"),
                "stale",
            ),
            hide_index=True,
            width="stretch",
        )

if not snap_ok:
    st.info("No snapshot yet: `gpuledger run` publishes one after its first ingest.")
    st.stop()

reads = {
    name: printable_frame(frame) for name, frame in data.data_health(data.published_at()).items()
}

if catalog is not None and advisor_reads.has_advisor_tables(data.snapshot()):
    since = date.today() - timedelta(days=cfg.advisor.window_days + 1)
    unpriced = advisor_reads.unpriced_models(advisor_reads.ledger(data.snapshot(), since))
    if unpriced.height:
        st.subheader("Unpriced GPUs")
        for line in unpriced_warnings(unpriced, catalog):
            st.warning(escape_markdown(line))
        st.dataframe(unpriced, hide_index=True, width="stretch")


# How late a source may be: "late" past twice its expected lag, "stale" past ten times.
STATUS_COLORS = {
    "on time": "background-color: rgba(33, 195, 84, 0.18)",
    "late": "background-color: rgba(255, 189, 69, 0.30)",
    "stale": "background-color: rgba(255, 75, 75, 0.22)",
}
# Bills arrive about a day after the hour they charge (Cost Explorer, CUR and FOCUS exports).
BILL_LAG_S = 48 * 3600.0


def telemetry_lag_s() -> float:
    """How old a host's newest sample normally is here: the agent's flush, then the ingest and
    the publication (and the shipping, where batches come from other hosts)."""
    lag = cfg.collect.flush_interval_s + cfg.run.ingest_interval_s + cfg.run.publish_interval_s
    return lag + (cfg.ship.interval_s if cfg.ship.pull_from else 0.0)


def lag_status(expected_s: float) -> pl.Expr:
    """on time / late / stale: the lag against what is expected of the source."""
    lag = pl.col("lag_s")
    return (
        pl.when(lag.is_null())
        .then(pl.lit(UNKNOWN))
        .when(lag <= 2 * expected_s)
        .then(pl.lit("on time"))
        .when(lag <= 10 * expected_s)
        .then(pl.lit("late"))
        .otherwise(pl.lit("stale"))
    )


def lag_table(title: str, frame: pl.DataFrame, empty: str, expected_s: float, what: str) -> None:
    """A source table with its lag in words, each row coloured by how that lag compares with
    what is expected of the source; or what to do when it is empty."""
    st.subheader(title)
    if not frame.height:
        st.info(empty)
        return
    shown = frame.with_columns(status=lag_status(expected_s), lag=duration_text("lag_s")).drop(
        "lag_s"
    )
    table = shown.to_pandas()

    def colour(row) -> list[str]:
        return [STATUS_COLORS.get(row["status"], "")] * len(row)

    st.dataframe(table.style.apply(colour, axis=1), hide_index=True, width="stretch")
    st.caption(
        f"Expected: {what} within {duration(expected_s)}; late past {duration(2 * expected_s)},"
        f" stale past {duration(10 * expected_s)}."
    )


def with_lag(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """`frame` with `lag_s`: seconds from its `column` to now (the page's clock)."""
    if column not in frame.columns:
        return frame
    now = datetime.now(UTC)
    return frame.with_columns(
        lag_s=(pl.lit(now) - pl.col(column)).dt.total_seconds(fractional=True)
    )


lag_table(
    "GPU telemetry by host",
    with_lag(reads["hosts"], "last_sample"),
    "No GPU samples yet: run `gpuledger collect` on your GPU hosts or import samples.",
    telemetry_lag_s(),
    "a host's newest sample",
)
lag_table(
    "Billing by source",
    with_lag(reads["billing"], "last_charge"),
    "No bills yet: `gpuledger import focus FILE` or configure [aws] in the configuration.",
    BILL_LAG_S,
    "the newest charge of a source (bills come about a day late)",
)
st.subheader("Billing pulls")
pull_rows = pull_status_rows(status_path(cfg.billing_state_path))
if pull_rows:  # each provider's last pull (aws, azure, gcp), from the pulls' status file
    st.dataframe(pl.DataFrame(pull_rows), hide_index=True, width="stretch")
else:
    st.info(
        "No billing pull has run yet: configure [aws], [azure] or [gcp] and run "
        "`gpuledger billing aws|azure|gcp` (or the daemon)."
    )
st.subheader("Errors (last 24 h)")
if reads["health"].height:
    st.dataframe(reads["health"], hide_index=True, width="stretch")
else:
    st.success("No health records: every GPU answered.")
st.subheader("Ingest")
st.dataframe(reads["ingest"], hide_index=True, width="stretch")
st.subheader("Set aside by the ingest")
aside = data.paths().spool / "_rejected"
folder = escape_markdown(printable(aside))
rejected = reads["rejected"]
if rejected.height:
    st.warning(
        f"{plural(rejected.height, 'spool file')} could not be ingested and were moved to "
        f"{folder}; the rest of the spool went on. Each row says why (the file's row and column "
        "where known). Fix the cause, then move the file back to its place in the spool: the "
        "next ingest takes it."
    )
    st.dataframe(rejected, hide_index=True, width="stretch")
else:
    st.success("No spool file was set aside: every batch was ingested.")
unrecorded = len(list(aside.rglob("*.parquet"))) - rejected.height if aside.is_dir() else 0
if unrecorded > 0:
    st.info(
        f"{plural(unrecorded, 'more file')} in {folder} from before gpuledger recorded why: "
        "see the daemon's log."
    )
