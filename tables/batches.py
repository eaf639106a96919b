"""Spool batches of any size, written chunk by chunk, and the temporary files of a writer that was
killed (the layout itself is tables/spool.py).

`BatchWriter` takes rows of one kind a chunk at a time and writes them into spool batches of at
most `rows_per_file` rows, each under its temporary name (never listed by the ingest); `publish()`
renames every batch into place once the whole input validated, `discard()` deletes them, so a
refused import leaves the spool as it was. A file of any size becomes batches of bounded size,
which the ingest then reads in bounded memory too.

`remove_stale_temporaries` deletes what a killed writer left under temporary names: batches of
an import or an agent killed mid-write, and the snapshot a killed publish was building.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tables import files, spool
from tables.records import conform, empty

log = logging.getLogger(__name__)
# Rows per batch file: what the ingest takes in one transaction at most (warehouse/store.py).
BATCH_ROWS = 100_000
# A temporary file older than this is a dead writer's: a batch is written in seconds.
STALE_AFTER_S = 3600.0


class BatchWriter:
    """One input's rows of `kind`, written into one or more spool batches (module docstring).
    Used as a context manager it publishes on success and discards on any exception."""

    def __init__(
        self,
        spool_dir: Path,
        kind: str,
        host: str,
        *,
        metadata: dict[str, str] | None = None,
        rows_per_file: int = BATCH_ROWS,
    ) -> None:
        self.spool_dir = Path(spool_dir)
        self.kind = kind
        self.host = host
        self.metadata = dict(metadata or {})
        self.rows_per_file = rows_per_file
        self.rows = 0
        self.done: list[Path] = []  # finished temporary files, in order
        self.published: list[Path] = []
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self._in_file = 0
        schema = empty(kind).to_arrow().schema
        self._schema = schema.with_metadata(self.metadata) if self.metadata else schema

    def add(self, frame: pl.DataFrame) -> None:
        """Append rows (in the kind's shape, `conform`ed here)."""
        frame = conform(frame, self.kind)
        while frame.height:
            if self._writer is None:
                self._open()
            assert self._writer is not None
            take = min(frame.height, self.rows_per_file - self._in_file)
            self._writer.write_table(frame.head(take).to_arrow().cast(self._schema))
            self._in_file += take
            self.rows += take
            frame = frame.slice(take)
            if self._in_file >= self.rows_per_file:
                self._close_file()

    def _open(self) -> None:
        final = spool.new_batch_path(self.spool_dir, self.kind, self.host, datetime.now(UTC))
        final.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = spool.tmp_path(final)
        self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="zstd")
        self._in_file = 0

    def _close_file(self) -> None:
        if self._writer is not None and self._tmp is not None:
            self._writer.close()
            self.done.append(self._tmp)
        self._writer, self._tmp, self._in_file = None, None, 0

    def publish(self) -> list[Path]:
        """Move every batch into the spool, in the order written; returns their paths."""
        self._close_file()
        for tmp in self.done:
            final = tmp.with_name(tmp.name.removeprefix(spool.TMP_PREFIX))
            self.published.append(files.publish(tmp, final))  # fsync, rename, fsync the folder
        self.done = []
        return self.published

    def discard(self) -> None:
        """Delete every batch not yet published."""
        if self._writer is not None:
            with contextlib.suppress(Exception):  # a half-written file is deleted anyway
                self._writer.close()
        pending = [*self.done, *([self._tmp] if self._tmp is not None else [])]
        self._writer, self._tmp, self.done = None, None, []
        for tmp in pending:
            tmp.unlink(missing_ok=True)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()


_PID = re.compile(r"\.tmp-(\d+)$")


def _writer_alive(path: Path) -> bool:
    """Whether the process named by a `.<name>.tmp-<pid>` file still runs (tables/files.py)."""
    match = _PID.search(path.name)
    if not match:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale_temporaries(
    spool_dir: Path,
    published: Sequence[Path] = (),
    *,
    now: float | None = None,
) -> list[Path]:
    """Delete the temporary files a killed writer left: spool batches (`.tmp-part-…`) older than
    STALE_AFTER_S, and beside each of `published` (the snapshot) a `.<name>.tmp-<pid>` whose
    process is gone. Returns what was deleted."""
    now = time.time() if now is None else now
    gone: list[Path] = []
    root = Path(spool_dir)
    candidates = (
        list(root.glob(f"kind=*/date=*/host=*/{spool.TMP_PREFIX}*")) if root.is_dir() else []
    )
    for tmp in candidates:
        with contextlib.suppress(FileNotFoundError):
            if now - tmp.stat().st_mtime > STALE_AFTER_S:
                tmp.unlink()
                gone.append(tmp)
    for path in published:
        path = Path(path)
        for tmp in path.parent.glob(f".{path.name}.tmp-*"):
            base = Path(str(tmp).removesuffix(".wal"))
            if not _writer_alive(base):
                tmp.unlink(missing_ok=True)
                gone.append(tmp)
    for tmp in gone:
        log.info("removed %s, left by a writer that was stopped mid-write", tmp)
    return gone
