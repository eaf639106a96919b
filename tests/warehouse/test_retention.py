"""Retention: raw rows trimmed after [retention] raw_days with the rollups kept; the spool
compacted per kind, day and host without a row lost or counted twice, crash or not."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from config.settings import Config
from tables import spool
from warehouse import retention
from warehouse.retention import compact_spool, delete_old_raw, drop_old_spool, run_retention
from warehouse.store import Warehouse

DAY1 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
NOW = DAY1 + timedelta(days=1, hours=12)  # DAY1 is finished, DAY1 + 1 is "today"


def samples(start: datetime, n: int, *, host: str = "node-1", gpu: str = "GPU-a") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [start + timedelta(seconds=i) for i in range(n)],
            "host": [host] * n,
            "gpu_uuid": [gpu] * n,
            "gpu_model": ["H100"] * n,
            "util_pct": [float(i % 100) for i in range(n)],
            "sm_active_pct": [(i % 100) * 0.4321 for i in range(n)],
            "mem_used_mib": [1000.0] * n,
            "mem_total_mib": [81559.0] * n,
            "power_w": [300.0 + (i % 7) * 0.123 for i in range(n)],
            "energy_mj": [1e9 + 300_123.0 * i for i in range(n)],
            "workload": ["train"] * n,
            "source": ["test"] * n,
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


def write(cfg: Config, frame: pl.DataFrame, when: datetime, host: str = "node-1") -> Path:
    return spool.write_batch(cfg.spool_dir, "gpu_samples", frame, host, now=when)


def small_batches(cfg: Config, start: datetime, files: int, per_file: int = 10) -> list[Path]:
    """`files` agent-like batches of `per_file` one-second samples, back to back."""
    return [
        write(cfg, samples(start + timedelta(seconds=i * per_file), per_file), start)
        for i in range(files)
    ]


@pytest.fixture
def wh(cfg: Config) -> Iterator[Warehouse]:
    with Warehouse(cfg.db_path, cfg.spool_dir) as w:
        yield w


def scalar(wh: Warehouse, sql: str, params: list | None = None):
    return wh.db.execute(sql, params or []).fetchall()[0][0]


def stored(wh: Warehouse) -> tuple[int, float, int]:
    return (
        scalar(wh, "SELECT count(*) FROM gpu_samples"),
        scalar(wh, "SELECT sum(seconds) FROM gpu_minute"),
        scalar(wh, "SELECT count(*) FROM gpu_minute"),
    )


def spool_rows(cfg: Config) -> pl.DataFrame:
    files = spool.list_batches(cfg.spool_dir, "gpu_samples")
    return pl.concat([pl.read_parquet(p) for p in files]) if files else pl.DataFrame()


# Raw rows ----------------------------------------------------------------------------------------
def test_old_raw_rows_go_and_minute_rollups_stay(cfg: Config, wh: Warehouse) -> None:
    write(cfg, samples(DAY1, 600), DAY1)  # ten minutes on day 1
    write(cfg, samples(DAY1 + timedelta(days=5), 600), DAY1 + timedelta(days=5))
    wh.ingest_spool()
    before = stored(wh)
    assert before[0] == 1200
    deleted = delete_old_raw(wh, 3, now=DAY1 + timedelta(days=6))
    assert deleted == {"gpu_samples": 600, "process_samples": 0}
    assert scalar(wh, "SELECT count(*) FROM gpu_samples") == 600
    assert scalar(wh, "SELECT min(ts) FROM gpu_samples") == DAY1 + timedelta(days=5)
    # The rollups of the deleted day are all still there. By hand: 1,200 one-second samples,
    # the last of day 1 capped at 2 x 1 s before the 5-day hole: 1,201 s.
    assert stored(wh)[1:] == before[1:] == (pytest.approx(1201.0), 20)
    assert wh.raw_horizon() == DAY1 + timedelta(days=3)


def test_a_late_batch_older_than_the_horizon_keeps_the_earlier_rollups(
    cfg: Config, wh: Warehouse
) -> None:
    """Ten minutes stored, raw rows deleted, then the next five minutes arrive late: the minutes
    before them keep what their deleted samples counted (no lookback across the horizon)."""
    write(cfg, samples(DAY1, 600), DAY1)
    wh.ingest_spool()
    delete_old_raw(wh, 3, now=DAY1 + timedelta(days=10))
    write(cfg, samples(DAY1 + timedelta(minutes=10), 300), DAY1 + timedelta(days=10))
    wh.ingest_spool()
    minutes = scalar(wh, "SELECT count(*) FROM gpu_minute")
    assert minutes == 15
    assert scalar(wh, "SELECT sum(seconds) FROM gpu_minute") == pytest.approx(900.0)
    assert scalar(wh, "SELECT sum(samples) FROM gpu_minute") == 900


# Compaction --------------------------------------------------------------------------------------
def test_today_merges_only_once_enough_small_files_are_ingested(cfg: Config, wh: Warehouse) -> None:
    today = NOW - timedelta(hours=2)
    inputs = small_batches(cfg, today, 5)
    wh.ingest_spool()
    compact_spool(wh, min_files=6, now=NOW)
    assert all(p.exists() for p in inputs)  # 5 < 6: nothing to do yet
    more = small_batches(cfg, today + timedelta(seconds=50), 1)
    pending = write(cfg, samples(today + timedelta(minutes=5), 10), today)  # not ingested
    wh.ingest_spool(since_date="9999-01-01")  # ingest nothing new on purpose
    wh.db.execute("SELECT 1").fetchall()
    result = compact_spool(wh, min_files=6, now=NOW)
    assert result.partitions == 0  # the sixth file is not ingested yet
    wh.ingest_spool()  # takes `more` and `pending`
    result = compact_spool(wh, min_files=6, now=NOW)
    assert (result.partitions, result.files_in, result.files_out) == (1, 7, 1)
    assert not any(p.exists() for p in [*inputs, *more, pending])
    files = spool.list_batches(cfg.spool_dir, "gpu_samples")
    assert len(files) == 1 and retention.is_compacted(files[0])
    ledger = wh.db.execute("SELECT path, rows FROM ingested_files").fetchall()
    assert ledger == [(str(files[0].relative_to(cfg.spool_dir)), 70)]
    assert wh.ingest_spool().files == 0
    assert stored(wh)[0] == 70


def test_a_finished_day_becomes_one_sorted_file_per_host(cfg: Config, wh: Warehouse) -> None:
    for host in ("node-1", "node-2"):
        for i in range(3):  # interleaved GPUs, as an agent writes them
            frame = pl.concat(
                [
                    samples(DAY1 + timedelta(minutes=i), 60, host=host, gpu="GPU-b"),
                    samples(DAY1 + timedelta(minutes=i), 60, host=host, gpu="GPU-a"),
                ]
            ).sort("ts")
            write(cfg, frame, DAY1, host)
    wh.ingest_spool()
    before = stored(wh)
    rows_before = spool_rows(cfg)
    result = compact_spool(wh, min_files=1000, now=NOW)
    assert (result.partitions, result.files_in, result.files_out) == (2, 6, 2)
    files = spool.list_batches(cfg.spool_dir, "gpu_samples")
    assert sorted(p.parent.name for p in files) == ["host=node-1", "host=node-2"]
    merged = pl.read_parquet(files[0])
    assert merged.height == 360
    assert merged["gpu_uuid"].to_list() == ["GPU-a"] * 180 + ["GPU-b"] * 180
    assert merged.filter(pl.col("gpu_uuid") == "GPU-a")["ts"].is_sorted()
    meta = pq.ParquetFile(files[0]).schema_arrow.metadata
    assert meta[retention.MARK] == b"1"
    # Same columns and types as an agent batch: one table definition reads both.
    assert pl.read_parquet_schema(files[0]) == rows_before.schema
    # Quantized as documented, within half a quantum of the original.
    after = spool_rows(cfg).sort("host", "gpu_uuid", "ts")
    orig = rows_before.sort("host", "gpu_uuid", "ts")
    assert after.height == orig.height == 720
    assert (after["util_pct"] == orig["util_pct"]).all()  # whole percent: exact
    assert ((after["sm_active_pct"] - orig["sm_active_pct"]).abs() <= 0.05 + 1e-9).all()
    assert ((after["power_w"] - orig["power_w"]).abs() <= 0.5).all()
    assert ((after["energy_mj"] - orig["energy_mj"]).abs() <= 500.0).all()
    assert stored(wh) == before
    # Running it again changes nothing.
    again = compact_spool(wh, min_files=1000, now=NOW)
    assert again.partitions == 0
    assert spool.list_batches(cfg.spool_dir, "gpu_samples") == files


def test_without_quantize_values_stay_bit_for_bit(cfg: Config, wh: Warehouse) -> None:
    write(cfg, samples(DAY1, 100), DAY1)
    wh.ingest_spool()
    orig = spool_rows(cfg)
    compact_spool(wh, min_files=1000, quantize=False, now=NOW)
    assert spool_rows(cfg).equals(orig)


def test_a_rebuilt_warehouse_from_the_compacted_spool_counts_the_same(
    cfg: Config, wh: Warehouse, tmp_path: Path
) -> None:
    for i in range(4):
        write(cfg, samples(DAY1 + timedelta(minutes=10 * i), 600), DAY1)
    wh.ingest_spool()
    compact_spool(wh, min_files=2, now=NOW)
    with Warehouse(tmp_path / "rebuilt.duckdb", cfg.spool_dir) as other:
        other.ingest_spool()
        assert stored(other)[0] == stored(wh)[0] == 2400
        assert stored(other)[1] == pytest.approx(stored(wh)[1])
        busy = "SELECT sum(busy_seconds) FROM gpu_minute"
        assert scalar(other, busy) == pytest.approx(scalar(wh, busy), rel=1e-3)


def test_a_crash_before_the_rename_loses_nothing(
    cfg: Config, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = small_batches(cfg, DAY1, 4)
    wh.ingest_spool()
    before = stored(wh)
    real = os.replace

    def crash(src, dst):
        if str(src).endswith(retention.COMPACTED_SUFFIX):
            raise OSError("power cut")
        return real(src, dst)

    monkeypatch.setattr(retention.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        compact_spool(wh, min_files=2, now=NOW)
    monkeypatch.undo()
    assert all(p.exists() for p in inputs)
    assert wh.ingest_spool().files == 0  # the inputs are still in the ledger
    result = compact_spool(wh, min_files=2, now=NOW)
    assert result.files_in == 4
    assert wh.ingest_spool().files == 0
    assert stored(wh) == before
    assert spool_rows(cfg).height == 40


def test_a_crash_after_the_rename_merges_the_leftovers_again(
    cfg: Config, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = small_batches(cfg, DAY1, 4)
    wh.ingest_spool()
    before = stored(wh)

    def killed(self: Path, missing_ok: bool = False) -> None:
        raise RuntimeError("killed")  # the process dies before deleting the inputs

    monkeypatch.setattr(Path, "unlink", killed)
    with pytest.raises(RuntimeError, match="killed"):
        compact_spool(wh, min_files=2, now=NOW)
    monkeypatch.undo()
    assert all(p.exists() for p in inputs)
    assert len(spool.list_batches(cfg.spool_dir, "gpu_samples")) == 5
    assert wh.ingest_spool().files == 0
    compact_spool(wh, min_files=2, now=NOW)
    files = spool.list_batches(cfg.spool_dir, "gpu_samples")
    assert len(files) == 1
    assert spool_rows(cfg).height == 40  # deduplicated by key in the merge
    assert stored(wh) == before


def test_old_spool_days_go_only_when_ingested(cfg: Config, wh: Warehouse) -> None:
    old = write(cfg, samples(DAY1, 10), DAY1)
    wh.ingest_spool()
    late = write(cfg, samples(DAY1 + timedelta(hours=1), 10), DAY1)
    assert drop_old_spool(wh, 1, now=DAY1 + timedelta(days=3)) == 0  # `late` is not ingested
    assert old.exists() and late.exists()
    wh.ingest_spool()
    assert drop_old_spool(wh, 1, now=DAY1 + timedelta(days=3)) == 2
    assert not old.parent.parent.exists()
    assert scalar(wh, "SELECT count(*) FROM ingested_files") == 0
    assert stored(wh)[0] == 20


def test_run_retention_does_all_and_says_so(cfg: Config, wh: Warehouse) -> None:
    small_batches(cfg, DAY1, 3)
    wh.ingest_spool()
    result = run_retention(wh, raw_days=14, compact_min_files=50, now=NOW)
    assert result.partitions == 1 and result.deleted_rows["gpu_samples"] == 0
    assert "compacted 1 partition(s), 3 file(s) into 1" in result.summary()


def test_the_daemon_runs_retention_on_its_period(cfg: Config, wh: Warehouse) -> None:
    from cli.jobs import periodic_jobs

    jobs = {
        name: period for name, period, _ in periodic_jobs(cfg, wh, pl.DataFrame(), demo_on=False)
    }
    assert jobs["retention"] == cfg.retention.interval_s == 3600.0
    assert "ship-pull" not in jobs
