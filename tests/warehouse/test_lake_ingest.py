"""Ingest with the lake on (warehouse/lake_ingest.py): raw GPU samples go to the Iceberg table,
the warehouse keeps the same minute rollups a lake-less warehouse computes and only a 15-minute
raw tail per GPU.

The spool: 2 hosts x 2 GPUs at 1 Hz from 08:00 for 2 hours, in files of 10 minutes per host
(12 files a host, 24 in all): 2 x 2 x 7,200 = 28,800 samples, 240 GPU-minutes per GPU.
Utilization ramps with the second so every minute differs; the energy counter grows by
power x 1 s.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from cli.jobs import periodic_jobs
from config.settings import Config, LakeConfig
from tables import spool
from warehouse import lake_ingest, store
from warehouse.lake import Lake, LakeUnavailable, open_lake
from warehouse.store import Warehouse

pytest.importorskip("pyiceberg", reason="the lake needs pyiceberg (requirements-lake.txt)")

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HOSTS = ("node-1", "node-2")
SAMPLES = 2 * 2 * 7_200


def ten_minutes(host: str, k: int) -> pl.DataFrame:
    """Host `host`'s two GPUs from 08:00 + 10 min x k, one sample a second each."""
    start = T0 + timedelta(minutes=10 * k)
    rows = []
    for g in range(2):
        for s in range(600):
            t = 600 * k + s
            rows.append(
                {
                    "ts": start + timedelta(seconds=s),
                    "host": host,
                    "gpu_uuid": f"GPU-{host}-{g}",
                    "gpu_index": g,
                    "gpu_model": "H100",
                    "util_pct": float((t // 7 + 13 * g) % 101),
                    "activity_kind": "nvml_util",
                    "mem_used_mib": 1000.0,
                    "mem_total_mib": 81559.0,
                    "power_w": 100.0 + g,
                    "energy_mj": 1e9 + t * (100.0 + g) * 1000.0,
                    "workload": "train" if (t // 1800) % 2 == 0 else None,
                    "source": "test",
                }
            )
    return pl.DataFrame(rows)


def write_spool(spool_dir: Path, ks: range = range(12)) -> list[Path]:
    paths = []
    for k in ks:
        for host in HOSTS:
            at = T0 + timedelta(minutes=10 * k + 10)
            frame = ten_minutes(host, k)
            paths.append(spool.write_batch(spool_dir, "gpu_samples", frame, host, now=at))
    return paths


def lake_cfg(cfg: Config) -> Config:
    return replace(cfg, lake=LakeConfig(enabled=True))


def lake_warehouse(cfg: Config) -> Warehouse:
    wh = Warehouse(cfg.db_path, cfg.spool_dir).open()
    wh.lake = open_lake(cfg)
    return wh


def minutes(wh: Warehouse) -> pl.DataFrame:
    return wh.db.sql("SELECT * FROM gpu_minute ORDER BY host, gpu_uuid, minute, workload").pl()


@pytest.fixture
def reference(tmp_path: Path) -> pl.DataFrame:
    """The minute rollups a warehouse without the lake computes from the same spool."""
    other = tmp_path / "reference"
    write_spool(other / "spool")
    with Warehouse(other / "w.duckdb", other / "spool") as wh:
        wh.ingest_spool()
        return minutes(wh)


def test_raw_rows_go_to_the_lake_and_the_rollups_are_the_same(cfg, reference, monkeypatch):
    """Chunks of 5 files (node-1's 10-minute files in time order, then node-2's): each chunk's
    rollup window comes from the tail the chunk before left."""
    monkeypatch.setattr(store, "CHUNK_FILES", 5)
    cfg = lake_cfg(cfg)
    write_spool(cfg.spool_dir)
    with lake_warehouse(cfg) as wh:
        result = wh.ingest_spool()
        assert result.rows["gpu_samples"] == SAMPLES
        got = minutes(wh)
        # The tail: the newest sample and the 15 x 60 before it, of each of 4 GPUs.
        assert wh.db.sql("SELECT count(*) FROM gpu_samples").fetchall()[0][0] == 4 * 901
        assert wh.lake is not None and wh.lake.row_count("gpu_samples") == SAMPLES
    assert got.height == reference.height == 4 * 120
    assert got.equals(reference)


def test_a_late_batch_after_a_restart_reads_its_window_from_the_lake(cfg, reference):
    """Files 0-3 and 6-11 first; then, in a new process (no tail for those minutes), files 4
    and 5: their minutes and the minutes after them are recomputed with the lake's rows."""
    cfg = lake_cfg(cfg)
    paths = write_spool(cfg.spool_dir)
    late = paths[8:12]  # k = 4, 5 for both hosts
    held = cfg.spool_dir.parent / "held"
    held.mkdir()
    for p in late:
        shutil.move(p, held / p.name)
    with lake_warehouse(cfg) as wh:
        wh.ingest_spool()
    for p in late:
        shutil.move(held / p.name, p)
    with lake_warehouse(cfg) as wh:
        assert wh.ingest_spool().rows["gpu_samples"] == 4 * 1200
        assert minutes(wh).equals(reference)
        assert wh.lake is not None and wh.lake.row_count("gpu_samples") == SAMPLES


def test_a_crash_between_the_lake_and_the_warehouse_commits_nothing_twice(
    cfg, reference, monkeypatch
):
    """The first chunk (5 files of node-1) reaches the lake, then the process dies before the
    warehouse's transaction: the next run takes the files again, the lake keeps one copy."""
    monkeypatch.setattr(store, "CHUNK_FILES", 5)
    cfg = lake_cfg(cfg)
    write_spool(cfg.spool_dir)

    def die(*args, **kwargs):
        raise KeyboardInterrupt

    with lake_warehouse(cfg) as wh:
        with monkeypatch.context() as m:
            m.setattr(lake_ingest, "_store", die)
            with pytest.raises(KeyboardInterrupt):
                wh.ingest_spool()
        assert wh.lake is not None
        first = wh.lake.row_count("gpu_samples")
        assert first == 5 * 1200
        assert wh.db.sql("SELECT count(*) FROM ingested_files").fetchall()[0][0] == 0
    with lake_warehouse(cfg) as wh:
        result = wh.ingest_spool()
        assert result.files == 24
        assert wh.lake is not None and wh.lake.row_count("gpu_samples") == SAMPLES
        assert minutes(wh).equals(reference)


def test_rows_sent_again_in_another_file_are_not_doubled(cfg):
    """A collector re-sends the last 10 minutes of node-1 under a new file name: the 1,200 rows
    are already stored (the tail knows them), so the lake gains nothing."""
    cfg = lake_cfg(cfg)
    write_spool(cfg.spool_dir, range(2))
    with lake_warehouse(cfg) as wh:
        wh.ingest_spool()
        again = T0 + timedelta(hours=1)
        spool.write_batch(
            cfg.spool_dir, "gpu_samples", ten_minutes("node-1", 1), "node-1", now=again
        )
        assert wh.ingest_spool().rows["gpu_samples"] == 0
        assert wh.lake is not None and wh.lake.row_count("gpu_samples") == 4 * 1200


def test_the_lake_job_runs_only_with_the_lake_on(cfg):
    """Off by default; on, every [lake] interval_s, its tick maintains the warehouse's lake:
    node-1's and node-2's two 10-minute files each are two data files per partition, which a
    compact_min_files of 2 rewrites as one each."""
    names = [n for n, _, _ in periodic_jobs(cfg, None, None, demo_on=False)]
    assert "lake" not in names
    on = replace(cfg, lake=LakeConfig(enabled=True, interval_s=900.0, compact_min_files=2))
    write_spool(on.spool_dir, range(2))
    with lake_warehouse(on) as wh:
        for path in sorted(on.spool_dir.rglob("*.parquet")):  # one commit a file
            assert wh.lake is not None
            wh.lake.commit_spool_files("gpu_samples", [path])
        jobs = {n: (p, tick) for n, p, tick in periodic_jobs(on, wh, None, demo_on=False)}
        period, tick = jobs["lake"]
        assert period == 900.0
        done = tick()
        assert (done.compacted_partitions, done.files_in, done.files_out) == (2, 4, 2)


def test_a_lake_outage_sets_no_batch_aside(cfg, reference, monkeypatch):
    """The catalog fails (a locked database, an unreachable server): the ingest stops with
    LakeUnavailable, every file stays in the spool (none under _rejected), and the next run
    takes them all."""
    cfg = lake_cfg(cfg)
    paths = write_spool(cfg.spool_dir)

    def down(*args, **kwargs):
        raise RuntimeError("database is locked")

    with lake_warehouse(cfg) as wh:
        with monkeypatch.context() as m:
            m.setattr(Lake, "commit_frame", down)
            with pytest.raises(LakeUnavailable, match="database is locked"):
                wh.ingest_spool()
        assert all(p.exists() for p in paths)
        assert not (cfg.spool_dir / "_rejected").exists()
        assert wh.ingest_spool().files == 24
        assert minutes(wh).equals(reference)


def test_with_the_lake_the_ingest_commits_once_per_interval(cfg):
    """[lake] commit_interval_s = 60: the daemon's ingest every few seconds takes new files once
    a minute (one table snapshot each); the first call always takes them."""
    cfg = lake_cfg(cfg)
    write_spool(cfg.spool_dir, range(1))
    with lake_warehouse(cfg) as wh:
        wh.lake_interval_s = 60.0
        assert wh.ingest_spool().files == 2
        write_spool(cfg.spool_dir, range(1, 2))
        assert wh.ingest_spool().files == 0  # within the minute
        wh.lake_taken_at -= 61.0  # a minute later
        assert wh.ingest_spool().files == 2
        assert wh.lake is not None
        assert len(wh.lake.table("gpu_samples").snapshots()) == 2
