"""The Alerts page and the Overview's open-alerts badge, run in-process with Streamlit's AppTest
against real snapshot files; expected figures are read straight from the snapshot with DuckDB."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from advisor.alerts import AlertService
from cli import app
from config.settings import Config
from tests.clock import pinned_clock, stamp_now
from tests.dashboard.conftest import ROOT, demo_config, seed_demo_snapshot

PAGE = ROOT / "dashboard" / "pages" / "alerts.py"
OVERVIEW = ROOT / "dashboard" / "pages" / "overview.py"


@pytest.fixture(scope="module")
def alerts_snapshot(tmp_path_factory: pytest.TempPathFactory, pinned_instant) -> Config:
    """One demo day ending now (the pinned clock), checked for waste at its last minute,
    published."""
    cfg = seed_demo_snapshot(demo_config(tmp_path_factory.mktemp("alerts-page")), pinned_instant)
    cfg = replace(cfg, alerts=replace(cfg.alerts, log=False))
    catalog = app.catalog_for(cfg)
    with pinned_clock(pinned_instant), app.open_warehouse(cfg) as wh:
        last = wh.sample_span()[1]
        service = AlertService(cfg, catalog)
        service.run_once(wh, now=last + timedelta(minutes=1))
        service.close()
        app.cycle(wh, cfg, catalog, force=True)
        stamp_now(cfg.snapshot_path)
    return cfg


def expected(snapshot: Path) -> dict:
    """The alerts of the page's window and the stored waste of its days, read with DuckDB."""
    today = datetime.now(UTC).date()  # the page's "last 7 days": today and the 6 days before
    since = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=6)
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        rows = con.execute(
            "SELECT workload, state, wasted_usd, wasted_s FROM alerts"
            " WHERE state = 'open' OR ended_at >= ?",
            [since],
        ).fetchall()
        usd, seconds = con.execute(
            "SELECT coalesce(sum(wasted_usd), 0), coalesce(sum(wasted_s), 0) FROM waste_daily"
            " WHERE day >= ?",
            [since.date()],
        ).fetchall()[0]
    finally:
        con.close()
    return {
        "open": [r for r in rows if r[1] == "open"],
        "recent": [r for r in rows if r[1] != "open"],
        "usd": usd,
        "hours": seconds / 3600,
    }


def run(path: Path) -> AppTest:
    at = AppTest.from_file(str(path), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_alerts_page_shows_open_and_recent_alerts_and_money_per_workload(
    alerts_snapshot, dashboard_for
):
    want = expected(alerts_snapshot.snapshot_path)
    # Which alerts are still open depends on the hour the demo day ends (the notebook works
    # 10:00-11:00 and 14:00-15:30 UTC on weekdays); a day always holds some.
    assert want["open"] or want["recent"]
    dashboard_for(alerts_snapshot)

    at = run(PAGE)

    assert [t.value for t in at.title] == ["Alerts"]
    shown = {m.label: m.value for m in at.metric}
    assert want["usd"] > 0  # the notebook's idle H100
    assert shown == {
        "Open alerts": str(len(want["open"])),
        "Wasted, last 7 days": f"${want['usd']:,.2f}",  # the stored waste, not the alerts'
        "Wasted GPU-hours, last 7 days": f"{want['hours']:,.1f}",
    }
    assert [s.value for s in at.main.subheader] == [
        "Open",
        "Money wasted per workload, last 7 days",
        "Recent, last 7 days",
    ]
    tables = [df.value for df in at.dataframe]
    assert len(tables) == bool(want["open"]) + bool(want["recent"])
    shown_workloads: set[str] = set()
    if want["open"]:
        open_table = tables.pop(0)
        assert sorted(open_table["workload"]) == sorted(r[0] for r in want["open"])
        shown_workloads |= set(open_table["workload"])
    else:
        assert at.success[0].value.startswith("No open alerts")
    if want["recent"]:
        recent_table = tables.pop(0)
        assert len(recent_table) == len(want["recent"])
        assert recent_table["wasted USD"].sum() == pytest.approx(
            sum(r[2] for r in want["recent"]), abs=0.01 * len(want["recent"])
        )
        shown_workloads |= set(recent_table["workload"])
    assert "research-notebook" in shown_workloads
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["encoding"]["y"]["field"] == "workload"
    assert spec["encoding"]["x"]["field"] == "wasted_usd"


def checked(cfg: Config) -> Config:
    """`cfg`'s warehouse after one alert check, published."""
    cfg = replace(cfg, alerts=replace(cfg.alerts, log=False))
    with app.open_warehouse(cfg) as wh:
        service = AlertService(cfg, app.catalog_for(cfg))
        service.run_once(wh)
        service.close()
        app.cycle(wh, cfg, app.catalog_for(cfg), force=True)
    return cfg


def test_alerts_page_with_nothing_wasted(empty_snapshot, dashboard_for):
    dashboard_for(checked(empty_snapshot))
    at = run(PAGE)
    assert {m.label: m.value for m in at.metric} == {
        "Open alerts": "0",
        "Wasted, last 7 days": "$0.00",
        "Wasted GPU-hours, last 7 days": "0.0",
    }
    assert at.success[0].value.startswith("No open alerts")
    assert any(i.value.startswith("No wasted high-end GPU time") for i in at.info)
    assert not at.dataframe and not at.get("vega_lite_chart")


def test_alerts_page_before_the_first_check_says_checking(empty_snapshot, dashboard_for):
    dashboard_for(empty_snapshot)
    at = run(PAGE)
    assert {m.label: m.value for m in at.metric}["Open alerts"] == "checking…"
    assert not at.success  # never "No open alerts" before a check
    assert at.info[0].value.startswith("Checking for wasted high-end GPU time…")


def test_alerts_page_on_a_snapshot_from_before_alerts(cfg, dashboard_for):
    cfg.snapshot_path.parent.mkdir(parents=True)
    con = duckdb.connect(str(cfg.snapshot_path))
    con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
    con.close()
    dashboard_for(cfg)
    at = run(PAGE)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Open alerts"] == shown["Wasted, last 7 days"] == "checking…"
    assert not any("No wasted" in i.value for i in at.info)


def test_alerts_page_without_a_snapshot(cfg, dashboard_for):
    dashboard_for(cfg)
    at = run(PAGE)
    assert "No snapshot yet" in at.info[0].value
    assert not at.metric


def test_overview_badge_counts_the_open_alerts(demo_warehouse, dashboard_for):
    # The fixed demo day ends Wednesday 12:00 UTC, an hour into the notebook's idle run.
    cfg = replace(demo_warehouse, alerts=replace(demo_warehouse.alerts, log=False))
    with app.open_warehouse(cfg) as wh:
        service = AlertService(cfg, app.catalog_for(cfg))
        service.run_once(wh, now=datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
        service.close()
        app.cycle(wh, cfg, app.catalog_for(cfg), force=True)
    con = duckdb.connect(str(cfg.snapshot_path), read_only=True)
    n = con.execute("SELECT count(*) FROM alerts WHERE state = 'open'").fetchall()[0][0]
    con.close()
    assert n >= 1
    dashboard_for(cfg)
    badges = [m.value for m in run(OVERVIEW).markdown if "-badge[" in m.value]
    alerts = "1 open alert" if n == 1 else f"{n} open alerts"
    assert badges == [
        f":red-badge[:material/notifications_active: {alerts} on wasted high-end GPU time]"
    ]


def test_overview_badge_before_the_first_alert_check_says_checking(empty_snapshot, dashboard_for):
    dashboard_for(empty_snapshot)
    badges = [m.value for m in run(OVERVIEW).markdown if "-badge[" in m.value]
    assert badges == [
        ":gray-badge[:material/hourglass_top: Checking for wasted high-end GPU time…]"
    ]


def test_overview_badge_without_open_alerts(empty_snapshot, dashboard_for):
    dashboard_for(checked(empty_snapshot))
    badges = [m.value for m in run(OVERVIEW).markdown if "-badge[" in m.value]
    assert badges == [":green-badge[:material/check_circle: No open alerts]"]
