"""Retention: raw samples kept `[retention] raw_days`, minute rollups kept for good, and the spool
compacted into sorted, zstd-compressed Parquet per kind, day and host.

What is kept where:
- `gpu_samples` and `process_samples` (1 Hz raw rows) stay in the warehouse for `raw_days`
  (default 14); older rows are deleted. `gpu_minute` and every results table are never trimmed.
- The spool is the permanent raw record (and what Athena, Spark or Trino read; docs/multi-host.md).
  Once ingested, a partition's small batches (the agent writes one every few seconds) are merged:
  today's once `compact_min_files` have piled up, finished days into one file per kind, day and
  host, sorted by GPU and time, with dictionary-encoded columns, delta-encoded timestamps and zstd.
  With `compact_quantize` the measured values are rounded to the resolution that matters (percent
  metrics 0.1 point, power 1 W, energy 1 J, memory 1 MiB; NVML itself reports whole percent, MiB,
  degrees and MHz, so those stay exact). Column names and types never change, so one table
  definition reads agent batches and compacted files alike.
- `spool_days` > 0 deletes spool partitions older than that many days (default 0: keep forever).

Compaction is crash-safe and never lets a row be ingested twice: the merged file is written under
a temporary name, entered in the ingest ledger, then renamed into place; only then are its inputs
deleted and their ledger rows pruned. A crash at any step leaves either the inputs (still in the
ledger, merged again next time) or both (deduplicated by key in the next merge).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from config.settings import Config
from tables import spool
from tables.files import atomic_write
from tables.records import conform, read_spool_file
from warehouse.db import transaction
from warehouse.store import DEDUP_KEYS, Warehouse

log = logging.getLogger(__name__)

RAW_TABLES = ("gpu_samples", "process_samples")
COMPACT_KINDS = ("gpu_samples", "process_samples", "health")  # never billing: scope is per batch
COMPACTED_SUFFIX = "-c.parquet"
MARK = b"gpuledger_compacted"
HORIZON_KEY = "raw_kept_from"
STALE_TMP_S = 3600  # a temporary file this old belongs to a writer that died
SORT_KEYS = {
    "gpu_samples": ("gpu_uuid", "ts"),
    "process_samples": ("gpu_uuid", "pid", "ts"),
    "health": ("gpu_uuid", "ts", "kind"),
}
# Quanta of the measured values in compacted files (documented above and in docs/PERFORMANCE.md).
QUANTA = {
    "gpu_samples": {
        "util_pct": 0.1,
        "sm_active_pct": 0.1,
        "sm_occupancy_pct": 0.1,
        "tensor_active_pct": 0.1,
        "dram_active_pct": 0.1,
        "mem_used_mib": 1.0,
        "mem_total_mib": 1.0,
        "power_w": 1.0,
        "energy_mj": 1000.0,
        "sm_clock_mhz": 1.0,
        "temperature_c": 1.0,
    },
    "process_samples": {"used_mib": 1.0, "sm_pct": 0.1},
    "health": {},
}
# Columns whose values rarely repeat: no dictionary; counters and doubles are byte-split.
PLAIN_COLUMNS = {"ts": "DELTA_BINARY_PACKED", "energy_mj": "BYTE_STREAM_SPLIT"}


@dataclass
class RetentionResult:
    deleted_rows: dict[str, int] = field(default_factory=dict)
    partitions: int = 0  # partitions compacted
    files_in: int = 0
    files_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    ledger_pruned: int = 0
    spool_files_removed: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        deleted = ", ".join(f"{n:,} {t}" for t, n in sorted(self.deleted_rows.items()) if n)
        return (
            f"retention: deleted {deleted or 'no raw rows'}; compacted {self.partitions}"
            f" partition(s), {self.files_in} file(s) into {self.files_out}"
            f" ({self.bytes_in / 1e6:,.1f} MB -> {self.bytes_out / 1e6:,.1f} MB);"
            f" {self.seconds:.1f}s"
        )


def run_retention(
    wh: Warehouse,
    *,
    raw_days: int,
    compact_min_files: int,
    quantize: bool = True,
    spool_days: int = 0,
    now: datetime | None = None,
) -> RetentionResult:
    """The daemon's retention job: trim raw rows, compact the spool, drop expired spool days."""
    t0 = time.perf_counter()
    now = now or datetime.now(UTC)
    result = RetentionResult()
    result.deleted_rows = delete_old_raw(wh, raw_days, now=now)
    compact_spool(wh, min_files=compact_min_files, quantize=quantize, now=now, result=result)
    if spool_days > 0:
        result.spool_files_removed = drop_old_spool(wh, spool_days, now=now)
    result.seconds = time.perf_counter() - t0
    log.info(result.summary())
    return result


# Raw rows -------------------------------------------------------------------------------------
def delete_old_raw(wh: Warehouse, keep_days: int, *, now: datetime | None = None) -> dict[str, int]:
    """Delete raw sample rows older than `keep_days`; the minute rollups stay. Records the
    horizon, so a late batch older than it never wipes rollups whose samples are gone."""
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(days=keep_days)).replace(second=0, microsecond=0)
    deleted: dict[str, int] = {}
    with transaction(wh.db) as con:
        for table in RAW_TABLES:
            n = con.execute(
                f"SELECT count(*) FROM {table} WHERE ts < $cutoff", {"cutoff": cutoff}
            ).fetchall()[0][0]
            if n:
                con.execute(
                    f"DELETE FROM {table} WHERE ts < $cutoff", {"cutoff": cutoff}
                ).fetchall()
            deleted[table] = int(n)
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES ($k, $v)",
            {"k": HORIZON_KEY, "v": cutoff.isoformat()},
        ).fetchall()
    return deleted


# Spool compaction -----------------------------------------------------------------------------
def is_compacted(path: Path) -> bool:
    return path.name.endswith(COMPACTED_SUFFIX)


def compact_spool(
    wh: Warehouse,
    *,
    min_files: int,
    quantize: bool = True,
    now: datetime | None = None,
    result: RetentionResult | None = None,
) -> RetentionResult:
    """Merge the ingested batches of each (kind, date, host) partition (see the module doc)."""
    now = now or datetime.now(UTC)
    result = result or RetentionResult()
    today = now.strftime("%Y-%m-%d")
    for kind in COMPACT_KINDS:
        taken = _ledger_paths(wh, kind)
        if not spool.kind_dir(wh.spool_dir, kind).is_dir():
            continue
        missing: list[str] = []
        for partition in spool.partitions(wh.spool_dir, kind):
            _remove_stale_tmp(partition)
            files = sorted(p for p in partition.glob(spool.BATCH_GLOB))
            ingested = [p for p in files if wh._key(p) in taken]
            finished = spool.partition_date(partition) < today
            small = [p for p in ingested if not is_compacted(p)]
            if finished and (len(ingested) > 1 or small):
                inputs = ingested
            elif len(small) >= min_files:
                inputs = small
            else:
                continue
            _compact_partition(wh, kind, partition, inputs, quantize, result)
        present = {wh._key(p) for p in spool.list_batches(wh.spool_dir, kind)}
        missing = sorted(k for k in _ledger_paths(wh, kind) if k not in present)
        result.ledger_pruned += _prune_ledger(wh, missing)
    return result


def _ledger_paths(wh: Warehouse, kind: str) -> set[str]:
    return {
        row[0]
        for row in wh.db.execute(
            "SELECT path FROM ingested_files WHERE kind = ?", [kind]
        ).fetchall()
    }


def _remove_stale_tmp(partition: Path) -> None:
    cutoff = time.time() - STALE_TMP_S
    for tmp in partition.glob(f"{spool.TMP_PREFIX}*"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
        except FileNotFoundError:
            continue


def merged_rows(kind: str, files: list[Path], *, quantize: bool) -> pl.DataFrame:
    """The rows of `files` (oldest first) as one frame: a key repeated across files keeps its
    last copy, sorted for compression, values rounded to QUANTA when `quantize`."""
    frames = [conform(read_spool_file(p, kind), kind) for p in files]
    frame = pl.concat(frames, how="vertical")
    frame = frame.unique(subset=list(DEDUP_KEYS[kind]), keep="last", maintain_order=True)
    if quantize:
        frame = frame.with_columns(
            ((pl.col(c) / q).round(0) * q).alias(c) if q >= 1 else pl.col(c).round(1).alias(c)
            for c, q in QUANTA[kind].items()
        )
    return frame.sort(list(SORT_KEYS[kind]), nulls_last=True)


def write_compacted(frame: pl.DataFrame, path: Path, *, sources: int) -> None:
    """Write `frame` as a compacted spool file (the caller publishes it: tables/files.py)."""
    table = frame.to_arrow()
    table = table.replace_schema_metadata(
        {MARK: b"1", b"gpuledger_merged_files": str(sources).encode()}
    )
    encodings = {c: e for c, e in PLAIN_COLUMNS.items() if c in frame.columns}
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=9,
        # pyarrow takes a bool or the columns to dictionary-encode; pyarrow-stubs says bool only.
        use_dictionary=[c for c in frame.columns if c not in encodings],  # type: ignore[arg-type]
        column_encoding=encodings or None,
        row_group_size=1 << 20,
        dictionary_pagesize_limit=1 << 20,
    )


def _compact_partition(
    wh: Warehouse,
    kind: str,
    partition: Path,
    inputs: list[Path],
    quantize: bool,
    result: RetentionResult,
) -> Path:
    frame = merged_rows(kind, inputs, quantize=quantize)
    first = frame["ts"].dt.min() if frame.height else datetime.now(UTC)
    name = f"part-{first:%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}{COMPACTED_SUFFIX}"
    final = partition / name

    def write(tmp: Path) -> None:
        write_compacted(frame, tmp, sources=len(inputs))
        # Enter the merged file in the ledger before it appears: it is never ingested again.
        wh.db.execute(
            "INSERT INTO ingested_files VALUES (?, ?, ?, ?)",
            [wh._key(final), kind, frame.height, datetime.now(UTC)],
        ).fetchall()

    atomic_write(final, write, tmp=spool.tmp_path(final))
    last = frame["ts"].dt.max() if frame.height else None
    if isinstance(last, datetime):  # the live view reads files by mtime: a merged file is not news
        os.utime(final, (time.time(), last.timestamp()))
    size_in = sum(spool_size(p) for p in inputs)
    for path in inputs:
        path.unlink(missing_ok=True)
    _prune_ledger(wh, [wh._key(p) for p in inputs])
    result.partitions += 1
    result.files_in += len(inputs)
    result.files_out += 1
    result.bytes_in += size_in
    result.bytes_out += spool_size(final)
    return final


def _prune_ledger(wh: Warehouse, keys: list[str]) -> int:
    """Forget ledger rows of files that no longer exist (merged into a compacted file)."""
    if not keys:
        return 0
    con = wh.db
    con.register("gone", pl.DataFrame({"path": keys}, schema={"path": pl.String}))
    try:
        con.execute("DELETE FROM ingested_files WHERE path IN (SELECT path FROM gone)").fetchall()
    finally:
        con.unregister("gone")
    return len(keys)


def spool_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def drop_old_spool(wh: Warehouse, keep_days: int, *, now: datetime | None = None) -> int:
    """Delete spool date partitions (every kind but billing) older than `keep_days`; returns
    the number of files removed. Only ingested files go: a partition holding a file the
    warehouse has not taken is kept whole."""
    now = now or datetime.now(UTC)
    cutoff = (now - timedelta(days=keep_days)).strftime("%Y-%m-%d")
    removed = 0
    for kind in COMPACT_KINDS:
        taken = _ledger_paths(wh, kind)
        for date, date_dir in spool.date_dirs(wh.spool_dir, kind):
            if date >= cutoff:
                continue
            files = [p for h in spool.host_dirs(date_dir) for p in h.glob(spool.BATCH_GLOB)]
            if any(wh._key(p) not in taken for p in files):
                log.warning("keeping %s: it holds files not ingested yet", date_dir)
                continue
            shutil.rmtree(date_dir)
            removed += len(files)
            _prune_ledger(wh, [wh._key(p) for p in files])
    return removed


def retention_job(cfg: Config, wh: Warehouse) -> Callable[[], object]:
    """The daemon's retention tick: `run_retention` with the [retention] settings (cli/jobs.py
    runs it every `[retention] interval_s`)."""
    r = cfg.retention
    return lambda: run_retention(
        wh,
        raw_days=r.raw_days,
        compact_min_files=r.compact_min_files,
        quantize=r.compact_quantize,
        spool_days=r.spool_days,
    )
