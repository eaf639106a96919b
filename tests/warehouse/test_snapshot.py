"""The read-only snapshot: atomic publish, readers that follow it, what it holds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from config.settings import Config
from tables import spool
from warehouse.schema import SCHEMA_VERSION
from warehouse.snapshot import Snapshot, SnapshotMissing, publish
from warehouse.store import Warehouse


def samples(start: datetime, count: int, *, host: str = "node-1", uuid: str = "GPU-aaaa"):
    times = [start + timedelta(seconds=10 * i) for i in range(count)]
    return pl.DataFrame(
        {
            "ts": times,
            "host": [host] * count,
            "gpu_uuid": [uuid] * count,
            "gpu_index": [0] * count,
            "gpu_model": ["H100"] * count,
            "util_pct": [50.0] * count,
            "mem_used_mib": [1000.0] * count,
            "mem_total_mib": [81559.0] * count,
            "power_w": [100.0] * count,
            "workload": ["train"] * count,
            "source": ["test"] * count,
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


@pytest.fixture
def now(clock: datetime) -> datetime:
    """The pinned clock (tests/clock.py) on a whole minute: the snapshot keeps the last days."""
    return clock.replace(second=0, microsecond=0)


@pytest.fixture
def wh(cfg: Config) -> Iterator[Warehouse]:
    with Warehouse(cfg.db_path, cfg.spool_dir) as w:
        yield w


def add(cfg: Config, wh: Warehouse, frame: pl.DataFrame) -> None:
    spool.write_batch(cfg.spool_dir, "gpu_samples", frame, frame["host"][0])
    wh.ingest_spool()


def test_publish_replaces_the_file_atomically(cfg: Config, wh: Warehouse, now: datetime) -> None:
    path = cfg.snapshot_path
    add(cfg, wh, samples(now - timedelta(hours=1), 6))
    # A leftover of a publish that crashed (same pid) is cleared, not attached as is.
    stale = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half a file from a crashed publish")
    assert publish(wh, path, days=2) == path
    first = os.stat(path).st_ino
    add(cfg, wh, samples(now - timedelta(minutes=30), 6))
    publish(wh, path, days=2)
    assert os.stat(path).st_ino != first  # a new file renamed over, not rewritten in place
    leftovers = [p.name for p in path.parent.iterdir() if ".tmp" in p.name]
    assert leftovers == []
    assert not Path(f"{path}.wal").exists()
    assert Snapshot(path).sample_count() == 12


def test_reader_opened_before_publish_sees_the_new_data(
    cfg: Config, wh: Warehouse, now: datetime
) -> None:
    add(cfg, wh, samples(now - timedelta(hours=1), 6))
    publish(wh, cfg.snapshot_path, days=2)
    reader = Snapshot(cfg.snapshot_path)
    other = Snapshot(cfg.snapshot_path)  # a second reader in the same process
    try:
        assert reader.sample_count() == 6
        assert other.sample_count() == 6
        add(cfg, wh, samples(now - timedelta(minutes=55), 6, uuid="GPU-bbbb"))
        publish(wh, cfg.snapshot_path, days=2)
        assert reader.sample_count() == 12
        assert other.sample_count() == 12
        assert reader.gpus_now()["gpu_uuid"].to_list() == ["GPU-aaaa", "GPU-bbbb"]
        # A reader created after the publish, while the others still hold connections.
        late = Snapshot(cfg.snapshot_path)
        assert late.sample_count() == 12
        late.close()
    finally:
        reader.close()
        other.close()


def test_snapshot_missing(tmp_path: Path) -> None:
    snap = Snapshot(tmp_path / "nothing" / "dashboard.duckdb")
    assert not snap.exists()
    assert snap.age_seconds() == float("inf")
    with pytest.raises(SnapshotMissing, match="no snapshot"):
        snap.sample_count()
    with pytest.raises(FileNotFoundError):  # callers may catch the builtin
        snap.meta()


def test_meta_keys(demo_warehouse: Config) -> None:
    snap = Snapshot(demo_warehouse.snapshot_path)
    try:
        meta = snap.meta()
        assert {"published_at", "data_as_of", "schema_version"} <= set(meta)
        assert meta["schema_version"] == str(SCHEMA_VERSION)
        published = datetime.fromisoformat(meta["published_at"])
        assert abs((datetime.now(UTC) - published).total_seconds()) < 600
        as_of = datetime.fromisoformat(meta["data_as_of"])
        # The demo day was seeded up to 2026-11-25 12:00 UTC at one sample a minute.
        assert (
            datetime(2026, 11, 25, 11, 58, tzinfo=UTC)
            <= as_of
            < datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        )
        assert datetime.fromisoformat(meta["data_from"]) < as_of
        assert snap.age_seconds() < 600
        hosts = snap.hosts()  # the Saturday-only sweep instance did not run that Wednesday
        assert hosts.height == 5 and hosts["gpus"].sum() == 20
    finally:
        snap.close()


@pytest.mark.date_sensitive
def test_snapshot_holds_only_the_last_days(cfg: Config, wh: Warehouse, now: datetime) -> None:
    add(cfg, wh, samples(now - timedelta(days=5), 6))
    add(cfg, wh, samples(now - timedelta(days=3), 6))
    add(cfg, wh, samples(now - timedelta(hours=30), 12))
    add(cfg, wh, samples(now - timedelta(hours=1), 18))
    assert wh.db.execute("SELECT sum(samples) FROM gpu_minute").fetchall() == [(42,)]
    publish(wh, cfg.snapshot_path, days=2)
    snap = Snapshot(cfg.snapshot_path)
    try:
        assert snap.sample_count() == 30
        oldest = snap.query("SELECT min(minute) AS m FROM gpu_minute")["m"][0]
        assert oldest >= now - timedelta(days=2)
        # The hosts table still describes all the data, and the meta the span of it.
        assert snap.hosts()["first_sample"][0] == now - timedelta(days=5)
        assert datetime.fromisoformat(snap.meta()["data_from"]) == now - timedelta(days=5)
    finally:
        snap.close()
    publish(wh, cfg.snapshot_path, days=4)
    snap = Snapshot(cfg.snapshot_path)
    assert snap.sample_count() == 36
    snap.close()
