"""Ingest with the lake on (`[lake] enabled`): raw rows go to the Iceberg tables, the warehouse
keeps what pages read (DESIGN.md §1 "Past one machine"; docs/multi-host.md).

A chunk of GPU sample batches (read, checked and set aside as `Warehouse.ingest_spool` does:
warehouse/quarantine.py) is

1. de-duplicated against itself and the rows already stored around it: the warehouse's raw
   *tail* (the last `TAIL`, 15 minutes, of each GPU, kept for the Live page's latest values
   and for the next chunk's rollup window) and, where a GPU's window reaches before its tail
   (a late batch, a restart), the lake's partitions;
2. committed to the lake exactly once (`Lake.commit_frame`: the spool keys in the snapshot),
   on a worker thread while Polars computes the minute rollups here (both release the GIL);
3. stored in DuckDB in one transaction: the rollups, the tail (older rows trimmed), the days to
   re-attribute and the ingest ledger rows.

A crash between 2 and 3 leaves the files pending in the warehouse and committed in the lake: the
next run finds their keys in the lake (no second commit) and computes the same rollups.
Process samples, health records and bill lines are committed to the lake and stored in the
warehouse as before (the attribution job and the pages read them there; they are a small part
of the bytes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import polars as pl

from tables.columns import UTC_TS
from warehouse import quarantine
from warehouse.db import transaction
from warehouse.lake import LakeUnavailable
from warehouse.store import ROLLUP_COLUMNS, ROLLUP_LOOKBACK, _Batch, minute_rollups, rollup_spans

if TYPE_CHECKING:
    from warehouse.store import Warehouse

# Raw rows of each GPU the warehouse keeps behind its newest sample: the next chunk's rollup
# window (ROLLUP_LOOKBACK) with five minutes to spare.
TAIL = ROLLUP_LOOKBACK + timedelta(minutes=5)
KEY = "_key"
T = TypeVar("T")


def due(wh: Warehouse) -> bool:
    """Whether the lake's next ingest is due: `wh.lake_interval_s` ([lake] commit_interval_s)
    after the last one, so a daemon ingesting every few seconds commits once a minute (each
    commit is a table snapshot, and Iceberg's metadata lists every live one); the first call
    always is."""
    now = time.monotonic()
    if now - wh.lake_taken_at < wh.lake_interval_s:
        return False
    wh.lake_taken_at = now
    return True


def row_keys(keys: Sequence[str], counts: Sequence[int]) -> pl.Series:
    """The spool key of every row of a chunk whose files hold `counts` rows each, in order."""
    index = np.repeat(np.arange(len(keys), dtype=np.uint32), np.asarray(counts, dtype=np.int64))
    return pl.Series(KEY, list(keys), pl.String).gather(pl.Series(index))


def ingest_gpu_rows(wh: Warehouse, files: list[Path], new: pl.DataFrame, counts: list[int]) -> int:
    """Store one chunk of GPU samples the lake's way (see the module's docstring); returns the
    rows new to the lake."""
    assert wh.lake is not None
    keys = [wh._key(p) for p in files]
    batch = _Batch.build("gpu_samples", new.with_columns(row_keys(keys, counts)))
    existing = _with_lake_rows(wh, batch, wh._existing_window("gpu_samples", batch))
    batch.drop_duplicates(existing)
    horizon = wh.raw_horizon()
    minutes = None
    with ThreadPoolExecutor(1, thread_name_prefix="gpuledger-lake") as pool:
        committing = pool.submit(wh.lake.commit_frame, "gpu_samples", batch.rows, keys)
        if batch.spans.height:
            minutes = minute_rollups(batch.rows, existing, batch.spans, horizon)
        _lake_call(committing.result)
    _store(wh, files, counts, batch, minutes)
    return batch.rows.height


def _store(
    wh: Warehouse,
    files: list[Path],
    counts: list[int],
    batch: _Batch,
    minutes: tuple[pl.DataFrame, pl.DataFrame] | None,
) -> None:
    """The warehouse's half of a chunk, in one transaction."""
    con = wh.db
    ledger = wh._ledger_rows("gpu_samples", files, counts)
    tail = tail_rows(batch.rows.drop(KEY))
    try:
        with transaction(con):
            con.register("new_rows", tail)
            con.register("new_ledger", ledger)
            con.execute("INSERT INTO gpu_samples SELECT * FROM new_rows").fetchall()
            trim_tail(wh)
            if minutes is not None:
                wh._minutes = minutes
                wh._refresh_minutes()
            wh._mark_touched_days("gpu_samples", batch)
            con.execute("INSERT INTO ingested_files SELECT * FROM new_ledger").fetchall()
            quarantine.forget(con)
    finally:
        wh._minutes = None
        con.unregister("new_rows")
        con.unregister("new_ledger")


def tail_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows within `TAIL` of their GPU's newest one."""
    newest = pl.col("ts").max().over("host", "gpu_uuid")
    return rows.filter(pl.col("ts") >= newest - pl.duration(seconds=int(TAIL.total_seconds())))


def trim_tail(wh: Warehouse) -> None:
    """Delete the warehouse's raw rows older than `TAIL` behind their GPU's newest one."""
    wh.db.execute(
        f"""
        DELETE FROM gpu_samples g USING (
            SELECT host, gpu_uuid, max(ts) AS newest FROM gpu_samples GROUP BY ALL) t
        WHERE g.host = t.host AND g.gpu_uuid = t.gpu_uuid
          AND g.ts < t.newest - INTERVAL {int(TAIL.total_seconds())} SECOND"""
    ).fetchall()


def _with_lake_rows(wh: Warehouse, batch: _Batch, existing: pl.DataFrame) -> pl.DataFrame:
    """`existing` (from the warehouse's tail) with the lake's rows where a GPU's rollup window
    starts before its tail: the hosts' partitions over the window, read once."""
    if batch.spans.height == 0:
        return existing
    lookback = pl.duration(seconds=int(ROLLUP_LOOKBACK.total_seconds()))
    need = rollup_spans(batch.spans, wh.raw_horizon()).with_columns(hi=pl.col("hi") + lookback)
    covered = wh.db.sql(
        f"SELECT host, gpu_uuid, max(ts) - INTERVAL {int(TAIL.total_seconds())} SECOND AS since"
        " FROM gpu_samples GROUP BY ALL"
    ).pl()
    short = need.join(covered, on=["host", "gpu_uuid"], how="left").filter(
        pl.col("since").is_null() | (pl.col("lo") < pl.col("since"))
    )
    if short.height == 0:
        return existing
    lo, hi = short["lo"].min(), short["hi"].max()
    assert wh.lake is not None
    hosts = set(short["host"].to_list())
    parts = [
        (day, host)
        for day, host in wh.lake.partitions("gpu_samples", lo.date(), hi.date() + timedelta(days=1))  # type: ignore[union-attr]
        if host in hosts
    ]
    if not parts:
        return existing
    cols = list(ROLLUP_COLUMNS)
    rows = pl.concat([wh.lake.scan("gpu_samples", d, h, cols) for d, h in parts]).filter(
        pl.col("ts").is_between(pl.lit(lo, UTC_TS), pl.lit(hi, UTC_TS), closed="left")
    )
    both = pl.concat([existing.select(cols), rows.select(cols)], how="vertical_relaxed")
    return both.unique(["host", "gpu_uuid", "ts"], keep="first", maintain_order=True)


def commit_rows(
    wh: Warehouse, kind: str, files: list[Path], rows: pl.DataFrame, counts: list[int]
) -> None:
    """Commit another kind's chunk to the lake (before the warehouse stores it as before)."""
    assert wh.lake is not None
    keys = [wh._key(p) for p in files]
    lake = wh.lake
    _lake_call(lambda: lake.commit_frame(kind, rows.with_columns(row_keys(keys, counts)), keys))


def _lake_call(call: Callable[[], T]) -> T:
    """`call()`, a failure of the lake's catalog or storage raised as LakeUnavailable: the
    ingest stops and retries later; no batch is set aside for what the lake did."""
    try:
        return call()
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:
        raise LakeUnavailable(
            f"the lake could not take the batch: {type(exc).__name__}: {exc}"
        ) from exc
