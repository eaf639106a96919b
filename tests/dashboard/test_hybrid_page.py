"""The Recommendations page shows a hybrid with its demand curve and chosen local base, and the
new columns (GPUs before → after, capacity freed for others, the schedule, the confidence level
with what it means), from the scenario library's base-plus-peaks service (tests/advisor)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.charts import hybrid_demand
from tests.advisor.fleets import advise, base_plus_peaks_service
from tests.dashboard.test_overview import chart_data
from warehouse import advisor_reads

PAGE = Path(__file__).resolve().parents[2] / "dashboard" / "pages" / "recommendations.py"


@pytest.fixture(scope="module")
def hybrid():
    return advise(**base_plus_peaks_service(days=14), days=14)


def test_the_hybrid_chart_is_the_hourly_demand_with_the_base_line():
    """GPUs each hour as a stepped area (cloud blue) and the base as a rule (local orange)."""
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    curve = pl.DataFrame(
        {
            "workload": ["api"] * 4,
            "hour": [t0 + timedelta(hours=h) for h in range(4)],
            "gpus": [2.0, 6.0, 6.0, 2.0],
            "base_gpus": [2.0] * 4,
        }
    )
    spec = hybrid_demand(curve).to_dict()
    area, rule = spec["layer"]
    assert (area["mark"]["type"], area["mark"]["interpolate"]) == ("area", "step-after")
    assert rule["mark"]["type"] == "rule" and rule["encoding"]["y"]["field"] == "base_gpus"
    assert spec["title"] == "Demand each hour and the local base (2 GPUs)"


def test_the_page_charts_a_hybrid_and_shows_the_new_columns(
    demo_snapshot, dashboard_for, monkeypatch, hybrid
):
    dashboard_for(demo_snapshot)
    monkeypatch.setattr(advisor_reads, "recommendations", lambda snap: hybrid.recommendations)
    monkeypatch.setattr(advisor_reads, "alternatives", lambda snap: hybrid.alts)
    monkeypatch.setattr(advisor_reads, "demand_curves", lambda snap: hybrid.curves)
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    row = dict(zip(table.columns, table.iloc[0], strict=True))
    assert row["action"] == "Local base, cloud bursts" and row["GPUs"] == "6"
    assert row["confidence level"] == "medium"
    (chart,) = at.get("vega_lite_chart")
    spec, data = chart_data(chart)
    assert spec["title"] == "Demand each hour and the local base (2 GPUs)"
    assert data.height == 14 * 24 and set(data["base_gpus"]) == {2.0}
    expander = at.expander[0]
    assert expander.label.startswith("api: Local base, cloud bursts, saves $")
    text = " ".join(m.value for m in expander.markdown)
    assert "a base of 2 GPUs carries" in text and "Confidence medium" in text
