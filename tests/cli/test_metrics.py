"""Prometheus /metrics (cli/metrics.py) scraped over HTTP from a real published snapshot, and
from a running `gpuledger run` daemon."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from prometheus_client.parser import text_string_to_metric_families

from advisor.alerts import AlertService
from cli import app
from cli.metrics import start_metrics
from tests.advisor.receivers import free_port
from tests.clock import stamp_now

ROOT = Path(__file__).resolve().parents[2]
H100 = "i-0d3a9c1e5b7f20003"


def scrape(url: str) -> dict[str, list]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def value(samples: list, name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, found)
    return found[0]


@pytest.fixture
def checked_snapshot(demo_warehouse):
    """The demo day with the alert check run at its last minute, then published."""
    cfg = replace(demo_warehouse, alerts=replace(demo_warehouse.alerts, log=False))
    catalog = app.catalog_for(cfg)
    with app.open_warehouse(cfg) as wh:
        service = AlertService(cfg, catalog)
        service.run_once(wh, now=datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
        service.close()
        app.cycle(wh, cfg, catalog, force=True)
    stamp_now(cfg.snapshot_path)  # published at the pinned clock (demo_warehouse)
    return cfg


def test_metrics_are_scraped_from_the_published_snapshot(checked_snapshot):
    cfg = checked_snapshot
    con = duckdb.connect(str(cfg.snapshot_path), read_only=True)
    try:
        h100_util, h100_power = con.execute(
            "SELECT util_pct, power_w FROM gpu_latest WHERE host = ?", [H100]
        ).fetchall()[0]
        gpus = con.execute("SELECT count(*) FROM gpu_latest").fetchall()[0][0]
        open_alerts = con.execute("SELECT count(*) FROM alerts WHERE state = 'open'").fetchall()[0][
            0
        ]
    finally:
        con.close()

    server = start_metrics(cfg, port=0)
    assert server is not None
    try:
        assert server.server.server_address[0] == "127.0.0.1"
        metrics = scrape(server.url)
    finally:
        server.stop()

    util = metrics["gpuledger_gpu_utilization_percent"]
    assert len(util) == gpus
    assert value(util, "gpuledger_gpu_utilization_percent", host=H100) == h100_util
    power = metrics["gpuledger_gpu_power_watts"]
    assert value(power, "gpuledger_gpu_power_watts", host=H100) == h100_power

    rates = metrics["gpuledger_workload_cost_usd_per_hour"]
    name = "gpuledger_workload_cost_usd_per_hour"
    # cloud GPUs cost their share of the on-demand price: one H100 of a p5.4xlarge, all eight
    # A100s of a p4d.24xlarge ($21.96/h)
    assert value(rates, name, workload="research-notebook", placement="cloud") == pytest.approx(
        6.88
    )
    assert value(rates, name, workload="llm-pretrain", placement="cloud") == pytest.approx(21.96)

    # The notebook's idle runs of the day: 12:00-14:00, 15:30-10:00 and 11:00-12:00 = 21.5 h
    wasted = metrics["gpuledger_wasted_gpu_seconds"]
    key = {"workload": "research-notebook", "kind": "allocated_idle"}
    assert value(wasted, "gpuledger_wasted_gpu_seconds_total", **key) == 21.5 * 3600
    usd = metrics["gpuledger_wasted_usd"]
    assert value(usd, "gpuledger_wasted_usd_total", **key) == pytest.approx(21.5 * 6.88)

    opened = metrics["gpuledger_open_alerts"]
    assert {s.labels["kind"] for s in opened} == {
        "allocated_idle",
        "inefficient_busy",
        "over_powered",
    }
    assert value(opened, "gpuledger_open_alerts", kind="allocated_idle") == 1
    assert sum(s.value for s in opened) == open_alerts
    age = metrics["gpuledger_snapshot_age_seconds"]
    assert 0 <= value(age, "gpuledger_snapshot_age_seconds") < 60


def test_without_a_snapshot_metrics_answer_with_its_age_only(cfg):
    server = start_metrics(cfg, port=0)
    try:
        metrics = scrape(server.url)
    finally:
        server.stop()
    assert list(metrics) == ["gpuledger_snapshot_age_seconds"]


def test_a_taken_port_is_logged_not_fatal(cfg, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR):
            assert start_metrics(cfg, port=port) is None
    assert f"127.0.0.1:{port}" in caplog.text and "[metrics] port" in caplog.text


def test_metrics_can_be_turned_off(cfg):
    off = replace(cfg, metrics=replace(cfg.metrics, enabled=False))
    assert start_metrics(off, port=0) is None


@pytest.mark.slow
def test_the_daemon_serves_metrics(tmp_path):
    port = free_port()
    conf = tmp_path / "gpuledger.toml"
    conf.write_text(
        f'[warehouse]\npath = "{tmp_path}/data/warehouse.duckdb"\n'
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n'
        "[demo]\nhistory_days = 1\nhistory_interval_s = 60\n"
        "[collect]\nflush_interval_s = 1.0\n[run]\ningest_interval_s = 1\npublish_interval_s = 1\n"
        f"[alerts]\ncheck_interval_s = 10\n[metrics]\nport = {port}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--config", str(conf), "run"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    metrics: dict[str, list] = {}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                metrics = scrape(url)
            except OSError:
                metrics = {}
            rates = metrics.get("gpuledger_workload_cost_usd_per_hour", [])
            if rates and metrics.get("gpuledger_gpu_utilization_percent"):
                break
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert metrics.get("gpuledger_gpu_utilization_percent"), out
    rates = metrics["gpuledger_workload_cost_usd_per_hour"]
    assert value(
        rates, "gpuledger_workload_cost_usd_per_hour", workload="research-notebook"
    ) == pytest.approx(6.88)
    with pytest.raises(OSError):  # stopped with the daemon
        scrape(url)
