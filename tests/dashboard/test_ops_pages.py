"""AppTest for the Data health and Settings pages (the Live page: test_live_page.py)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

import duckdb
import polars as pl
import streamlit as st
from streamlit.testing.v1 import AppTest

from cli.daemon import dashboard_env
from config.catalog import catalog_ages, catalog_oldest, load_catalog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _page(cfg, path: str, monkeypatch) -> AppTest:
    for k, v in dashboard_env(cfg).items():
        if k.startswith("GPULEDGER_"):
            monkeypatch.setenv(k, v)
    st.cache_resource.clear()
    st.cache_data.clear()
    monkeypatch.chdir(ROOT)
    return AppTest.from_file(os.path.join(ROOT, path), default_timeout=30).run()


def test_data_health_shows_lag_per_host_and_the_catalog_age(demo_warehouse, monkeypatch):
    at = _page(demo_warehouse, "dashboard/pages/data_health.py", monkeypatch)
    assert not at.exception
    labels = {m.label: m.value for m in at.metric}
    oldest = catalog_oldest(load_catalog(demo_warehouse.catalog_path))  # the stalest price
    assert labels["Oldest price"] == str(oldest)
    assert labels["Oldest price's age"] == f"{(date.today() - oldest).days:,} days"
    assert labels["Snapshot age"].endswith(" s")
    ages = at.dataframe[0].value  # the catalog's age by cloud (issue 16)
    assert list(ages["cloud"]) == ["aws", "azure", "gcp", "gpu classes"]
    assert "oldest as_of" in ages.columns
    hosts = at.dataframe[1].value
    assert {"dgx-a100", "ws-4090"} <= set(hosts["host"])
    billing = at.dataframe[2].value
    assert set(billing["source"]) == {"demo"}
    # one warning per cloud whose oldest price is older than max_age_days (warning colour)
    expected = catalog_ages(
        load_catalog(demo_warehouse.catalog_path), date.today(), demo_warehouse.catalog.max_age_days
    ).filter(pl.col("stale"))["provider"]
    warned = [w.value.split(":")[0] for w in at.warning if "the oldest price is from" in w.value]
    assert warned == list(expected)


def test_data_health_without_a_snapshot(cfg, monkeypatch):
    at = _page(cfg, "dashboard/pages/data_health.py", monkeypatch)
    assert not at.exception
    assert "No snapshot yet" in at.info[0].value


def test_settings_masks_secrets(cfg, monkeypatch):
    from dashboard.pages import settings as page

    assert page.masked({"smtp_password": "hunter2", "smtp_password_env": "SMTP_PASS"}) == {
        "smtp_password": "••••••",
        "smtp_password_env": "SMTP_PASS",
    }
    at = _page(cfg, "dashboard/pages/settings.py", monkeypatch)
    assert not at.exception
    assert not at.json  # readable sections, not a raw JSON dump
    titles = [h.value for h in at.subheader]
    assert titles[0] == "Warehouse and files · [warehouse]"
    assert "Alerts · [alerts]" in titles and "Wasted-time thresholds · [thresholds]" in titles
    settings = {
        r["setting"]: r["value"]
        for df in at.dataframe
        if "setting" in df.value.columns
        for r in df.value.to_dict("records")
    }
    assert settings["idle_min_minutes"] == str(cfg.thresholds.idle_min_minutes)
    assert settings["retry_backoff_s"] == str(cfg.alerts.retry_backoff_s)
    assert settings["digest"] in ("on", "off")  # a switch in words
    cells = {str(v) for df in at.dataframe for v in df.value.to_numpy().ravel()}
    assert "None" not in cells and "True" not in cells


def test_data_health_colours_each_source_by_its_lag(demo_warehouse, monkeypatch):
    # A host's newest sample is expected within the agent's flush + the ingest + the publication
    # (5 + 5 + 10 = 20 s with the shipped configuration): on time within twice that, late within
    # ten times, stale past it.
    cfg = demo_warehouse
    expected_s = cfg.collect.flush_interval_s + cfg.run.ingest_interval_s
    expected_s += cfg.run.publish_interval_s
    con = duckdb.connect(str(cfg.snapshot_path), read_only=True)
    newest = dict(con.execute("SELECT host, last_sample FROM hosts").fetchall())
    con.close()
    at = _page(cfg, "dashboard/pages/data_health.py", monkeypatch)
    now = datetime.now(UTC)
    table = next(df for df in at.dataframe if "host" in df.value.columns)
    status = dict(zip(table.value["host"], table.value["status"], strict=True))
    for host, last in newest.items():
        lag = (now - last).total_seconds()
        want = "on time" if lag <= 2 * expected_s else "late" if lag <= 10 * expected_s else "stale"
        assert status[host] == want, (host, lag)
    colours = {"on time": "rgba(33, 195, 84", "late": "rgba(255, 189, 69", "stale": "rgba(255, 75"}
    styles = table.proto.arrow_data.styler.styles
    assert all(colours[s] in styles for s in set(status.values()))  # each row coloured
    assert "lag_s" not in table.value.columns  # the lag in words, never raw seconds
    assert any(
        c.value.startswith("Expected: a host's newest sample within 20 s") for c in at.caption
    )
