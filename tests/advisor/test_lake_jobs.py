"""The ledger job from the lake's raw partitions (advisor/lake_jobs.py): the engine fleet
(tests/advisor/engine_fleet.py) committed to a local Iceberg lake, each day and host's rollups,
attribution and ledger computed from its scan, stored in one transaction: the same rows as the
ingest's rollups and the whole-chunk ledger job. The Ray run is in test_engine_ray.py (slow)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from polars.testing import assert_frame_equal

from advisor.engine import Engine, LocalEngine
from advisor.jobs import refresh_ledger
from advisor.lake_jobs import LakeSource, day_samples, lake_ledger
from cli import app
from tables import spool
from tests.advisor.engine_fleet import DAY1, DAY2, NOW, fleet_config, gpu_samples, load_samples
from warehouse import results
from warehouse.lake import open_lake
from warehouse.store import ROLLUP_COLUMNS, Warehouse

pytest.importorskip("pyiceberg", reason="the lake needs pyiceberg (requirements-lake.txt)")

START = datetime(DAY1.year, DAY1.month, DAY1.day, tzinfo=UTC)
END = START + timedelta(days=2)
MINUTE_KEY = ["host", "gpu_uuid", "minute", "workload"]


def stored(wh: Warehouse):
    return (
        wh.gpu_minutes(START, END).sort(MINUTE_KEY),
        results.usage_between(wh, START, END).sort("hour", "host", "gpu_uuid", "workload"),
        results.ledger_between(wh, DAY1, DAY2 + timedelta(days=1)),
    )


def lake_vs_whole(tmp_path, engine: Engine):
    """The fleet ingested and costed by the whole-chunk job (what it stored), then its spool
    committed to the lake and costed again from there by `engine` (what that stored)."""
    cfg = fleet_config(tmp_path)
    cfg = replace(cfg, lake=replace(cfg.lake, enabled=True, warehouse=str(tmp_path / "lake")))
    catalog = app.catalog_for(cfg)
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        load_samples(wh, cfg)
        refresh_ledger(wh, cfg, catalog, now=NOW)
        whole = stored(wh)
        lake = open_lake(cfg)
        for kind in ("gpu_samples", "process_samples"):
            lake.commit_spool_files(kind, spool.list_batches(cfg.spool_dir, kind))
        run = lake_ledger(engine, wh, cfg, catalog, LakeSource(cfg), DAY1, DAY2 + timedelta(1))
        return whole, stored(wh), run, lake


def assert_same(whole, mine) -> None:
    for a, b in zip(whole, mine, strict=True):
        assert a.height > 0
        assert_frame_equal(a, b.select(a.columns), check_exact=False, rel_tol=1e-12)


def test_the_lake_partitions_store_the_ingests_rollups_and_the_ledger(tmp_path):
    whole, mine, run, _ = lake_vs_whole(tmp_path, LocalEngine())
    assert_same(whole, mine)
    # lab1 on both days, the instance on DAY1: three partitions with samples.
    assert run.partitions == 3
    # The bill-only partitions are costed too: the unseen instance's $5 and DAY2's $2.
    assert sorted(run.ledger["cost_usd"].to_list())[-3:] == [5.0, 24.0, 24.0]
    # Every dollar: the bills ($24 + $24 + $5 + $2) and lab1's 2.5 GPU-hours (GPU 0 23:00-01:00,
    # GPU 1 10:00-10:30) at $1.53.
    assert run.ledger["cost_usd"].sum() == pytest.approx(24 + 24 + 5 + 2 + 2.5 * 1.53)


def test_a_days_scan_reaches_ten_minutes_into_the_days_either_side(tmp_path):
    *_, lake = lake_vs_whole(tmp_path, LocalEngine())
    got = day_samples(lake, DAY2, "lab1")
    raw = gpu_samples().filter(host="lab1").select(ROLLUP_COLUMNS)
    # GPU-lab1-0 runs 23:00-01:00: DAY2's scan starts at 23:50 on DAY1 (60 samples at 10 s)
    # and holds the 360 of 00:00-01:00; GPU-lab1-1's 180 of 10:00-10:30.
    assert got.height == 60 + 360 + 180
    assert got["ts"].min() == START + timedelta(hours=23, minutes=50)
    assert_frame_equal(got.sort("gpu_uuid", "ts"), raw.filter(raw["ts"] >= got["ts"].min()))
