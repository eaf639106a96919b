"""One truth for wasted money: the Overview, the Alerts page and the weekly report show the same
wasted high-end GPU time for the same week, the stored waste over all history, and not only
the last day an alert check looked back over when it first ran.

The demo fleet runs from Monday 00:00 UTC of the pinned week to the pinned instant (Wednesday
12:00 by default: two and a half days, more than the alert check's 24-hour first look back);
the pages' "last 7 days" and the report's ISO week then cover the same days of data.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from advisor.alerts import AlertService
from advisor.report import build_report, render_markdown, week_of
from cli import app
from collectors import demo
from config.settings import Config
from tables import spool
from tests.clock import pinned_clock, stamp_now
from tests.dashboard.conftest import ROOT, age_spool, demo_config
from warehouse.snapshot import Snapshot

OVERVIEW = ROOT / "dashboard" / "pages" / "overview.py"
ALERTS = ROOT / "dashboard" / "pages" / "alerts.py"


@pytest.fixture(scope="module")
def week_so_far(tmp_path_factory: pytest.TempPathFactory, pinned_instant) -> Config:
    """The demo fleet from Monday 00:00 of the pinned week to the pinned instant, one sample a
    minute, ingested; one alert check at the end (its first: it looks back 24 hours); published."""
    cfg = demo_config(tmp_path_factory.mktemp("one-waste"))
    cfg = replace(cfg, alerts=replace(cfg.alerts, log=False))
    catalog = app.catalog_for(cfg)
    now = pinned_instant.replace(second=0, microsecond=0)
    monday = datetime.combine(now.date() - timedelta(days=now.weekday()), datetime.min.time(), UTC)
    with pinned_clock(now), app.open_warehouse(cfg) as wh:
        for host, frame in demo.history(monday, now, interval_s=60, seed=cfg.demo.seed):
            spool.write_batch(cfg.spool_dir, "gpu_samples", frame, host)
        spool.write_batch(
            cfg.spool_dir,
            "billing_items",
            demo.billing(monday - timedelta(hours=1), now),
            "demo-billing",
        )
        app.cycle(wh, cfg, catalog, force=True)
        service = AlertService(cfg, catalog)
        service.run_once(wh, now=now)
        service.close()
        app.cycle(wh, cfg, catalog, force=True)
        age_spool(cfg)
        stamp_now(cfg.snapshot_path)
    return cfg


def stored(cfg: Config, since: datetime) -> tuple[float, float]:
    """The stored waste of the UTC days from `since`'s on, and the part of it that ended before
    the first alert check's 24-hour look back (which that check could not see)."""
    con = duckdb.connect(str(cfg.snapshot_path), read_only=True)
    try:
        week, early = con.execute(
            "SELECT sum(wasted_usd), sum(wasted_usd) FILTER (WHERE ended_at <= ?)"
            " FROM waste_daily WHERE day >= ?",
            [datetime.now(UTC) - timedelta(hours=24), since.date()],
        ).fetchall()[0]
    finally:
        con.close()
    return week or 0.0, early or 0.0


def metric(path, label: str) -> str:
    at = AppTest.from_file(str(path), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return {m.label: m.value for m in at.metric}[label]


def test_overview_alerts_and_the_report_show_the_same_waste_for_the_week(
    week_so_far: Config, dashboard_for
):
    now = datetime.now(UTC)
    week = week_of(now)
    monday = now - timedelta(days=now.weekday())
    week_usd, before_the_look_back = stored(week_so_far, monday)
    assert week_usd > 0
    if now - monday.replace(hour=0, minute=0) > timedelta(hours=25):
        # waste the alert check's first 24-hour look back never saw is counted all the same
        assert before_the_look_back > 0

    snap = Snapshot(week_so_far.snapshot_path)
    try:
        rep = build_report(snap, week_so_far, app.catalog_for(week_so_far), week, now=now)
    finally:
        snap.close()
    dashboard_for(week_so_far)
    overview = metric(OVERVIEW, "Wasted, last 7 days")
    alerts = metric(ALERTS, "Wasted, last 7 days")

    assert rep.waste_usd == pytest.approx(week_usd)
    assert alerts == f"${rep.waste_usd:,.2f}"
    assert overview == f"${rep.waste_usd:,.0f}"
    # the report says what it counts and over which days, and names no source file
    md = render_markdown(rep, {})
    assert rep.waste_note in md and "waste.py" not in md
    assert f"{monday:%d %b}" in rep.waste_note
