"""The charts' specifications: one colour per workload (never the cloud blue, the local orange or
the alarm red), daily axes that list the window's days in order, UTC time axes, bars that keep
their height. What the browser draws from them: tests/dashboard/test_browser.py."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import polars as pl
import pytest

from dashboard import charts
from dashboard.filters import CUSTOM, window_for
from tables.units import IDLE

TODAY = date(2026, 12, 3)
WORKLOADS = ["llm-pretrain", "research-notebook", "clinical-nlp", "weekly-sweep", "batch-queue"]


def _distance(a: str, b: str) -> float:
    rgb = [(int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)) for c in (a, b)]
    return sum((x - y) ** 2 for x, y in zip(*rgb, strict=True)) ** 0.5


def test_the_palette_keeps_clear_of_cloud_blue_local_orange_and_alarm_red() -> None:
    """Every palette colour is more than 80 apart (Euclidean RGB) from each reserved colour (the
    nearest pair, olive "#BCBD22" and orange "#F58518": sqrt(57² + 56² + 10²) ≈ 80.5), and the
    palette's own colours are more than 40 apart (mauve "#B07AA1" and rosy brown "#C49C94":
    sqrt(20² + 34² + 13²) ≈ 41.5)."""
    assert len(set(charts.NAME_PALETTE)) == len(charts.NAME_PALETTE) == 16
    for color in (*charts.NAME_PALETTE, charts.IDLE_GREY, *charts.WASTE_KIND_COLORS.values()):
        for reserved in charts.RESERVED:
            assert _distance(color, reserved) > 80, (color, reserved)
    for a in charts.NAME_PALETTE:
        for b in charts.NAME_PALETTE:
            assert a == b or _distance(a, b) > 40, (a, b)


def test_one_colour_per_workload_whatever_the_order_or_the_process() -> None:
    colors = charts.name_colors(WORKLOADS)
    shuffled = WORKLOADS[::-1]
    assert charts.name_colors(shuffled) == colors  # the order names come in does not matter
    assert len(set(colors.values())) == len(WORKLOADS)  # five names, five colours
    assert not set(colors.values()) & set(charts.RESERVED)
    # pinned: the slot is a blake2b hash of the name, not Python's per-process hash(), so a
    # workload has this colour in every server process and every session
    assert charts.name_colors(["llm-pretrain"]) == {"llm-pretrain": "#88D27A"}
    assert charts.name_colors([IDLE, "llm-pretrain"])[IDLE] == charts.IDLE_GREY


def test_sixteen_names_get_sixteen_colours_and_more_share() -> None:
    names = [f"team-{i}/job" for i in range(16)]
    assert len(set(charts.name_colors(names).values())) == 16
    crowd = charts.name_colors([f"w{i}" for i in range(40)])
    assert set(crowd.values()) == set(charts.NAME_PALETTE)  # all used, then shared


def test_a_chart_of_some_workloads_colours_them_as_among_all() -> None:
    """The Overview's cloud chart shows three workloads, the Workloads page all five: the
    colours of the three are the same on both, as `name_scale` takes the ledger's workloads."""
    some = ["llm-pretrain", "research-notebook", "clinical-nlp"]
    everyone = charts.name_colors(WORKLOADS)
    scale = charts.name_scale(some, WORKLOADS).to_dict()
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == {n: everyone[n] for n in some}


def _frame(days: list[date], workloads: list[str]) -> pl.DataFrame:
    rows = [(d, w, 10.0 + i) for i, (d, w) in enumerate((d, w) for d in days for w in workloads)]
    random.Random(3).shuffle(rows)  # any order, as a ledger read may return them
    return pl.DataFrame(rows, schema=["day", "workload", "cost_usd"], orient="row")


def test_a_daily_axis_lists_every_day_of_the_window_in_order() -> None:
    """30 days: 30 labels from Nov 04 to Dec 03 in calendar order, whatever the data's order
    and even where days hold no data (the data here has 3 of them)."""
    window = window_for("30", TODAY)
    data = _frame([date(2026, 12, 3), date(2026, 11, 20), date(2026, 11, 4)], WORKLOADS[:2])
    spec = charts.daily_by_workload(data, "t", window, WORKLOADS).to_dict()
    x = spec["encoding"]["x"]
    expected = [f"{d:%b %d}" for d in window.day_list()]
    assert x["scale"]["domain"] == x["sort"] == expected
    assert expected[0] == "Nov 04" and expected[-1] == "Dec 03" and len(expected) == 30
    seven = charts.daily_by_placement(
        data.with_columns(placement=pl.lit("cloud")),
        "cost_usd",
        "t",
        "$,.2f",
        window_for("7", TODAY),
    ).to_dict()
    assert len(seven["encoding"]["x"]["scale"]["domain"]) == 7  # "last 7 days": seven bars


def test_a_daily_axis_across_a_new_year_names_the_year() -> None:
    window = window_for(CUSTOM, TODAY, (date(2025, 12, 30), date(2026, 1, 2)))
    assert [charts.day_label(d, window) for d in window.day_list()] == [
        "2025-12-30",
        "2025-12-31",
        "2026-01-01",
        "2026-01-02",
    ]


def test_the_tooltip_days_are_utc_text_not_browser_time() -> None:
    frame = charts.with_day_labels(_frame([date(2026, 12, 1)], ["x"]), window_for("7", TODAY))
    assert frame.row(0, named=True)["day_utc"] == "Tue 2026-12-01 (UTC)"


def test_an_hourly_axis_is_utc_with_dates() -> None:
    """The issue's "12 PM" seven times: the axis is a utc scale over the window's days (from
    midnight UTC of the first to midnight after the last), labelled with dates."""
    window = window_for("7", TODAY)
    hourly = pl.DataFrame(
        {
            "hour": [datetime(2026, 11, 27, h, tzinfo=UTC) for h in range(3)],
            "busy": [0.5, None, 1.0],
        }
    )
    spec = charts.busy_per_hour(hourly, "t", window).to_dict()
    x = spec["encoding"]["x"]
    assert x["type"] == "temporal" and x["scale"]["type"] == "utc"
    assert x["scale"]["domain"] == [
        {"year": 2026, "month": 11, "date": 27, "utc": True},
        {"year": 2026, "month": 12, "date": 4, "utc": True},
    ]
    assert x["axis"]["format"] == "%b %d"
    assert x["axis"]["tickCount"] == {"interval": "day", "step": 1}
    assert spec["mark"]["color"] == charts.BUSY_GREEN
    tooltips = {t["field"] for t in spec["encoding"]["tooltip"]}
    assert "hour_utc" in tooltips  # "Fri 2026-11-27 00:00 UTC", not the browser's zone
    # a year: about ten labelled days, one every 37
    assert charts.hour_x("hour", window_for("365", TODAY)).to_dict()["axis"]["tickCount"] == {
        "interval": "day",
        "step": 37,
    }


@pytest.mark.parametrize("workloads", [1, 3, 12])
def test_the_wasted_per_workload_bars_keep_their_height(workloads: int) -> None:
    """The issue's 1 px line: a fixed total height shared by the bars, the legend and the axis;
    a step gives each workload's bar its own `BAR_STEP` px however many there are."""
    frame = pl.DataFrame(
        {
            "workload": [f"w{i}" for i in range(workloads)],
            "kind": ["allocated, idle"] * workloads,
            "wasted_usd": [1.0] * workloads,
            "wasted_gpu_hours": [1.0] * workloads,
        }
    )
    spec = charts.wasted_per_workload(frame, "t").to_dict()
    assert spec["height"] == {"step": charts.BAR_STEP}
    assert spec["encoding"]["color"]["scale"]["range"] == list(charts.WASTE_KIND_COLORS.values())
