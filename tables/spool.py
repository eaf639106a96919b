"""The append-only spool: collectors, imports and billing pulls write Parquet batches here.

Layout (hive-partitioned, readable by DuckDB, Athena, Spark or Trino):

    <spool>/kind=<kind>/date=<YYYY-MM-DD>/host=<host>/part-<utc stamp>-<random>.parquet

`date` is the UTC date the batch was written. Every file is written under a temporary name in the
same directory and renamed into place, so a reader never sees half a file and a collector never
waits for the database (DESIGN.md §1, rule 1).
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from tables.records import SCHEMAS, conform

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
TMP_PREFIX = ".tmp-"


def safe_part(value: str) -> str:
    """A partition value safe as a single path component (no separators, no `..`)."""
    cleaned = _SAFE.sub("_", value).strip("._") or "_"
    return cleaned[:120]


def write_batch(
    spool_dir: Path,
    kind: str,
    frame: pl.DataFrame,
    host: str,
    *,
    now: datetime | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write one batch atomically and return its final path.

    `metadata` is stored in the Parquet footer (for example the source file a batch came from).
    """
    if kind not in SCHEMAS:
        raise ValueError(f"unknown spool kind {kind!r}")
    frame = conform(frame, kind)
    now = now or datetime.now(UTC)
    directory = (
        Path(spool_dir)
        / f"kind={kind}"
        / f"date={now.strftime('%Y-%m-%d')}"
        / f"host={safe_part(host)}"
    )
    directory.mkdir(parents=True, exist_ok=True)
    name = f"part-{now.strftime('%Y%m%dT%H%M%S%f')}-{secrets.token_hex(4)}.parquet"
    final = directory / name
    tmp = directory / f"{TMP_PREFIX}{name}"
    try:
        try:
            frame.write_parquet(tmp, compression="zstd", metadata=metadata or None)
        except pl.exceptions.PolarsError as exc:  # Polars reports a full disk as ComputeError
            raise OSError(f"cannot write {tmp}: {exc}") from exc
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def list_batches(spool_dir: Path, kind: str, *, since_date: str | None = None) -> list[Path]:
    """Finished batch files of `kind`, oldest first; `since_date` (YYYY-MM-DD) skips older dates."""
    root = Path(spool_dir) / f"kind={kind}"
    if not root.is_dir():
        return []
    files: list[Path] = []
    for date_dir in sorted(root.iterdir()):
        if not date_dir.name.startswith("date="):
            continue
        if since_date and date_dir.name[5:] < since_date:
            continue
        for host_dir in date_dir.iterdir():
            if host_dir.is_dir():
                files.extend(
                    p
                    for p in host_dir.iterdir()
                    if p.suffix == ".parquet" and not p.name.startswith(TMP_PREFIX)
                )
    files.sort(key=lambda p: (p.name, str(p)))
    return files


def read_batch_metadata(path: Path) -> dict[str, str]:
    """The key/value metadata stored with a batch."""
    return pl.read_parquet_metadata(path)
