"""The live view: the newest GPU samples straight from the spool, seconds old, before the daemon
has ingested them (DESIGN.md §1, rule 3). Reads only today's and yesterday's partitions and only
files written in the last `within_s` seconds, so it stays cheap whatever the spool's size."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from tables import spool
from tables.records import empty


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
        try:
            frames.append(pl.read_parquet(p))
        except (OSError, pl.exceptions.ComputeError):
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


def latest_gpu_samples(spool_dir: Path, within_s: float = 60.0) -> pl.DataFrame:
    """The newest sample of every GPU seen in spool files of the last `within_s` seconds."""
    files = recent_spool_files(spool_dir, "gpu_samples", within_s)
    frames = []
    for p in files:
        try:
            frames.append(pl.read_parquet(p))
        except (OSError, pl.exceptions.ComputeError):
            continue
    if not frames:
        return empty("gpu_samples")
    return (
        pl.concat(frames, how="vertical_relaxed")
        .sort("ts")
        .group_by("host", "gpu_uuid", maintain_order=True)
        .last()
        .sort("host", "gpu_index", "gpu_uuid")
    )
