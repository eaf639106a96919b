"""The jobs on Ray (issue 17): 1,000 GPUs (125 hosts × 8) × 1 hour at 1 Hz = 3.6 M GPU samples,
costed three ways in one run, with the outputs compared row for row:

- **local engine** (`[engine] mode = "local"`, as always): the spool ingested into DuckDB (minute
  rollups computed at ingest) and the ledger job (hourly attribution, ledger, waste,
  recommendations);
- **lake + Ray** (`mode = "ray"`, a local Ray of this machine's cores): the spool committed to the
  Iceberg lake, then one Ray task per day-and-host partition (advisor/lake_jobs.py) scanning its
  partition and computing its minute rollups, hourly attribution and ledger rows, stored by the
  driver in one transaction;
- the same partition tasks in this process (`LocalEngine`), to show what Ray itself costs.

Each is measured once (a run is 3.6 M samples) on a small machine shared with other work, so
the times are rough; Ray's start-up is reported on its own. Ray on this machine's 2 cores runs
two partitions at once beside the driver, about as fast as one process alone: what it buys is
the scaling path (a partition's task needs nothing but its own scan, so a cluster of N workers
runs N partitions at once), not speed here. The lake side also pays for reading every partition
back from Iceberg, which the local engine, holding the samples at ingest, does not.

The paper estimates for 10,000 and 50,000 GPUs at the end are worked from the measured cost of a
partition (a host-hour of 8 GPUs at 1 Hz, read from the lake and costed): Ray workers to keep up
with the fleet (CPU-seconds of partition work per hour of samples × 2 headroom ÷ 3,600) and to
recompute a whole day in 10 minutes; lake commits per minute and data files per day (the daemon
commits each kind once per ingest cycle, at this scale every 60 s, one data file per day-and-host
partition a commit touches; the hourly maintenance rewrites each partition of `[lake]
compact_min_files` (8) files or more as one); and the warehouse's growth (minute rollups kept for
good, at the storage section's bytes per row; the raw samples live in the lake).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from benchmarks.fleet import fleet_spec, host_batches, host_name
from benchmarks.run import Result

HOSTS, GPUS_PER_HOST, HOURS = 125, 8, 1
SCALES = (10_000, 50_000)
COMMIT_EVERY_S = 60  # the daemon's ingest interval at that scale ([run] ingest_interval_s)
KINDS = 2  # gpu_samples and process_samples are committed each cycle
# gpu_minute's bytes per row in DuckDB at scale: the storage section's measure on the 30-day,
# 64-GPU fleet (this run's 60,000 rows fill few of DuckDB's 256 KiB blocks and read higher).
MINUTE_ROW_BYTES = 44.8


def write_hour(spool_dir: Path) -> tuple[date, int]:
    """The first hour of the fleet's day, one spool batch per host; (its day, rows)."""
    from tables import spool

    spec = replace(fleet_spec(days=1, hosts=HOSTS), chunk_hours=HOURS)
    rows = 0
    for h in range(spec.hosts):
        when, frame = next(host_batches(spec, h))
        spool.write_batch(spool_dir, "gpu_samples", frame, host_name(spec, h), now=when)
        rows += frame.height
    return spec.start.date(), rows


def configs(root: Path):
    from config.settings import load_config

    base = Path(__file__).resolve().parent.parent / "config"

    def make(name: str, lake: bool):
        cfg = load_config(base / "gpuledger.toml", db=root / name / "warehouse.duckdb")
        return replace(
            cfg,
            demo=replace(cfg.demo, mode="off"),
            catalog=replace(cfg.catalog, path=str(base / "catalog.csv")),
            lake=replace(cfg.lake, enabled=lake, warehouse=str(root / name / "lake")),
            warehouse=replace(cfg.warehouse, spool_dir=str(root / "spool")),
        )

    return make("local", False), make("lake", True)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def local_engine(cfg, catalog, day: date) -> tuple[float, float, dict[str, pl.DataFrame]]:
    """Today's path: ingest (rollups at ingest), then the ledger job; (ingest s, job s, rows)."""
    from advisor.jobs import refresh_ledger
    from warehouse import results
    from warehouse.store import Warehouse

    start = datetime.combine(day, datetime.min.time(), UTC)
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        _, ingest_s = timed(wh.ingest_spool)
        _, job_s = timed(lambda: refresh_ledger(wh, cfg, catalog, now=start + timedelta(days=1)))
        rows = {
            "minutes": wh.gpu_minutes(start, start + timedelta(days=1)),
            "usage": results.usage_between(wh, start, start + timedelta(days=1)),
            "ledger": results.ledger_between(wh, day, day + timedelta(days=1)),
        }
    return ingest_s, job_s, rows


def lake_runs(cfg, catalog, day: date) -> dict:
    """Commit the spool to the lake, then the partition jobs in this process and on Ray."""
    from advisor.engine import LocalEngine, RayEngine
    from advisor.lake_jobs import LakeSource, lake_ledger
    from tables import spool
    from warehouse.lake import open_lake
    from warehouse.store import Warehouse

    lake = open_lake(cfg)
    lake.quantize = False  # bit for bit, to compare with the warehouse's rollups
    files = spool.list_batches(cfg.spool_dir, "gpu_samples")
    _, commit_s = timed(lambda: lake.commit_spool_files("gpu_samples", files))
    out: dict = {"commit_s": commit_s, "files": len(files)}
    source = LakeSource(cfg)
    until = day + timedelta(days=1)
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        out["inproc"], out["inproc_s"] = timed(
            lambda: lake_ledger(LocalEngine(), wh, cfg, catalog, source, day, until)
        )
        engine, out["ray_start_s"] = timed(lambda: RayEngine(num_cpus=os.cpu_count()))
        try:
            out["workers"] = engine.workers
            out["ray"], out["ray_s"] = timed(
                lambda: lake_ledger(engine, wh, cfg, catalog, source, day, until)
            )
        finally:
            engine.close()
        wh.checkpoint()
        # The blocks in use (the file also keeps the free blocks of the first run's rows, which
        # the second replaced): rollups, attribution and ledger, and the empty tables' blocks.
        size, used = wh.db.execute(
            "SELECT block_size, used_blocks FROM pragma_database_size()"
        ).fetchall()[0]
    out["db_bytes"] = size * used
    return out


def max_diff(a: pl.DataFrame, b: pl.DataFrame, keys: list[str]) -> float | None:
    """None where the frames differ in rows or keys; else the largest absolute difference of a
    numeric column (0.0: identical)."""
    cols = [c for c in a.columns if c in b.columns]
    a, b = a.select(cols).sort(keys, nulls_last=True), b.select(cols).sort(keys, nulls_last=True)
    if a.height != b.height or not a.select(keys).equals(b.select(keys)):
        return None
    worst = 0.0
    for c in cols:
        if a[c].dtype.is_numeric():
            d = (a[c].cast(pl.Float64) - b[c].cast(pl.Float64)).abs().max()
            worst = max(worst, float(d or 0.0))
        elif not a[c].equals(b[c]):
            return None
    return worst


KEYS = {
    "minutes": ["host", "gpu_uuid", "minute", "workload"],
    "usage": ["hour", "host", "gpu_uuid", "workload"],
    "ledger": ["day", "placement", "workload", "host"],
}


def compare(reference: dict[str, pl.DataFrame], run) -> str:
    parts = []
    for name, keys in KEYS.items():
        d = max_diff(reference[name], getattr(run, name), keys)
        n = reference[name].height
        parts.append(
            f"{name} {n:,} rows "
            + ("DIFFER" if d is None else "identical" if d == 0 else f"equal within {d:.1e}")
        )
    return "; ".join(parts)


def estimates(per_partition_s: float, small_file_bytes: float) -> list[Result]:
    """The paper figures for SCALES, from the measured partition cost (a host-hour of 8 GPUs)."""
    out = []
    for gpus in SCALES:
        hosts = gpus // GPUS_PER_HOST
        cpu_per_hour = hosts * per_partition_s  # CPU-s of partition work per hour of samples
        keep_up = max(1, math.ceil(2 * cpu_per_hour / 3600))
        day_in_10 = max(1, math.ceil(24 * cpu_per_hour / 600))
        commits = KINDS * 60 / COMMIT_EVERY_S
        files_day = KINDS * hosts * 86_400 // COMMIT_EVERY_S
        live = KINDS * hosts * 3600 // COMMIT_EVERY_S
        gb_year = gpus * 1440 * 365 * MINUTE_ROW_BYTES / 1e9
        out += [
            Result(
                f"{gpus:,} GPUs: Ray workers (CPUs)",
                keep_up,
                "workers",
                note=(
                    f"{hosts:,} host partitions × {per_partition_s * 1000:.0f} ms per host-hour ="
                    f" {cpu_per_hour:,.0f} CPU-s per hour of samples, ×2 headroom ÷ 3,600 s;"
                    f" {day_in_10:,} to recompute a whole day in 10 minutes"
                ),
            ),
            Result(
                f"{gpus:,} GPUs: lake commits",
                commits,
                "commits/min",
                note=f"one per kind (GPU, process samples) per {COMMIT_EVERY_S} s ingest cycle",
            ),
            Result(
                f"{gpus:,} GPUs: lake data files",
                files_day,
                "files/day",
                note=(
                    f"{hosts:,} hosts × {86_400 // COMMIT_EVERY_S:,} commits × {KINDS} kinds"
                    f" written; with the hourly maintenance at most {live:,} small files live"
                    f" at once, and {hosts * KINDS:,} a day once each finished"
                    " day-and-host partition is one file"
                ),
            ),
            Result(
                f"{gpus:,} GPUs: warehouse growth",
                gb_year,
                "GB/year",
                note=(
                    f"{gpus:,} × 1,440 minute rollups a day × {MINUTE_ROW_BYTES} bytes a row"
                    " (the storage section's gpu_minute at scale; this run's small warehouse:"
                    f" {small_file_bytes:.0f} with the hourly attribution and ledger) × 365"
                ),
            ),
        ]
    return out


def bench() -> list[Result]:
    from cli import app

    root = Path(tempfile.mkdtemp(prefix="gpuledger-engine-"))
    try:
        local_cfg, lake_cfg = configs(root)
        (day, samples), gen_s = timed(lambda: write_hour(Path(local_cfg.spool_dir)))
        catalog = app.catalog_for(local_cfg)
        ingest_s, job_s, reference = local_engine(local_cfg, catalog, day)
        lake = lake_runs(lake_cfg, catalog, day)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    local_s = ingest_s + job_s
    ray_total = lake["commit_s"] + lake["ray_s"]
    parts = lake["ray"].partitions
    per_partition = lake["inproc_s"] / parts
    minute_bytes = lake["db_bytes"] / max(1, reference["minutes"].height)
    same_inproc = compare(reference, lake["inproc"])
    same_ray = compare(reference, lake["ray"])
    ray_vs_inproc = compare({k: getattr(lake["inproc"], k) for k in KEYS}, lake["ray"])
    workers = lake["workers"]
    return [
        Result(
            "local engine: ingest + ledger job",
            local_s,
            "s",
            note=(
                f"{samples:,} samples ({HOSTS} hosts × {GPUS_PER_HOST} GPUs × {HOURS} h at 1 Hz,"
                f" generated in {gen_s:.0f} s): ingest with rollups {ingest_s:.1f} s, ledger job"
                f" {job_s:.1f} s ({samples / local_s:,.0f} samples/s)"
            ),
        ),
        Result(
            "lake + Ray: commit + partition jobs",
            ray_total,
            "s",
            note=(
                f"{lake['files']} spool files committed in {lake['commit_s']:.1f} s; {parts}"
                f" partition tasks on {workers} Ray workers {lake['ray_s']:.1f} s (Ray's"
                f" start-up {lake['ray_start_s']:.1f} s not counted). Outputs against the local"
                f" engine's: {same_ray}"
            ),
        ),
        Result(
            "lake + Ray ÷ local engine",
            ray_total / local_s,
            "×",
            note=(
                "above 1: the lake and Ray side is slower here (the section's text says why)"
                if ray_total > local_s
                else "below 1: the lake and Ray side is faster here"
            ),
        ),
        Result(
            "partition jobs in this process",
            lake["inproc_s"],
            "s",
            note=(
                f"the same {parts} tasks without Ray: {per_partition * 1000:.0f} ms per host-hour"
                f" partition; Ray ÷ in-process {lake['ray_s'] / lake['inproc_s']:.2f}×."
                f" Outputs against the local engine's: {same_inproc}; against Ray's:"
                f" {ray_vs_inproc}"
            ),
        ),
        *estimates(per_partition, minute_bytes),
    ]
