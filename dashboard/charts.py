"""Altair charts, drawn the same way on every page.

- Colours: cloud blue and local orange for placements; one colour per workload (host, GPU model)
  on every page, chosen from a palette without the cloud blue, the local orange and the alarm
  red (`name_colors`); `__idle__` grey.
- Days: a daily chart's x axis lists every UTC day of the chosen window in order (its domain is
  the window, not the data's order, which Streamlit's incremental updates scramble), so "last
  7 days" is seven bars.
- Hours: time axes are UTC (a `utc` scale and explicit date formats), as the captions say,
  whatever the browser's time zone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, timedelta

import altair as alt
import polars as pl

from dashboard.filters import Window
from tables.units import IDLE

CLOUD_BLUE = "#4C78A8"
LOCAL_ORANGE = "#F58518"
ALARM_RED = "#E45756"
RESERVED = (CLOUD_BLUE, LOCAL_ORANGE, ALARM_RED)  # never a workload's colour
IDLE_GREY = "#BAB0AC"
BUSY_GREEN = "#54A24B"  # busy is good: activity in green, never red
PLACEMENT_COLORS = alt.Scale(domain=["cloud", "local"], range=[CLOUD_BLUE, LOCAL_ORANGE])
# Greens, olives, yellows, teal, purples, pinks, browns, charcoal: each at least 80 apart (RGB)
# from the three reserved colours (tests/dashboard/test_charts.py measures it).
NAME_PALETTE = (
    "#54A24B",
    "#88D27A",
    "#2F6B3A",
    "#6B8E23",
    "#BCBD22",
    "#F1CE63",
    "#86BCB6",
    "#00A2A2",
    "#B07AA1",
    "#D4A6C8",
    "#E377C2",
    "#7B4173",
    "#8C6D31",
    "#C49C94",
    "#3B3B3B",
    "#DBDB8D",
)
# Wasted time by kind (Alerts): its own colours, none of the reserved ones.
WASTE_KIND_COLORS = {
    "allocated, idle": "#8C6D31",
    "busy, inefficient": "#F1CE63",
    "over-powered": "#B07AA1",
}
DAILY_HEIGHT = 260
BAR_STEP = 30  # px per bar of a horizontal bar chart


def _slot(name: str) -> int:
    """A stable slot of the palette (Python's own hash changes between processes)."""
    digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % len(NAME_PALETTE)


def name_colors(names: Iterable[str]) -> dict[str, str]:
    """One colour per name: its hash's slot of the palette, or the next free one when a name
    before it (in sorted order) took that slot, so names differ while the palette lasts; a page
    that passes the same names (all the ledger's workloads) gives each the same colour."""
    taken: set[int] = set()
    out: dict[str, str] = {}
    for name in sorted(set(names)):
        if name == IDLE:
            out[name] = IDLE_GREY
            continue
        slot = _slot(name)
        free = [s for s in range(len(NAME_PALETTE)) if s not in taken]
        if free:  # the first free slot at or after its own, wrapping round
            slot = min(free, key=lambda s: (s - slot) % len(NAME_PALETTE))
            taken.add(slot)
        out[name] = NAME_PALETTE[slot]
    return out


def name_scale(shown: Iterable[str], known: Iterable[str] = ()) -> alt.Scale:
    """A colour scale for the names a chart shows, coloured as among all `known` names."""
    colors = name_colors([*known, *shown])
    domain = sorted(set(shown))
    return alt.Scale(domain=domain, range=[colors[n] for n in domain])


def day_label(day: date, window: Window) -> str:
    return f"{day:%b %d}" if window.start.year == window.end.year else f"{day:%Y-%m-%d}"


def with_day_labels(frame: pl.DataFrame, window: Window) -> pl.DataFrame:
    """`label` (the axis text) and `day_utc` (the tooltip's) beside `day`."""
    fmt = "%b %d" if window.start.year == window.end.year else "%Y-%m-%d"
    return frame.with_columns(
        label=pl.col("day").dt.strftime(fmt),
        day_utc=pl.col("day").dt.strftime("%a %Y-%m-%d (UTC)"),
    )


def day_x(window: Window) -> alt.X:
    """Every day of the window, in order, whatever the data holds."""
    domain = [day_label(d, window) for d in window.day_list()]
    return alt.X(
        "label:O",
        title=None,
        sort=domain,
        scale=alt.Scale(domain=domain),
        axis=alt.Axis(labelAngle=0, labelOverlap=True),
    )


def _utc_day(day: date, plus_days: int = 0) -> alt.DateTime:
    """Midnight UTC of a day, as Vega-Lite takes it in a scale's domain (plain epoch numbers
    there come out as NaN)."""
    day = day + timedelta(days=plus_days)
    return alt.DateTime(year=day.year, month=day.month, date=day.day, utc=True)


def hour_x(field: str, window: Window, title: str = "hour (UTC)") -> alt.X:
    """A UTC time axis over the window: ticks at UTC midnights, labelled with the date."""
    step = max(1, -(-window.days // 10))  # at most about ten labelled days
    return alt.X(
        f"{field}:T",
        title=title,
        scale=alt.Scale(type="utc", domain=[_utc_day(window.start), _utc_day(window.end, 1)]),
        axis=alt.Axis(
            format="%b %d",
            tickCount={"interval": "day", "step": step},
            labelAngle=0,
            labelOverlap=True,
        ),
    )


def daily_by_workload(
    daily: pl.DataFrame,
    title: str,
    window: Window,
    known: Iterable[str] = (),
    *,
    field: str = "workload",
    legend: str = "workload",
) -> alt.Chart:
    """Stacked bars per day, one colour per workload (or host, GPU model) (cost in USD)."""
    frame = with_day_labels(daily, window)
    return (
        alt.Chart(frame.to_pandas(), title=title)
        .mark_bar()
        .encode(
            x=day_x(window),
            y=alt.Y("cost_usd:Q", title="USD", stack=True),
            color=alt.Color(
                f"{field}:N", title=legend, scale=name_scale(frame[field].to_list(), known)
            ),
            tooltip=[
                alt.Tooltip("day_utc:N", title="day"),
                alt.Tooltip(f"{field}:N", title=legend),
                alt.Tooltip("cost_usd:Q", title="USD", format="$,.2f"),
            ],
        )
        .properties(height=DAILY_HEIGHT)
    )


def daily_by_placement(
    daily: pl.DataFrame, value: str, title: str, fmt: str, window: Window
) -> alt.Chart:
    """Stacked bars per day, cloud and local."""
    return (
        alt.Chart(with_day_labels(daily, window).to_pandas(), title=title)
        .mark_bar()
        .encode(
            x=day_x(window),
            y=alt.Y(f"{value}:Q", title=None, stack=True),
            color=alt.Color("placement:N", scale=PLACEMENT_COLORS, title="placement"),
            tooltip=[
                alt.Tooltip("day_utc:N", title="day"),
                alt.Tooltip("placement:N"),
                alt.Tooltip(f"{value}:Q", title=title, format=fmt),
            ],
        )
        .properties(height=DAILY_HEIGHT)
    )


def busy_per_hour(hourly: pl.DataFrame, title: str, window: Window) -> alt.Chart:
    """A busy fraction (0..1) per UTC hour; hours without an activity signal have no point."""
    frame = hourly.with_columns(hour_utc=pl.col("hour").dt.strftime("%a %Y-%m-%d %H:00 UTC"))
    return (
        alt.Chart(frame.to_pandas(), title=title)
        .mark_line(point=frame.height <= 48, color=BUSY_GREEN)
        .encode(
            x=hour_x("hour", window),
            y=alt.Y(
                "busy:Q", title="busy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
            ),
            tooltip=[alt.Tooltip("hour_utc:N", title="hour"), alt.Tooltip("busy:Q", format=".0%")],
        )
        .properties(height=DAILY_HEIGHT)
    )


def wasted_per_workload(by_workload: pl.DataFrame, title: str) -> alt.Chart:
    """Horizontal bars, one per workload, stacked by kind of waste; each bar `BAR_STEP` px high
    whatever the number of workloads (a fixed total height squeezes them to a line)."""
    return (
        alt.Chart(by_workload.to_pandas(), title=title)
        .mark_bar()
        .encode(
            y=alt.Y("workload:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260)),
            x=alt.X("wasted_usd:Q", title="wasted USD", stack=True),
            color=alt.Color(
                "kind:N",
                title="kind",
                scale=alt.Scale(
                    domain=list(WASTE_KIND_COLORS), range=list(WASTE_KIND_COLORS.values())
                ),
            ),
            tooltip=[
                alt.Tooltip("workload:N"),
                alt.Tooltip("kind:N"),
                *([alt.Tooltip("runs:Q")] if "runs" in by_workload.columns else []),
                alt.Tooltip("wasted_gpu_hours:Q", title="GPU-hours", format=",.1f"),
                alt.Tooltip("wasted_usd:Q", title="USD", format="$,.2f"),
            ],
        )
        .properties(height=alt.Step(BAR_STEP))
    )


def hybrid_demand(curve: pl.DataFrame) -> alt.LayerChart:
    """A workload told to go hybrid: the GPUs its processes held each hour (UTC) as a stepped
    area in cloud blue, and the chosen local base as a line in local orange (local GPUs carry
    the demand under it, the cloud the peaks over it)."""
    base = float(curve["base_gpus"][0]) if curve.height else 0.0
    frame = curve.select("hour", "gpus", "base_gpus").sort("hour")
    area = (
        alt.Chart(frame)
        .mark_area(color=CLOUD_BLUE, opacity=0.35, interpolate="step-after")
        .encode(
            x=alt.X(
                "hour:T",
                title="hour (UTC)",
                scale=alt.Scale(type="utc"),
                axis=alt.Axis(format="%b %d", labelAngle=0, labelOverlap=True),
            ),
            y=alt.Y("gpus:Q", title="GPUs in use"),
            tooltip=[alt.Tooltip("utchoursminutes(hour):T", title="hour (UTC)"), "gpus:Q"],
        )
    )
    line = alt.Chart(frame).mark_rule(color=LOCAL_ORANGE, strokeWidth=2).encode(y="base_gpus:Q")
    return (area + line).properties(
        height=DAILY_HEIGHT, title=f"Demand each hour and the local base ({base:g} GPUs)"
    )
