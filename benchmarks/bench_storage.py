"""Storage: bytes per GPU sample in each place a sample lives, and the retention jobs' run times.

"At rest" is where a sample spends its life once its day is over: the compacted spool file of
its kind, day and host (warehouse/retention.py), which is also what Athena, Spark or Trino read
(docs/multi-host.md). It is sorted by GPU and time, dictionary-encoded with delta-encoded
timestamps and zstd, and its measured values are rounded to a resolution that matters (percent
metrics 0.1 point, power 1 W, energy 1 J; NVML's whole percent, MiB, °C and MHz stay exact).
Two at-rest figures: the whole row as the NVML agent writes it (21 columns, including the
energy counter and on Hopper four GPM metrics), and the four gauges Prometheus would store
(utilization, SM active, memory used, power) with their time, host, GPU and workload. Before
that a sample lives 14 days (`[retention] raw_days`) in the warehouse's `gpu_samples` table,
DuckDB's own compression; its minute rollup (`gpu_minute`) stays for good.

Compaction is measured on the last two fleet days copied into a fresh warehouse (every day
compacts alike; all 30 would add minutes to `make bench`); the retention delete on the whole
fleet warehouse.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.fleet import HOST_KINDS, built_fleet, host_batches
from benchmarks.run import Result
from tables import spool
from warehouse.retention import compact_spool, delete_old_raw
from warehouse.store import Warehouse

GOAL_BYTES = 2.0
GOAL_JOB_S = 10.0
IDENTITY = ("ts", "host", "gpu_uuid", "gpu_model", "workload")
GAUGES = ("util_pct", "sm_active_pct", "mem_used_mib", "power_w")


def _table_bytes(wh: Warehouse, table: str) -> int:
    """Bytes of the blocks a table's columns occupy in the DuckDB file."""
    rows = wh.db.execute(
        f"SELECT count(DISTINCT block_id) FROM pragma_storage_info('{table}') WHERE block_id >= 0"
    ).fetchall()
    block = wh.db.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
    return int(rows[0][0]) * int(block)


def _column_bytes(files: list[Path]) -> tuple[dict[str, int], int, int]:
    """Compressed bytes per column over Parquet files, their total size and their rows."""
    per: dict[str, int] = defaultdict(int)
    total = rows = 0
    for path in files:
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        total += path.stat().st_size
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                col = group.column(c)
                per[col.path_in_schema] += col.total_compressed_size
    return dict(per), total, rows


def _agent_spool_bytes(spec) -> float:
    """Bytes per sample of one hour of one Hopper host as the agent writes it (5 s batches)."""
    _, frame = next(host_batches(spec, 0))
    hour = frame.sort("ts", "gpu_uuid").head(8 * 3600)
    with tempfile.TemporaryDirectory(prefix="gpuledger-agentspool-") as tmp:
        size = 0
        for i in range(0, hour.height, 40):
            size += (
                spool.write_batch(Path(tmp), "gpu_samples", hour.slice(i, 40), "h").stat().st_size
            )
    return size / hour.height


def bench() -> list[Result]:
    fleet = built_fleet()
    spec = fleet.spec
    cfg = fleet.cfg
    results: list[Result] = []

    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        samples = wh.db.execute("SELECT count(*) FROM gpu_samples").fetchall()[0][0]
        minutes = wh.db.execute("SELECT count(*) FROM gpu_minute").fetchall()[0][0]
        raw_bytes = _table_bytes(wh, "gpu_samples")
        minute_bytes = _table_bytes(wh, "gpu_minute")
    results += [
        Result(
            "warehouse working copy: gpu_samples (DuckDB)",
            raw_bytes / samples,
            "bytes/sample",
            note=f"{raw_bytes / 1e9:.2f} GB for {samples:,} rows; kept [retention] raw_days"
            " (14) then deleted",
        ),
        Result(
            "warehouse: gpu_minute rollups (kept for good)",
            minute_bytes / minutes,
            "bytes/GPU-minute",
            note=f"{minute_bytes / max(1, 60 * minutes):.2f} bytes per 1 Hz sample",
        ),
        Result(
            "spool as the agent writes it (5 s batches of 40 rows, zstd)",
            _agent_spool_bytes(spec),
            "bytes/sample",
            note="one hour of an 8-GPU Hopper host; before compaction",
        ),
        Result(
            "spool as the fleet generator writes it (4 h batches of 115,200 rows)",
            fleet.written.bytes / fleet.written.rows,
            "bytes/sample",
            note="Polars zstd, unsorted columns, full precision",
        ),
    ]

    # At rest: the last two days compacted in a warehouse of their own.
    days = [(spec.end - timedelta(days=d)).strftime("%Y-%m-%d") for d in (2, 1)]
    with tempfile.TemporaryDirectory(prefix="gpuledger-atrest-") as tmp:
        spool_dir = Path(tmp) / "spool"
        for src in spool.list_batches(cfg.spool_dir, "gpu_samples"):
            if any(f"date={d}" in str(src) for d in days):
                dest = spool_dir / src.relative_to(cfg.spool_dir)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
        with Warehouse(Path(tmp) / "w.duckdb", spool_dir) as wh:
            wh.ingest_spool()
            timings = []
            for i in range(len(days)):  # one fleet day at a time, as the daily job meets them
                t0 = time.perf_counter()
                # "Now" is the day after: that day is finished, the next one still "today".
                now = spec.end - timedelta(days=len(days) - 1 - i)
                out = compact_spool(wh, min_files=10**6, now=now)
                timings.append((time.perf_counter() - t0, out))
        files = spool.list_batches(spool_dir, "gpu_samples")
        per, total, rows = _column_bytes(files)
        by_kind: dict[str, list[Path]] = defaultdict(list)
        for path in files:
            host = path.parent.name.removeprefix("host=gpu-")
            by_kind[host.split("-")[0]].append(path)
        kind_rates = {
            k: _column_bytes(v)[1] / _column_bytes(v)[2] for k, v in sorted(by_kind.items())
        }
    whole = total / rows
    four = sum(per.get(c, 0) for c in (*IDENTITY, *GAUGES)) / rows
    hopper = sum(1 for k in HOST_KINDS[: spec.hosts] if k.gpm)
    results += [
        Result(
            "at rest: compacted day files, the whole NVML row (21 columns)",
            whole,
            "bytes/sample",
            goal=f"<= {GOAL_BYTES:g} bytes/sample",
            met=whole <= GOAL_BYTES,
            note=f"{rows:,} samples of {len(days)} days, {len(files)} files; "
            + ", ".join(f"{k} hosts {v:.2f}" for k, v in kind_rates.items())
            + f" ({hopper} of {spec.hosts} hosts are Hopper with GPM metrics)"
            + (
                f"; {whole / GOAL_BYTES:.1f}× the goal: the energy counter alone takes"
                f" {per.get('energy_mj', 0) / rows:.1f} (a double that never repeats), and each"
                " noisy gauge costs what its noise holds at the chosen resolution (see the"
                " columns below)"
                if whole > GOAL_BYTES
                else ""
            ),
        ),
        Result(
            "at rest: the four gauges (util, SM active, memory used, power) + time, host, GPU,"
            " workload",
            four,
            "bytes/sample",
            goal=f"<= {GOAL_BYTES:g} bytes/sample",
            met=four <= GOAL_BYTES,
            note="the same files, those columns' compressed bytes (Prometheus: about 8.7)"
            + (
                f"; {100 * (four / GOAL_BYTES - 1):.0f} % over: power at 1 W and SM active at 0.1"
                " point keep the sensors' second-to-second noise, a few bits each"
                if four > GOAL_BYTES
                else ""
            ),
        ),
    ]
    for col, size in sorted(per.items(), key=lambda kv: -kv[1]):
        if size / rows >= 0.005:
            results.append(Result(f"at rest, column {col}", size / rows, "bytes/sample"))
    compact_s = statistics.median(t for t, _ in timings)
    out = timings[-1][1]
    results.append(
        Result(
            f"job: compact one fleet day ({spec.hosts} host partitions)",
            compact_s,
            "s",
            goal=f"<= {GOAL_JOB_S:g} s",
            met=compact_s <= GOAL_JOB_S,
            note=f"median of {len(timings)} days; {out.files_in} files, "
            f"{out.bytes_in / 1e6:.0f} MB -> {out.bytes_out / 1e6:.1f} MB",
        )
    )

    # Retention on the whole fleet warehouse: the first run, then a day's worth.
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        first_days = max(1, spec.days - 14)
        t0 = time.perf_counter()
        deleted = delete_old_raw(wh, 14, now=spec.end)
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        daily = delete_old_raw(wh, 13, now=spec.end)
        daily_s = time.perf_counter() - t0
    results += [
        Result(
            "job: retention, delete one day of raw rows",
            daily_s,
            "s",
            goal=f"<= {GOAL_JOB_S:g} s",
            met=daily_s <= GOAL_JOB_S,
            note=f"{daily['gpu_samples']:,} rows from the fleet warehouse",
        ),
        Result(
            f"job: retention, first run on {spec.days} days (deletes {first_days})",
            first_s,
            "s",
            note=f"{deleted['gpu_samples']:,} rows; once, when retention is first enabled",
        ),
    ]
    return results


if __name__ == "__main__":
    for r in bench():
        print(f"{r.name}: {r.value:,.3f} {r.unit} {r.goal} {r.note}")
