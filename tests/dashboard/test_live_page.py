"""The Live page (AppTest, against a real snapshot and spool): per host named with its instance
type from the bill, per GPU its activity, memory and power now and as 5-minute sparklines, power
against its limit, temperature, SM clock, errors, the open alert highlighted, and the processes
with user, command, memory in GiB and workload."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from advisor.alerts import AlertService
from cli import app
from cli.daemon import dashboard_env
from collectors import demo
from tables import spool
from tests.dashboard.conftest import ROOT, age_spool

PAGE = ROOT / "dashboard" / "pages" / "live.py"
TICKS = 5  # samples 20 s apart: the last 80 seconds


def _page(cfg, monkeypatch) -> AppTest:
    for k, v in dashboard_env(cfg).items():
        if k.startswith("GPULEDGER_"):
            monkeypatch.setenv(k, v)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(PAGE), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def live_fleet(demo_warehouse):
    """The demo day (the notebook's H100 idle since 11:00, checked for alerts and published) and
    the fleet's last 80 seconds in the spool, five ticks per GPU."""
    cfg = replace(demo_warehouse, alerts=replace(demo_warehouse.alerts, log=False))
    now = datetime.now(UTC)
    with app.open_warehouse(cfg) as wh:
        service = AlertService(cfg, app.catalog_for(cfg))
        service.run_once(wh, now=now)
        service.close()
        app.cycle(wh, cfg, app.catalog_for(cfg), force=True)
    age_spool(cfg)  # the demo day's history is an hour old: only the ticks below are live
    fleet = demo.LiveDemo(42)
    for i in range(TICKS):
        batch = fleet.tick(now - timedelta(seconds=20 * (TICKS - 1 - i)))
        for (host,), part in batch.gpu_samples.group_by("host"):
            spool.write_batch(cfg.spool_dir, "gpu_samples", part, str(host))
        spool.write_batch(cfg.spool_dir, "process_samples", batch.process_samples, "demo")
    return cfg, batch


def tables_by_host(at: AppTest) -> dict[str, object]:
    """Each host's GPU table (the first table after its heading)."""
    titles = [h.value for h in at.subheader]
    gpu_tables = [df.value for df in at.dataframe if "activity %" in df.value.columns]
    return dict(zip(titles, gpu_tables, strict=True))


def test_live_page_names_hosts_with_their_instance_type(live_fleet, monkeypatch):
    cfg, batch = live_fleet
    at = _page(cfg, monkeypatch)
    titles = {h.value for h in at.subheader}
    # the bill names the four cloud instances; the others are local
    assert "i\\-0d3a9c1e5b7f20003 · p5\\.4xlarge" in titles  # escaped: shown as literal text
    assert "dgx\\-a100 · local" in titles and "ws\\-4090 · local" in titles
    assert len(titles) == batch.gpu_samples["host"].n_unique()


def test_live_page_shows_each_gpu_like_nvitop(live_fleet, monkeypatch):
    cfg, batch = live_fleet
    at = _page(cfg, monkeypatch)
    tables = tables_by_host(at)
    h100 = tables["i\\-0d3a9c1e5b7f20003 · p5\\.4xlarge"]
    row = h100.iloc[0]
    sample = batch.gpu_samples.filter(batch.gpu_samples["host"] == demo.P5).row(0, named=True)
    assert row["model"] == "H100"
    assert row["power"] == f"{round(sample['power_w'])} of 700 W"  # its limit, from the source
    assert row["temperature"] == f"{round(sample['temperature_c'])} °C"
    assert row["SM clock"] == f"{round(sample['sm_clock_mhz'])} MHz"
    assert row["errors"] == "none"  # ECC counters read 0, no XID
    assert len(row["activity_history"]) == TICKS  # one point per tick, 5-minute span
    assert len(row["memory_history"]) == len(row["power_history"]) == TICKS
    assert all(0 <= v <= 100 for v in row["power_history"])
    assert row["signal"] == "SM active (GPM)"
    # the RTX 4090 has no ECC counters and no XID source: unknown, not "none"
    assert set(tables["ws\\-4090 · local"]["errors"]) == {"—"}
    assert "None" not in {str(v) for t in tables.values() for v in t.to_numpy().ravel()}


def test_the_gpu_with_an_open_alert_is_highlighted(live_fleet, monkeypatch):
    cfg, _ = live_fleet
    at = _page(cfg, monkeypatch)
    h100 = tables_by_host(at)["i\\-0d3a9c1e5b7f20003 · p5\\.4xlarge"]
    # the notebook has idled on its H100 since 11:00 at $6.88 an hour
    assert h100["open alert"].iloc[0].startswith("allocated, idle for ")
    assert "$" in h100["open alert"].iloc[0]
    alerts = {a for t in tables_by_host(at).values() for a in t["open alert"]}
    assert "none" in alerts and "" not in alerts  # a GPU without one says so, no empty cell
    table = next(df for df in at.dataframe if "open alert" in df.value.columns)
    assert "background-color" in table.proto.arrow_data.styler.styles  # the alerted row
    con = duckdb.connect(str(cfg.snapshot_path), read_only=True)
    (n,) = con.execute("SELECT count(*) FROM alerts WHERE state = 'open'").fetchone()
    con.close()
    words = "1 open alert" if n == 1 else f"{n} open alerts"
    assert any(f"{words} highlighted" in c.value for c in at.caption)


def test_processes_show_user_command_memory_in_gib_and_workload(live_fleet, monkeypatch):
    cfg, batch = live_fleet
    at = _page(cfg, monkeypatch)
    procs = [df.value for df in at.dataframe if "command" in df.value.columns]
    assert procs
    shown = {(r["user"], r["workload"]) for p in procs for _, r in p.iterrows()}
    expected = set(batch.process_samples.select("user", "workload").unique().iter_rows())
    assert shown == expected
    one = batch.process_samples.row(0, named=True)
    row = next(r for p in procs for _, r in p.iterrows() if r["workload"] == one["workload"])
    assert row["memory GiB"] == pytest.approx(one["used_mib"] / 1024, abs=0.01)
    assert row["command"] == one["command"]


def test_live_page_empty_state_says_what_to_start(cfg, monkeypatch):
    at = _page(cfg, monkeypatch)
    assert "gpuledger collect --source nvml" in at.info[0].value


def test_the_page_refreshes_at_the_configured_interval(cfg, monkeypatch):
    at = _page(cfg, monkeypatch)
    assert f"Refreshed every {cfg.dashboard.refresh_s:g} s" in at.caption[0].value
    assert os.path.exists(PAGE)
