"""The Overview's drill-down into one host and hour with the lake on: raw samples read from the
Iceberg lake (dashboard/raw_hour.py), the warehouse holding only rollups and a short tail.

The demo day is sampled once a minute, so a full hour holds 60 samples of each GPU of a host.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cli import app
from config.settings import load_config
from tests.clock import pinned_clock, stamp_now
from tests.conftest import DEMO_NOW
from tests.dashboard.conftest import APP

pytest.importorskip("pyiceberg", reason="the lake needs pyiceberg (requirements-lake.txt)")

ROOT = Path(__file__).resolve().parents[2]
TITLE = "Raw samples of one host and hour"


@pytest.fixture
def lake_demo(tmp_path: Path):
    """One demo day at one sample a minute, ingested with [lake] enabled = true."""
    shipped = (ROOT / "config" / "gpuledger.toml").read_text()
    text = shipped.replace("[lake]\n", "[lake]\nenabled = true\n", 1).replace(
        "\nenabled = false\n# Where the tables' files go", "\n# Where the tables' files go", 1
    )
    path = tmp_path / "gpuledger.toml"
    path.write_text(text)
    for table in (ROOT / "config").glob("*.csv"):  # the price catalog beside it
        shutil.copy(table, tmp_path / table.name)
    cfg = load_config(path, db=tmp_path / "data" / "warehouse.duckdb")
    assert cfg.lake.enabled
    cfg = replace(cfg, demo=replace(cfg.demo, history_days=1, history_interval_s=60))
    catalog = app.catalog_for(cfg)
    with pinned_clock(DEMO_NOW):
        with app.open_warehouse(cfg) as wh:
            app.seed_demo(wh, cfg, catalog, progress=False, now=DEMO_NOW)
            raw = wh.db.sql("SELECT count(*) FROM gpu_samples").fetchall()[0][0]
            assert wh.lake is not None
            in_lake = wh.lake.row_count("gpu_samples")
        stamp_now(cfg.snapshot_path)
    # The warehouse keeps 16 minutes of each GPU at most; the day is in the lake.
    assert 0 < raw < in_lake
    return cfg


def test_the_drilldown_reads_a_full_hour_from_the_lake(lake_demo, dashboard_for):
    dashboard_for(lake_demo)
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert TITLE in [h.value for h in at.subheader]
    host = at.selectbox(key="raw_host").value
    at.selectbox(key="raw_hour").set_value(10).run()  # 10:00-11:00, before DEMO_NOW (12:00)
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[-1].value
    gpus = table["gpu_uuid"].nunique()
    assert gpus >= 1
    assert len(table) == 60 * gpus
    assert (table["ts"].dt.hour == 10).all()
    caption = next(c.value for c in at.caption if "from the lake" in c.value)
    assert caption.startswith(f"{60 * gpus} samples of {gpus} GPU")
    assert f"on {host}" in caption


def test_without_the_lake_the_overview_has_no_drilldown(demo_warehouse, dashboard_for):
    dashboard_for(demo_warehouse)
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert TITLE not in [h.value for h in at.subheader]
