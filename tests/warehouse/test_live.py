"""The live view reads the newest samples straight from recent spool files."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tables import spool
from tables.records import SCHEMAS
from warehouse.live import latest_gpu_samples, recent_spool_files

# The live view reads today's and yesterday's partitions of files written in the last seconds:
# every test runs at the pinned clock (tests/clock.py) and at several dates (`make test-dates`).
pytestmark = pytest.mark.date_sensitive


def samples(rows: list[tuple[str, int, str, datetime, float]]) -> pl.DataFrame:
    """(host, gpu_index, gpu_uuid, ts, util_pct) rows."""
    return pl.DataFrame(
        {
            "host": [r[0] for r in rows],
            "gpu_index": [r[1] for r in rows],
            "gpu_uuid": [r[2] for r in rows],
            "ts": [r[3] for r in rows],
            "util_pct": [r[4] for r in rows],
            "gpu_model": ["A100"] * len(rows),
            "source": ["nvml"] * len(rows),
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC"), "gpu_index": pl.Int32},
    )


def age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def write(spool_dir: Path, frame: pl.DataFrame, host: str, seconds_ago: float = 0.0) -> Path:
    """A spool batch written `seconds_ago` by the (pinned) clock: the operating system stamps
    files with the real time."""
    path = spool.write_batch(spool_dir, "gpu_samples", frame, host)
    age(path, seconds_ago)
    return path


def test_latest_sample_per_gpu_from_recent_files_only(tmp_path: Path) -> None:
    s = tmp_path / "spool"
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    # Two recent files from one host, one from another; within and across files the newest wins.
    write(s, samples([("a", 1, "GPU-a1", t, 10.0), ("a", 0, "GPU-a0", t, 20.0)]), "a")
    write(
        s,
        samples(
            [
                ("a", 0, "GPU-a0", t + timedelta(seconds=10), 21.0),
                ("a", 0, "GPU-a0", t + timedelta(seconds=5), 99.0),
            ]
        ),
        "a",
    )
    write(s, samples([("b", 0, "GPU-b0", t, 30.0)]), "b")
    # An old file (written 10 minutes ago) with a GPU of its own and "newer" readings: ignored.
    old = write(
        s,
        samples(
            [
                ("a", 0, "GPU-a0", t + timedelta(seconds=20), 77.0),
                ("c", 0, "GPU-c0", t + timedelta(seconds=20), 55.0),
            ]
        ),
        "c",
        seconds_ago=600,
    )

    got = latest_gpu_samples(s, within_s=60)
    assert sorted(got.columns) == sorted(SCHEMAS["gpu_samples"])
    assert got.select("host", "gpu_index", "gpu_uuid", "util_pct").rows() == [
        ("a", 0, "GPU-a0", 21.0),
        ("a", 1, "GPU-a1", 10.0),
        ("b", 0, "GPU-b0", 30.0),
    ]
    assert got["ts"].to_list() == [t + timedelta(seconds=10), t, t]
    assert old not in recent_spool_files(s, "gpu_samples", 60)
    assert len(recent_spool_files(s, "gpu_samples", 60)) == 3
    # A wider window takes the old file in.
    wide = latest_gpu_samples(s, within_s=3600)
    assert wide["gpu_uuid"].to_list() == ["GPU-a0", "GPU-a1", "GPU-b0", "GPU-c0"]
    assert wide.filter(pl.col("gpu_uuid") == "GPU-a0")["util_pct"].item() == 77.0


def test_no_recent_files_gives_an_empty_frame(tmp_path: Path) -> None:
    s = tmp_path / "spool"
    assert latest_gpu_samples(s).height == 0  # no spool at all
    write(s, samples([("a", 0, "GPU-a0", datetime.now(UTC), 1.0)]), "a", seconds_ago=3600)
    got = latest_gpu_samples(s, within_s=60)
    assert got.height == 0
    assert got.schema == pl.Schema(SCHEMAS["gpu_samples"])


def test_unreadable_and_temporary_files_are_skipped(tmp_path: Path) -> None:
    s = tmp_path / "spool"
    good = write(s, samples([("a", 0, "GPU-a0", datetime.now(UTC), 42.0)]), "a")
    (good.parent / "part-broken.parquet").write_bytes(b"not parquet")
    (good.parent / f"{spool.TMP_PREFIX}part-x.parquet").write_bytes(b"being written")
    got = latest_gpu_samples(s, within_s=60)
    assert got.select("gpu_uuid", "util_pct").rows() == [("GPU-a0", 42.0)]
