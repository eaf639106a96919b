"""Spool batches the ingest cannot take: set aside, never lost, never in the way.

A batch that fails at ingest (an unreadable file, an implausible time, any exception while its
rows are stored, a Polars panic included) is moved to `<spool>/_rejected/` under its spool path,
with a `<name>.reason.txt` beside it; the reason is logged and recorded in `rejected_batches`,
which Data health shows. The rest of the spool goes on: in a chunk of files that fails, the
failing files are found by halving the chunk (`warehouse/store.py`), and the others are stored.

A failure of the warehouse or the machine (a full disk, a read-only folder, out of memory, a
damaged database) is no batch's fault: it is raised, and every batch stays queued.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from tables.stored import REJECTED_BATCHES
from tables.timestamps import frame_problem

log = logging.getLogger(__name__)
REJECTED_DIR = "_rejected"
REASON_SUFFIX = ".reason.txt"
MAX_REASON_CHARS = 2_000
# Failures of the warehouse or the machine, and the ones that stop the process: raised, never a
# reason to set data aside.
NOT_THE_BATCH: tuple[type[BaseException], ...] = (
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
    OSError,
    MemoryError,
    duckdb.IOException,
    duckdb.OutOfMemoryException,
    duckdb.FatalException,
    duckdb.InternalException,
    duckdb.InterruptException,
    duckdb.TransactionException,
    duckdb.PermissionException,
)


class BatchRefused(ValueError):
    """A batch the ingest refuses for what it holds (its message is the reason)."""


def batch_fault(exc: BaseException) -> bool:
    """Whether `exc`, raised while a batch was ingested, is the batch's fault: bad data, or a
    library failing on it (a Rust panic is a BaseException); not the warehouse's or machine's."""
    return not isinstance(exc, NOT_THE_BATCH)


def describe(exc: BaseException) -> str:
    """`Type: message` (a refusal: its message), cut to MAX_REASON_CHARS."""
    text = str(exc) if isinstance(exc, BatchRefused) else f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def move_aside(spool_dir: Path, key: str, path: Path, reason: str) -> Path:
    """Move the batch at `path` (spool key `key`) to `<spool>/_rejected/<key>`, its reason in a
    `.reason.txt` beside it; returns the new path."""
    target = Path(spool_dir) / REJECTED_DIR / key
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), target)
    target.with_name(target.name + REASON_SUFFIX).write_text(reason + "\n", encoding="utf-8")
    return target


def record(
    con: duckdb.DuckDBPyConnection, key: str, kind: str, reason: str, now: datetime | None = None
) -> None:
    """Record a rejected batch (a batch rejected again replaces its row)."""
    con.execute(
        f"INSERT OR REPLACE INTO {REJECTED_BATCHES.name} VALUES (?, ?, ?, ?)",
        [key, kind, reason, now or datetime.now(UTC)],
    )


def forget(con: duckdb.DuckDBPyConnection) -> None:
    """Inside an ingest's transaction: the files it takes (registered as `new_ledger`) are no
    longer set aside (one moved back into the spool after its cause was fixed)."""
    con.execute(
        f"DELETE FROM {REJECTED_BATCHES.name} WHERE path IN (SELECT path FROM new_ledger)"
    ).fetchall()


def time_faults(
    kind: str, frame: pl.DataFrame, counts: list[int], now: datetime | None = None
) -> dict[int, str]:
    """{file index: reason} of the files of a chunk (`frame`: their rows in order, `counts`
    rows each) holding a time tables/timestamps.py refuses, each named by its first such row
    (file rows count from 1)."""
    ends = np.cumsum(counts)
    faults: dict[int, str] = {}
    start = 0
    while start < frame.height:
        found = frame_problem(kind, frame.slice(start), now)
        if found is None:
            break
        row = start + found[0]
        i = int(np.searchsorted(ends, row, side="right"))
        first = int(ends[i - 1]) if i else 0
        faults[i] = f"row {row - first + 1}, column {found[1]}: {found[2]}"
        start = int(ends[i])
    return faults


def without_files(frame: pl.DataFrame, counts: list[int], drop: set[int]) -> pl.DataFrame:
    """The chunk's rows less those of the files at the indexes `drop`."""
    keep = np.repeat(np.array([i not in drop for i in range(len(counts))]), counts)
    return frame.filter(pl.Series(keep, dtype=pl.Boolean))
