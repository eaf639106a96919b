"""The sidebar's filters on the pages, run in-process with AppTest on the demo snapshot (one demo
day ending at the pinned instant): they hold from page to page, narrow every figure of a page
(the wasted tile and the GPU table too), and compare with the previous period. The browser's
view of the same: tests/dashboard/test_browser.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from config.settings import Config
from tests.dashboard.conftest import APP

TIMEOUT_S = 30
WORKLOADS_PAGE = "dashboard/pages/workloads.py"
ALERTS_PAGE = "dashboard/pages/alerts.py"
HOST = "dgx-a100"  # a local host of the demo fleet


def today() -> date:
    return datetime.now(UTC).date()


def one(snapshot: Path, sql: str, params: list) -> float:
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        return float(con.execute(sql, params).fetchall()[0][0] or 0.0)
    finally:
        con.close()


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.fixture
def overview(demo_snapshot: Config, dashboard_for, tmp_path: Path):
    dashboard_for(demo_snapshot, GPULEDGER_SPOOL=tmp_path / "no-spool")  # GPUs from the snapshot

    def at(**params: str) -> AppTest:
        app = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
        for key, value in params.items():
            app.query_params[key] = value
        return run(app)

    return at


def test_the_filters_hold_from_page_to_page(overview) -> None:
    """A host and 30 days chosen on the Overview are the Workloads and Alerts pages' filters
    too (Streamlit's page links carry no query string: the session keeps them), and each page
    writes them back into its address."""
    at = overview()
    at.sidebar.multiselect(key="f_host").set_value([HOST])
    run(at)
    at.sidebar.selectbox(key="f_range").set_value("30")
    run(at)
    assert "GPU-hours, last 30 days" in metrics(at)

    for page in (WORKLOADS_PAGE, ALERTS_PAGE, "dashboard/pages/overview.py"):
        at.switch_page(page)
        run(at)
        assert at.sidebar.multiselect(key="f_host").value == [HOST], page
        assert at.sidebar.selectbox(key="f_range").value == "30", page
        assert at.query_params["host"] in (HOST, [HOST]), page
        assert at.query_params["days"] in ("30", ["30"]), page
    at.switch_page(WORKLOADS_PAGE)
    run(at)
    assert set(at.dataframe[0].value["placement"]) == {"local"}  # the host's rows only
    assert any(f"host: {HOST}" in c.value for c in at.caption)


def test_the_host_filter_narrows_the_wasted_tile_and_the_gpu_table(
    overview, demo_snapshot: Config
) -> None:
    """The issue's "the host filter skips the wasted tile and the GPU table": both follow it."""
    since = today() - timedelta(days=6)  # last 7 days: today and the six before
    snapshot = demo_snapshot.snapshot_path
    all_usd = one(snapshot, "SELECT sum(wasted_usd) FROM waste_daily WHERE day >= ?", [since])
    host_usd = one(
        snapshot,
        "SELECT sum(wasted_usd) FROM waste_daily WHERE day >= ? AND host = ?",
        [since, HOST],
    )
    other = one(
        snapshot,
        "SELECT count(DISTINCT host) FROM gpu_latest WHERE host <> ?",
        [HOST],
    )
    assert all_usd > host_usd and other > 0  # the filter has something to take away

    at = overview(host=HOST)
    assert metrics(at)["Wasted, last 7 days"] == f"${host_usd:,.0f}"
    table = at.dataframe[0].value
    assert set(table["host"]) == {HOST}
    assert any(c.value.startswith(f"{len(table)} GPUs on 1 hosts") for c in at.caption)

    cloud = overview(placement="cloud")
    assert not set(cloud.dataframe[0].value["host"]) & {HOST}  # no local host's GPUs


def test_the_previous_period_beside_the_figures(overview, demo_snapshot: Config) -> None:
    """?days=1&compare=1: today against yesterday. The demo day runs from yesterday noon to
    today noon, so both have local cost; the delta is today's minus yesterday's, in dollars and
    as a share of yesterday's."""
    snapshot = demo_snapshot.snapshot_path
    sql = "SELECT sum(cost_usd) FROM daily_ledger WHERE placement = 'local' AND day = ?"
    now, before = one(snapshot, sql, [today()]), one(snapshot, sql, [today() - timedelta(1)])
    assert now > 0 and before > 0

    at = overview(days="1", compare="1")
    local = next(m for m in at.metric if m.label == "Local cost, today")
    change = now - before
    sign = "-" if change < 0 else "+"
    assert local.value == f"${now:,.0f}"
    assert local.delta == f"{sign}${abs(change):,.0f} ({change / before:+.0%})".replace("%", " %")
    assert local.proto.delta_description == f"vs {today() - timedelta(1):%b %d}"
    plain = overview(days="1")
    assert not next(m for m in plain.metric if m.label == "Local cost, today").delta


def test_a_calendar_period_and_custom_dates_from_the_address(
    overview, demo_snapshot: Config
) -> None:
    snapshot = demo_snapshot.snapshot_path
    yesterday = today() - timedelta(days=1)
    hours = one(snapshot, "SELECT sum(gpu_hours) FROM daily_ledger WHERE day = ?", [yesterday])
    assert hours > 0

    custom = overview(**{"from": yesterday.isoformat(), "to": yesterday.isoformat()})
    label = f"GPU-hours, {yesterday:%b %d, %Y}"
    assert metrics(custom)[label] == f"{hours:,.0f}"
    assert custom.sidebar.selectbox(key="f_range").value == "custom"
    assert custom.sidebar.date_input(key="f_dates").value == (yesterday, yesterday)

    monday = today() - timedelta(days=today().weekday())
    week_hours = one(snapshot, "SELECT sum(gpu_hours) FROM daily_ledger WHERE day >= ?", [monday])
    assert metrics(overview(period="this_week"))["GPU-hours, this week"] == f"{week_hours:,.0f}"
    last_week = one(
        snapshot,
        "SELECT sum(gpu_hours) FROM daily_ledger WHERE day >= ? AND day < ?",
        [monday - timedelta(days=7), monday],
    )
    assert metrics(overview(period="last_week"))["GPU-hours, last week"] == f"{last_week:,.0f}"
