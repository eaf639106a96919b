"""The live view: the newest GPU samples straight from the spool, seconds old, before the daemon
has ingested them (DESIGN.md §1, rule 3). Reads only today's and yesterday's partitions and only
files written in the last `within_s` seconds, so it stays cheap whatever the spool's size."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from tables import spool
from tables.records import empty, read_spool_file
from tables.timestamps import latest_allowed


def recent_spool_files(spool_dir: Path, kind: str, within_s: float) -> list[Path]:
    now = datetime.now(UTC)
    cutoff = time.time() - within_s
    days = {f"{day:%Y-%m-%d}" for day in (now, now - timedelta(days=1))}
    files: list[Path] = []
    for partition in spool.partitions(spool_dir, kind, dates=days):
        for p in partition.glob(spool.BATCH_GLOB):
            try:
                if p.stat().st_mtime >= cutoff:
                    files.append(p)
            except FileNotFoundError:  # compacted or moved meanwhile
                continue
    return files


def _recent_frames(spool_dir: Path, kind: str, within_s: float) -> list[pl.DataFrame]:
    frames = []
    for p in recent_spool_files(spool_dir, kind, within_s):
        try:  # an older agent's batch lacks the newest columns: they read as nulls
            frames.append(read_spool_file(p, kind))
        except (OSError, pl.exceptions.PolarsError):
            continue
    return frames


def latest_process_samples(spool_dir: Path, within_s: float = 60.0) -> pl.DataFrame:
    """The processes on each GPU at that GPU's newest process sample in recent spool files."""
    frames = _recent_frames(spool_dir, "process_samples", within_s)
    if not frames:
        return empty("process_samples")
    merged = pl.concat(frames, how="vertical_relaxed")
    newest = merged.group_by("host", "gpu_uuid").agg(pl.col("ts").max())
    return merged.join(newest, on=["host", "gpu_uuid", "ts"]).sort("host", "gpu_uuid", "pid")


def recent_gpu_samples(spool_dir: Path, within_s: float = 300.0) -> pl.DataFrame:
    """Every GPU sample of the last `within_s` seconds in recent spool files (the Live page's
    short history), oldest first."""
    frames = _recent_frames(spool_dir, "gpu_samples", within_s)
    if not frames:
        return empty("gpu_samples")
    since = datetime.now(UTC) - timedelta(seconds=within_s)
    return (
        pl.concat(frames, how="vertical")
        .filter(pl.col("ts") <= latest_allowed())  # a clock far ahead is not "now"
        .filter(pl.col("ts") >= since)
        .unique(["host", "gpu_uuid", "ts"], keep="last")
        .sort("ts", "host", "gpu_uuid")
    )


def newest_per_gpu(samples: pl.DataFrame) -> pl.DataFrame:
    """The newest of `samples` for every GPU."""
    return (
        samples.sort("ts")
        .group_by("host", "gpu_uuid", maintain_order=True)
        .last()
        .sort("host", "gpu_index", "gpu_uuid")
    )


def latest_gpu_samples(spool_dir: Path, within_s: float = 60.0) -> pl.DataFrame:
    """The newest sample of every GPU seen in spool files of the last `within_s` seconds."""
    frames = _recent_frames(spool_dir, "gpu_samples", within_s)
    if not frames:
        return empty("gpu_samples")
    return newest_per_gpu(
        pl.concat(frames, how="vertical").filter(pl.col("ts") <= latest_allowed())
    )
