"""Words and numbers (dashboard/format.py): dollars with separators and a true minus, "—" for
what is unknown, durations in s/min/h/days, plurals written out, codes in words."""

from __future__ import annotations

import polars as pl
import pytest

from dashboard.format import (
    ACTION_WORDS,
    KIND_WORDS,
    dash,
    duration,
    number,
    plural,
    usd,
    usd_text,
    words,
    words_column,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3725.99, "$3,725.99"),  # an option table's figure, as the issue saw it
        (-24148.4, "−$24,148.40"),
        (0.0, "$0.00"),
        (-0.001, "$0.00"),  # no minus before a zero
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_dollars(value, text):
    assert usd(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (20, "20 s"),
        (2700, "45 min"),  # 45 x 60
        (7500, "2 h 05 min"),  # 2 x 3600 + 5 x 60
        (7200, "2 h"),
        (36 * 3600, "36 h"),  # under two days: hours
        (3 * 86400 + 5 * 3600, "3 days 5 h"),
        (None, "—"),
    ],
)
def test_durations(seconds, text):
    assert duration(seconds) == text


def test_plurals_and_numbers():
    assert [plural(1, "alert"), plural(3, "alert"), plural(2, "process", "processes")] == [
        "1 alert",
        "3 alerts",
        "2 processes",
    ]
    assert plural(1200, "GPU") == "1,200 GPUs"
    assert number(1234.56, 1, "GiB") == "1,234.6 GiB" and number(None) == "—"


def test_codes_in_words():
    assert words("buy_local", ACTION_WORDS) == "Buy local GPUs"
    assert words("hybrid", ACTION_WORDS) == "Local base, cloud bursts"
    assert words("a_new_action", ACTION_WORDS) == "a new action"  # never snake_case
    assert words("allocated_idle", KIND_WORDS) == "allocated, idle"


def test_frame_columns_never_show_none():
    frame = pl.DataFrame(
        {
            "cost": [3725.99, None, -24148.4],
            "kind": ["over_powered", None, "x_y"],
            "n": ["a", None, "b"],
        }
    )
    out = frame.select(usd_text("cost"), words_column("kind", KIND_WORDS), dash("n"))
    assert out.rows() == [
        ("$3,725.99", "over-powered", "a"),
        ("—", "—", "—"),
        ("−$24,148.40", "x y", "b"),
    ]
