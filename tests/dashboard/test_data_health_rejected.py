"""Data health shows the spool files the ingest set aside, with why (issue 14)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import polars as pl
import streamlit as st
from streamlit.testing.v1 import AppTest

from cli.daemon import dashboard_env
from tables import spool
from warehouse.snapshot import publish
from warehouse.store import Warehouse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def page(cfg, monkeypatch) -> AppTest:
    for k, v in dashboard_env(cfg).items():
        if k.startswith("GPULEDGER_"):
            monkeypatch.setenv(k, v)
    st.cache_resource.clear()
    st.cache_data.clear()
    monkeypatch.chdir(ROOT)
    return AppTest.from_file(os.path.join(ROOT, "dashboard/pages/data_health.py")).run(timeout=30)


def batch(cfg, host: str, times: list[datetime]) -> None:
    frame = pl.DataFrame(
        {"ts": times, "host": [host] * len(times), "gpu_uuid": ["GPU-1"] * len(times)},
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    spool.write_batch(cfg.spool_dir, "gpu_samples", frame, host)


def test_a_batch_set_aside_is_listed_with_its_reason(cfg, monkeypatch) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    batch(cfg, "node-ok", [now - timedelta(minutes=2)])
    batch(cfg, "node-bad", [now - timedelta(minutes=2), datetime(2199, 1, 1, tzinfo=UTC)])
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        assert wh.ingest_spool().rows == {"gpu_samples": 1}
        publish(wh, cfg.snapshot_path, days=35)
    at = page(cfg, monkeypatch)
    assert not at.exception
    said = [w.value for w in at.warning if "could not be ingested" in w.value]
    assert len(said) == 1 and said[0].startswith("1 spool file could not be ingested")
    shown = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert list(shown["kind"]) == ["gpu_samples"]
    assert "host=node-bad" in shown["path"][0]
    assert shown["reason"][0].startswith("row 2, column ts: 2199-01-01")


def test_nothing_set_aside_says_so(cfg, monkeypatch) -> None:
    batch(cfg, "node-ok", [datetime.now(UTC) - timedelta(minutes=1)])
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        wh.ingest_spool()
        publish(wh, cfg.snapshot_path, days=35)
    at = page(cfg, monkeypatch)
    assert not at.exception
    assert any("No spool file was set aside" in s.value for s in at.success)
