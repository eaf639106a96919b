"""What the Live page shows, as nvitop and the DCGM Grafana board show it: per GPU its activity,
memory and power now and as a sparkline over the last minutes (from the newest spool files),
temperature, SM clock, power against its limit, ECC and XID errors where the source has them,
its open alert; per host its instance type (from the bill); the processes with their user,
command, memory and workload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import streamlit as st

from dashboard import data
from dashboard.format import KIND_WORDS, UNKNOWN, duration, usd, words
from tables.records import GPU_SAMPLES
from tables.units import MIB_PER_GIB, activity

HISTORY_S = 300.0  # the sparklines' span
POINTS = 60  # at most this many points a sparkline
NO_ALERT = "none"  # the open-alert column of a GPU without one (never an empty cell)
SIGNAL_WORDS = {"gpm": "SM active (GPM)", "dcgm": "SM active (DCGM)"}


def history() -> pl.DataFrame:
    """Every GPU sample of the last HISTORY_S seconds in the spool."""
    from warehouse.live import recent_gpu_samples

    return recent_gpu_samples(data.paths().spool, HISTORY_S)


@st.cache_data(ttl=30, show_spinner=False)
def instance_types(version: str) -> dict[str, str]:
    """host -> the instance type its bill names (cloud hosts only)."""
    from warehouse import advisor_reads

    snap = data.snapshot()
    if not data.snapshot_ready() or not advisor_reads.has_advisor_tables(snap):
        return {}
    return dict(advisor_reads.instances(snap).select("host", "instance_type").iter_rows())


@st.cache_data(ttl=10, show_spinner=False)
def open_alerts(version: str) -> pl.DataFrame:
    """The open alerts of the last snapshot (host, gpu_uuid, workload, kind, duration, money)."""
    from warehouse.alerts import snapshot_alerts

    if not data.snapshot_ready():
        return pl.DataFrame()
    alerts = snapshot_alerts(data.snapshot(), datetime.now(UTC) - timedelta(days=1))
    return alerts.filter(pl.col("state") == "open")


def host_title(host: str, types: dict[str, str]) -> str:
    """`i-0abc · p5.4xlarge` for a billed cloud instance, `dgx-a100 · local` otherwise."""
    return f"{host} · {types[host]}" if host in types else f"{host} · local"


def _percent(value: pl.Expr, of: pl.Expr) -> pl.Expr:
    return pl.when(of > 0).then((value / of * 100.0).clip(0.0, 100.0))


def sparklines(samples: pl.DataFrame) -> pl.DataFrame:
    """Per GPU (host, gpu_uuid) the lists the sparklines draw, oldest first, at most POINTS
    points: activity %, memory used % of the GPU's and power % of its limit (else of the most
    it drew in the span)."""
    if samples.height == 0:
        return pl.DataFrame(schema={"host": pl.String, "gpu_uuid": pl.String})
    span_s = samples.select((pl.col("ts").max() - pl.col("ts").min()).dt.total_seconds()).item()
    step_s = max(1, int((span_s or 0) / POINTS) + 1)
    peak = pl.col("power_w").max().over("host", "gpu_uuid")
    limit = pl.coalesce(pl.col("power_limit_w"), peak)
    return (
        samples.with_columns(
            bucket=pl.col("ts").dt.truncate(f"{step_s}s"),
            _activity=activity(),
            _memory=_percent(pl.col("mem_used_mib"), pl.col("mem_total_mib")),
            _power=_percent(pl.col("power_w"), limit),
        )
        .group_by("host", "gpu_uuid", "bucket")
        .agg(pl.col("_activity", "_memory", "_power").mean())
        .sort("bucket")
        .group_by("host", "gpu_uuid", maintain_order=True)
        .agg(
            activity_history=pl.col("_activity").drop_nulls().round(1),
            memory_history=pl.col("_memory").drop_nulls().round(1),
            power_history=pl.col("_power").drop_nulls().round(1),
        )
    )


def signal_words() -> pl.Expr:
    """Which activity signal a sample carries, in words."""
    return pl.col("activity_kind").replace_strict(SIGNAL_WORDS, default="utilization (NVML)")


def _alert_words(alert: dict[str, Any]) -> str:
    return (
        f"{words(alert['kind'], KIND_WORDS)} for {duration(alert['duration_s'])},"
        f" {usd(alert['wasted_usd'])} wasted"
    )


def gpu_rows(now: pl.DataFrame, lines: pl.DataFrame, alerts: pl.DataFrame) -> pl.DataFrame:
    """One row per GPU of a host, in words and numbers, with its sparklines and open alert."""
    label = GPU_SAMPLES.label
    alert_text = (
        alerts.select(
            "host",
            "gpu_uuid",
            alert=pl.struct("kind", "duration_s", "wasted_usd").map_elements(
                _alert_words, return_dtype=pl.String
            ),
        )
        .group_by("host", "gpu_uuid")
        .agg(pl.col("alert").str.join("; "))
        if alerts.height
        else pl.DataFrame(schema={"host": pl.String, "gpu_uuid": pl.String, "alert": pl.String})
    )
    gib = pl.col("mem_used_mib") / MIB_PER_GIB
    return (
        now.join(lines, on=["host", "gpu_uuid"], how="left")
        .join(alert_text, on=["host", "gpu_uuid"], how="left")
        .select(
            pl.col("gpu_index").alias(label("gpu_index")),
            pl.col("gpu_model").fill_null(UNKNOWN).alias(label("gpu_model")),
            activity().alias("activity %"),
            "activity_history",
            signal_words().alias("signal"),
            of_text(gib, pl.col("mem_total_mib") / MIB_PER_GIB, "GiB", 1).alias("memory"),
            "memory_history",
            of_text(pl.col("power_w"), pl.col("power_limit_w"), "W", 0).alias("power"),
            "power_history",
            _unit(pl.col("temperature_c"), "°C").alias("temperature"),
            _unit(pl.col("sm_clock_mhz"), "MHz").alias("SM clock"),
            _errors().alias("errors"),
            pl.col("workload").fill_null("no process").alias("workload"),
            pl.col("alert").fill_null(NO_ALERT).alias("open alert"),
        )
    )


def of_text(value: pl.Expr, whole: pl.Expr, unit: str, digits: int) -> pl.Expr:
    """`350 of 700 W`, `40.5 of 80 GiB` (`350 W` where the whole is unknown, `—` where the
    value is); the whole in whole units."""
    v = value.round(digits) if digits else value.round(0).cast(pl.Int64)
    v, w = v.cast(pl.String), whole.round(0).cast(pl.Int64).cast(pl.String)
    return (
        pl.when(value.is_null())
        .then(pl.lit(UNKNOWN))
        .when(whole.is_null())
        .then(pl.format("{} {}", v, pl.lit(unit)))
        .otherwise(pl.format("{} of {} {}", v, w, pl.lit(unit)))
    )


def _unit(value: pl.Expr, unit: str) -> pl.Expr:
    return (
        pl.when(value.is_null())
        .then(pl.lit(UNKNOWN))
        .otherwise(pl.format("{} {}", value.round(0).cast(pl.Int64), pl.lit(unit)))
    )


def _errors() -> pl.Expr:
    """Uncorrected ECC errors and the last XID, where the source gives them (`—` where not)."""
    ecc = pl.col("ecc_errors").cast(pl.Int64)
    xid = pl.col("xid_error").cast(pl.Int64)
    ecc_text = pl.when(ecc > 0).then(pl.format("{} uncorrected ECC", ecc))
    xid_text = pl.when(xid > 0).then(pl.format("XID {}", xid))
    known = pl.col("ecc_errors").is_not_null() | pl.col("xid_error").is_not_null()
    return (
        pl.concat_str(ecc_text, xid_text, separator=", ", ignore_nulls=True)
        .replace("", None)
        .fill_null(pl.when(known).then(pl.lit("none")).otherwise(pl.lit(UNKNOWN)))
    )


GPU_COLUMNS = {
    "activity %": st.column_config.ProgressColumn(
        "activity %",
        min_value=0,
        max_value=100,
        format="%.0f%%",
        help="SM active where the GPU reports it (GPM, DCGM), else NVML utilization.",
        color="auto",  # busy is good: green when busy, never the alarm red at 98 %
    ),
    "activity_history": st.column_config.LineChartColumn(
        "activity, 5 min",
        y_min=0,
        y_max=100,
        help="Activity %, the last 5 minutes.",
        color="green",  # as the activity bar: busy is good; never the theme's alarm red
    ),
    "memory_history": st.column_config.LineChartColumn(
        "memory, 5 min",
        y_min=0,
        y_max=100,
        help="Memory used, % of the GPU's, last 5 minutes.",
        color="gray",
    ),
    "power_history": st.column_config.LineChartColumn(
        "power, 5 min",
        y_min=0,
        y_max=100,
        help="Power drawn, % of the enforced limit (of the most it drew where the source has no"
        " limit), the last 5 minutes.",
        color="gray",
    ),
    "errors": st.column_config.TextColumn(
        "errors", help="Uncorrected ECC errors since the driver loaded and the last XID error."
    ),
}


def gpu_table(rows: pl.DataFrame) -> None:
    """The GPUs of one host; a GPU with an open alert is highlighted."""
    frame = rows.to_pandas()
    alerted = frame["open alert"] != NO_ALERT

    def highlight(row: Any) -> list[str]:
        color = "background-color: rgba(255, 75, 75, 0.15)" if alerted[row.name] else ""
        return [color] * len(row)

    st.dataframe(
        frame.style.apply(highlight, axis=1),
        hide_index=True,
        width="stretch",
        column_config=GPU_COLUMNS,
    )


def process_rows(procs: pl.DataFrame, gpus: pl.DataFrame) -> pl.DataFrame:
    """One host's processes: GPU, pid, user, command, memory in GiB, SM share, workload."""
    index = gpus.select("gpu_uuid", gpu=pl.col("gpu_index"))
    return (
        procs.join(index, on="gpu_uuid", how="left")
        .sort("gpu", "pid", nulls_last=True)
        .select(
            "gpu",
            pl.col("pid").cast(pl.String).fill_null(UNKNOWN),
            pl.col("user").fill_null(UNKNOWN),
            pl.col("command").fill_null(pl.col("pod")).fill_null(UNKNOWN),
            (pl.col("used_mib") / MIB_PER_GIB).round(2).alias("memory GiB"),
            pl.when(pl.col("sm_pct").is_null())
            .then(pl.lit(UNKNOWN))
            .otherwise(pl.format("{} %", pl.col("sm_pct").round(0).cast(pl.Int64)))
            .alias("SM share"),
            pl.col("workload").fill_null(UNKNOWN),
        )
    )
