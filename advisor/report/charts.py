"""The report's charts as static PNG images (Altair through vl-convert), so the files read
anywhere, e-mail too: spend per workload (cloud and local), GPU-hours per workload (busy, not
busy, and activity unknown), and for each workload told to go hybrid its hourly demand with the
chosen local base line."""

from __future__ import annotations

import altair as alt
import polars as pl

from advisor.report.figures import Report, hybrid_image

CLOUD, LOCAL = "#4C78A8", "#F58518"


def chart_images(rep: Report) -> dict[str, bytes]:
    """PNG charts: spend per workload and GPU-hours per workload (busy, not busy, and activity
    unknown: time without an activity signal is neither)."""
    by = rep.this.by_workload
    if by.height == 0:
        return {}
    out = {}
    charts: list[tuple[str, alt.TopLevelMixin]] = [
        ("spend", _spend_chart(rep)),
        ("hours", _hours_chart(rep)),
    ]
    charts += list(hybrid_charts(rep.curves).items())
    for name, chart in charts:
        import vl_convert as vlc

        out[name] = vlc.vegalite_to_png(chart.to_json(), scale=2)
    return out


def hybrid_charts(curves: pl.DataFrame) -> dict[str, alt.LayerChart]:
    """Per hybrid workload: GPUs its processes held each hour, and the local base line (local
    GPUs carry the demand under it, the cloud the peaks over it)."""
    out: dict[str, alt.LayerChart] = {}
    if curves.height == 0:
        return out
    for (workload,), rows in curves.sort("hour").group_by("workload", maintain_order=True):
        frame = rows.select("hour", "gpus", "base_gpus").to_pandas()
        base = float(rows["base_gpus"][0])
        demand = (
            alt.Chart(frame, title=f"{workload}: GPUs in use each hour (UTC), local base {base:g}")
            .mark_area(color=CLOUD, opacity=0.35, interpolate="step-after")
            .encode(
                x=alt.X("hour:T", title=None, axis=alt.Axis(format="%d %b")),
                y=alt.Y("gpus:Q", title="GPUs"),
            )
        )
        line = alt.Chart(frame).mark_rule(color=LOCAL, strokeWidth=2).encode(y="base_gpus:Q")
        out[hybrid_image(str(workload))] = (demand + line).properties(width=560, height=160)
    return out


def _spend_chart(rep: Report) -> alt.Chart:
    by = rep.this.by_workload
    order = by["workload"].to_list()
    spend = by.select("workload", cloud=pl.col("cloud_usd"), local=pl.col("local_usd")).unpivot(
        index="workload", variable_name="placement", value_name="usd"
    )
    return (
        alt.Chart(spend.to_pandas(), title=f"Spend per workload, {rep.week} (USD)")
        .mark_bar()
        .encode(
            y=alt.Y("workload:N", sort=order, title=None),
            x=alt.X("usd:Q", title="USD", stack=True, axis=alt.Axis(format="$,.0f")),
            color=alt.Color(
                "placement:N",
                scale=alt.Scale(domain=["cloud", "local"], range=[CLOUD, LOCAL]),
                legend=alt.Legend(orient="bottom", title=None),
            ),
        )
        .properties(width=420, height=22 * len(order))
    )


def _hours_chart(rep: Report) -> alt.Chart:
    by = rep.this.by_workload
    order = by["workload"].to_list()
    hours = by.select(
        "workload",
        busy=pl.col("busy_gpu_hours"),
        **{
            "not busy": pl.col("activity_gpu_hours") - pl.col("busy_gpu_hours"),
            "unknown": pl.col("gpu_hours") - pl.col("activity_gpu_hours"),
        },
    ).unpivot(index="workload", variable_name="time", value_name="hours")
    return (
        alt.Chart(hours.to_pandas(), title=f"GPU-hours per workload, {rep.week}")
        .mark_bar()
        .encode(
            y=alt.Y("workload:N", sort=order, title=None),
            x=alt.X("hours:Q", title="GPU-hours", stack=True),
            color=alt.Color(
                "time:N",
                scale=alt.Scale(
                    domain=["busy", "not busy", "unknown"],
                    range=["#54A24B", "#D3D3D3", "#9ECAE9"],
                ),
                legend=alt.Legend(orient="bottom", title=None),
            ),
        )
        .properties(width=420, height=22 * len(order))
    )
