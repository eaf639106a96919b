"""The sidebar's filters as data: which UTC days a time range covers, the period it is compared
with, the address they are shared by, and the rows they keep. No Streamlit run, no clock: every
test passes its `today`."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from dashboard.filters import (
    CUSTOM,
    RANGES,
    Filters,
    compared,
    from_query,
    previous_window,
    range_label,
    window_for,
)

WED = date(2026, 11, 25)  # a Wednesday
CHOICES = {"host": ["dgx-a100", "i-0abc"], "workload": ["llm", "notebook"]}


@pytest.mark.parametrize(
    ("range_", "today", "start", "end", "label"),
    [
        # the last N days: today and the N-1 before it, N bars on a daily chart
        ("7", WED, date(2026, 11, 19), WED, "last 7 days"),
        ("1", WED, WED, WED, "today"),
        ("30", date(2026, 12, 1), date(2026, 11, 2), date(2026, 12, 1), "last 30 days"),
        # a calendar week starts on Monday; this one runs to today
        ("this_week", WED, date(2026, 11, 23), WED, "this week"),
        ("this_week", date(2026, 11, 23), date(2026, 11, 23), date(2026, 11, 23), "this week"),
        ("last_week", WED, date(2026, 11, 16), date(2026, 11, 22), "last week"),
        # Sunday: the week is Monday 22 Nov ... Sunday 29 Nov 2026
        ("last_week", date(2026, 11, 29), date(2026, 11, 16), date(2026, 11, 22), "last week"),
        ("this_month", WED, date(2026, 11, 1), WED, "this month"),
        ("last_month", WED, date(2026, 10, 1), date(2026, 10, 31), "last month"),
        ("last_month", date(2027, 1, 5), date(2026, 12, 1), date(2026, 12, 31), "last month"),
        ("last_month", date(2028, 3, 1), date(2028, 2, 1), date(2028, 2, 29), "last month"),
    ],
)
def test_the_days_a_range_covers(range_, today, start, end, label) -> None:
    window = window_for(range_, today)
    assert (window.start, window.end, window.label) == (start, end, label)
    assert window.days == (end - start).days + 1
    assert window.day_list()[0] == start and window.day_list()[-1] == end
    assert len(window.day_list()) == window.days


def test_last_7_days_is_seven_days_from_midnight_utc() -> None:
    window = window_for("7", WED)
    assert window.days == 7  # not 8: the "Last 7 days shows 8 bars"
    assert window.since.isoformat() == "2026-11-19T00:00:00+00:00"
    assert window.until.isoformat() == "2026-11-26T00:00:00+00:00"  # exclusive
    assert window.span() == "Nov 19 – Nov 25, 2026"
    assert window.short_span() == "Nov 19–25"


def test_custom_dates_and_a_span_across_years() -> None:
    window = window_for(CUSTOM, WED, (date(2025, 12, 20), date(2026, 1, 10)))
    assert (window.start, window.end, window.days) == (date(2025, 12, 20), date(2026, 1, 10), 22)
    assert window.label == window.span() == "Dec 20, 2025 – Jan 10, 2026"
    assert window.short_span() == "Dec 20–Jan 10"


@pytest.mark.parametrize(
    ("range_", "today", "start", "end"),
    [
        # the same number of days just before: 7 days before Nov 19..25 are Nov 12..18
        ("7", WED, date(2026, 11, 12), date(2026, 11, 18)),
        ("last_week", WED, date(2026, 11, 9), date(2026, 11, 15)),
        # month to date (Dec 1..3) against the same days of the month before (Nov 1..3)
        ("this_month", date(2026, 12, 3), date(2026, 11, 1), date(2026, 11, 3)),
        # March 1..30 against February 1..28 (the 30th clamped to February's last day)
        ("this_month", date(2027, 3, 30), date(2027, 2, 1), date(2027, 2, 28)),
        # a whole month against the whole month before: October has 31 days, September 30
        ("last_month", date(2026, 11, 2), date(2026, 9, 1), date(2026, 9, 30)),
        # the last day of February is the whole month: against all of January
        ("this_month", date(2028, 2, 29), date(2028, 1, 1), date(2028, 1, 31)),
    ],
)
def test_the_previous_period(range_, today, start, end) -> None:
    previous = previous_window(range_, window_for(range_, today))
    assert (previous.start, previous.end) == (start, end)


def test_the_previous_period_of_custom_dates_is_as_long_and_just_before() -> None:
    window = window_for(CUSTOM, WED, (date(2026, 11, 1), date(2026, 11, 10)))
    previous = previous_window(CUSTOM, window)
    assert (previous.start, previous.end) == (date(2026, 10, 22), date(2026, 10, 31))
    assert previous.days == window.days == 10


@pytest.mark.parametrize(
    ("params", "range_", "start", "end"),
    [
        ({}, "7", date(2026, 11, 19), WED),
        ({"days": "30"}, "30", date(2026, 10, 27), WED),
        ({"days": "8"}, "7", date(2026, 11, 19), WED),  # not a choice: the default
        ({"days": "lots"}, "7", date(2026, 11, 19), WED),
        ({"period": "last_month"}, "last_month", date(2026, 10, 1), date(2026, 10, 31)),
        ({"period": "fortnight"}, "7", date(2026, 11, 19), WED),
        ({"from": "2026-11-01", "to": "2026-11-15"}, CUSTOM, date(2026, 11, 1), date(2026, 11, 15)),
        # custom dates win over days; a date after today ends at today
        ({"from": "2026-11-20", "to": "2027-01-01", "days": "30"}, CUSTOM, date(2026, 11, 20), WED),
        ({"from": "2026-11-15", "to": "2026-11-01"}, "7", date(2026, 11, 19), WED),  # reversed
        ({"from": "2026-11-01"}, "7", date(2026, 11, 19), WED),  # half a range
        ({"from": "1926-11-01", "to": "2026-11-01"}, "7", date(2026, 11, 19), WED),  # a typo'd year
    ],
)
def test_the_range_from_the_address(params, range_, start, end) -> None:
    flt = from_query(params, CHOICES, WED)
    assert (flt.range, flt.window.start, flt.window.end) == (range_, start, end)


def test_values_that_do_not_exist_are_dropped_and_the_address_round_trips() -> None:
    params = {
        "days": "14",
        "host": ["dgx-a100", "gone-host"],
        "workload": "llm",
        "placement": ["cloud", "moon"],
        "compare": "1",
        "focus": "llm",  # another widget's: not a filter
    }
    flt = from_query(params, CHOICES, WED)
    assert flt.hosts == ["dgx-a100"] and flt.workloads == ["llm"] and flt.placements == ["cloud"]
    assert flt.compare
    assert flt.query() == {
        "days": ["14"],
        "host": ["dgx-a100"],
        "workload": ["llm"],
        "placement": ["cloud"],
        "compare": ["1"],
    }
    assert from_query(flt.query(), CHOICES, WED) == flt
    custom = from_query({"from": "2026-11-01", "to": "2026-11-15"}, CHOICES, WED)
    assert custom.query() == {"from": ["2026-11-01"], "to": ["2026-11-15"]}
    assert from_query({"period": "this_week"}, CHOICES, WED).query() == {"period": ["this_week"]}


def test_describe_names_the_days_and_the_comparison() -> None:
    flt = from_query({"days": "7", "host": "dgx-a100", "compare": "1"}, CHOICES, WED)
    assert flt.describe() == (
        "last 7 days (Nov 19 – Nov 25, 2026, UTC) · host: dgx-a100"
        " · compared with Nov 12 – Nov 18, 2026"
    )


def test_every_range_has_a_label() -> None:
    assert [range_label(r) for r in RANGES] == [
        "Today",
        "Last 7 days",
        "Last 14 days",
        "Last 30 days",
        "Last 90 days",
        "Last 365 days",
        "This week",
        "Last week",
        "This month",
        "Last month",
        "Custom dates",
    ]


def test_a_comparison_as_metric_deltas() -> None:
    flt = from_query({"days": "7", "compare": "1"}, CHOICES, WED)
    # $1,100 now against $1,000 before: +$100, +10 %; money down is good (inverse colours)
    assert compared(flt, 1100.0, 1000.0, "${:,.0f}") == {
        "delta": "+$100 (+10 %)",
        "delta_color": "inverse",
        "delta_description": "vs Nov 12–18",
    }
    # 450 GPU-hours against 500: -50, -10 %, neither good nor bad
    assert compared(flt, 450.0, 500.0, "{:,.0f}", better=None)["delta"] == "-50 (-10 %)"
    assert compared(flt, 450.0, 500.0, "{:,.0f}", better=None)["delta_color"] == "off"
    # nothing before: the change without a percentage
    assert compared(flt, 25.0, 0.0, "${:,.2f}")["delta"] == "+$25.00"
    assert compared(flt, 5.0, 5.0, "${:,.0f}") == {"delta": 0, "delta_description": "vs Nov 12–18"}
    assert compared(flt, 5.0, None, "${:,.0f}") == {}
    assert compared(from_query({"days": "7"}, CHOICES, WED), 1.0, 2.0, "{}") == {}


def test_the_filters_keep_gpu_rows_of_their_hosts_workloads_and_placements() -> None:
    gpus = pl.DataFrame(
        {
            "host": ["dgx-a100", "dgx-a100", "i-0abc", "i-0abc"],
            "workload": ["llm", None, "llm", "notebook"],
        }
    )
    cloud = ["i-0abc"]

    def kept(**params) -> list[tuple]:
        return from_query(params, CHOICES, WED).gpus(gpus, cloud).rows()

    assert kept() == gpus.rows()
    assert kept(host="dgx-a100") == [("dgx-a100", "llm"), ("dgx-a100", None)]
    assert kept(workload="llm") == [("dgx-a100", "llm"), ("i-0abc", "llm")]
    assert kept(placement="cloud") == [("i-0abc", "llm"), ("i-0abc", "notebook")]
    assert kept(placement="local", workload="llm") == [("dgx-a100", "llm")]
    assert Filters(window=window_for("7", WED)).gpus(gpus, cloud).height == 4
