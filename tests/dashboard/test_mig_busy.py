"""The Overview and Workloads pages on a MIG board without an activity signal: the board is one
GPU (2 GPU-hours in 2 hours, not 10) and its busy share is "unknown", never 0 %."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from streamlit.testing.v1 import AppTest

from config.catalog import load_catalog
from config.settings import Config
from dashboard import tables
from tests.dashboard.conftest import APP, ROOT
from tests.warehouse.mig_samples import board_samples, every, ingest_each, ledger_from_warehouse
from tests.warehouse.mig_samples import with_host as mig_host
from warehouse.results import store_advisor_results
from warehouse.snapshot import publish
from warehouse.store import Warehouse


def mig_snapshot(cfg: Config) -> Config:
    """An H200 with five instances sampled for the two whole hours before the last one (inside
    the pages' 7-day window whatever the date), ledger stored, snapshot published."""
    cfg = mig_host(cfg)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    ingest_each(cfg, board_samples(every(start, 60, 120)))
    usage, ledger = ledger_from_warehouse(
        cfg, load_catalog(cfg.catalog_path), start, start + timedelta(hours=3)
    )
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        store_advisor_results(wh, {"results_usage_hourly": usage, "results_daily_ledger": ledger})
        publish(wh, cfg.snapshot_path, days=7)
    return cfg


def test_overview_counts_the_board_once_and_its_busy_share_is_unknown(cfg, dashboard_for):
    cfg = mig_snapshot(cfg)
    dashboard_for(cfg, GPULEDGER_SPOOL=cfg.spool_dir.parent / "no-spool")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {m.label: m.value for m in at.metric}
    assert shown["GPU-hours, last 7 days"] == "2"  # 1 board x 2 h, not 5 instances x 2 h
    assert shown["Busy, last 7 days"] == "unknown"


def test_workloads_page_shows_unknown_busy(cfg, dashboard_for):
    cfg = mig_snapshot(cfg)
    dashboard_for(cfg)
    at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / "workloads.py"), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {m.label: m.value for m in at.metric}
    assert shown["GPU-hours, last 7 days"] == "2.0"
    assert shown["Busy, last 7 days"] == "unknown"
    table = at.dataframe[0].value
    assert set(table["busy %"]) == {"unknown"}
    # 2 h x 3/7 (train), 2/7 (serve), 1/7 (eval), 1/7 (__idle__), to two decimals
    assert dict(zip(table["workload"], table["GPU-hours"], strict=True)) == {
        "train": 0.86,
        "serve": 0.57,
        "eval": 0.29,
        "__idle__": 0.29,
    }


def test_busy_helpers():
    assert tables.busy_text(1.0, 4.0, 10.0) == "25%"
    assert tables.busy_text(0.0, 0.0, 10.0) == "unknown"
    assert tables.busy_text(0.0, 0.0, 0.0) == "n/a"
    frame = pl.DataFrame({"busy_fraction": [0.125, None]}, schema={"busy_fraction": pl.Float64})
    assert frame.select(tables.busy_column())["busy %"].to_list() == ["12.5 %", "unknown"]
