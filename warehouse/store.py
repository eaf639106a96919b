"""The warehouse writer: one process at a time owns `warehouse.duckdb` read-write.

It ingests the spool idempotently (the `ingested_files` ledger records every batch it took, in
the same transaction as the rows), keeps the per-minute rollups current, stores the advisor's
results and publishes the read-only snapshot readers open (DESIGN.md §1).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import polars as pl

from tables import spool
from tables.records import RECORDS, SCHEMAS, conform, read_spool_file, scan_spool_files
from tables.stored import GPU_MINUTE, INGESTED_FILES, RESULT_TABLES
from tables.timestamps import latest_allowed
from tables.units import UNTAGGED, activity
from warehouse import quarantine
from warehouse.db import connect, transaction
from warehouse.errors import explain
from warehouse.lock import LockHeld, WriterLock
from warehouse.mig import board_members, board_spans, split_boards, widen_to_boards
from warehouse.schema import migrate

if TYPE_CHECKING:
    from warehouse.lake import Lake

log = logging.getLogger(__name__)

# Kinds whose rows are deduplicated by key on ingest (a file imported twice counts once): the
# keys of their definitions (tables/records.py).
DEDUP_KEYS = {kind: RECORDS[kind].key for kind in ("gpu_samples", "process_samples", "health")}
# A sample stands for the time until its GPU's next sample, capped at this many usual intervals.
GAP_CAP = 2.0
# Rollup recomputation reaches this far before the earliest new sample (>= 2 x the longest
# supported interval of 5 minutes), so a minute whose next sample arrives later is corrected.
ROLLUP_LOOKBACK = timedelta(minutes=10)
# An ingest transaction takes spool files until it holds this many bytes, rows or files: big
# enough that per-transaction costs vanish, small enough to keep memory flat on a backlog.
CHUNK_BYTES = 48 * 2**20  # about 2 M GPU samples as the agent writes them
CHUNK_ROWS = 2_000_000  # ... or as an import writes them, far smaller per row
CHUNK_FILES = 2_000
# Files above this size count their rows (from the Parquet footer) against CHUNK_ROWS; smaller
# ones are bounded by CHUNK_BYTES well enough, and reading their footers would cost more.
FOOTER_BYTES = 256 << 10
# The sample columns the minute rollups read.
ROLLUP_COLUMNS = (
    "ts",
    "host",
    "gpu_uuid",
    "gpu_model",
    "workload",
    "util_pct",
    "sm_active_pct",
    "activity_kind",
    "mem_used_mib",
    "mem_total_mib",
    "power_w",
    "energy_mj",
    "source",
    "parent_gpu_uuid",
    "mig_profile",
)


# Billing per day, workload and resource; every money basis kept (DESIGN.md §2), in the columns
# of tables/stored.py BILLING_DAILY. BILLING_DAILY_FROM takes a WHERE clause before its GROUP BY
# (warehouse/results.py).
BILLING_DAILY_FROM = f"""
    SELECT CAST(ChargePeriodStart AS DATE) AS day, ProviderName AS provider,
           coalesce(workload, '{UNTAGGED}') AS workload, ResourceId AS resource_id,
           InstanceType AS instance_type, BillingCurrency AS currency, source,
           sum(EffectiveCost) AS effective_cost, sum(BilledCost) AS billed_cost,
           sum(ListCost) AS list_cost, count(*) AS line_items
    FROM billing_items"""
BILLING_DAILY_SQL = BILLING_DAILY_FROM + " GROUP BY ALL"
# The day of a bill line, as billing_daily has it (the session time zone is UTC).
BILL_DAY = "CAST(ChargePeriodStart AS DATE)"
# Kinds of ledger_dirty marks (migration 6; advisor/jobs.py reads them): 'usage' = a day's rollups
# or process samples changed, so its attribution is recomputed; 'cost' = its bills changed, so it
# is re-costed from the stored attribution.
DIRTY_KINDS = ("usage", "cost")


def mark_dirty(
    con: duckdb.DuckDBPyConnection, kind: str, days_sql: str, params: dict | None = None
) -> None:
    """Record the days `days_sql` selects (one DATE column, `day`) as needing the ledger job,
    inside the caller's transaction; days already marked with `kind` are not added again."""
    if kind not in DIRTY_KINDS:
        raise ValueError(f"not a ledger_dirty kind: {kind!r}")
    con.execute(
        f"""
        INSERT INTO ledger_dirty
        SELECT DISTINCT t.day, $kind FROM ({days_sql}) t
        WHERE t.day IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM ledger_dirty d WHERE d.day = t.day AND d.kind = $kind)""",
        {**(params or {}), "kind": kind},
    ).fetchall()


def mark_dirty_frame(con: duckdb.DuckDBPyConnection, kind: str, days: pl.Series) -> None:
    """`mark_dirty` for a Series of dates."""
    if days.len() == 0:
        return
    con.register("touched_days", pl.DataFrame({"day": days.cast(pl.Date)}))
    try:
        mark_dirty(con, kind, "SELECT day FROM touched_days")
    finally:
        con.unregister("touched_days")


def span_days(spans: pl.DataFrame) -> pl.Series:
    """The UTC days the time spans [lo, hi) of `spans` cover."""
    if spans.height == 0:
        return pl.Series("day", [], pl.Date)
    last = pl.col("hi") - pl.duration(microseconds=1)
    return (
        spans.filter(pl.col("lo") < pl.col("hi"))
        .select(day=pl.date_ranges(pl.col("lo").dt.date(), last.dt.date()))
        .explode("day")
        .unique()["day"]
    )


@dataclass
class IngestResult:
    files: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{n} {k}" for k, n in sorted(self.rows.items()) if n]
        text = f"ingested {self.files} spool file(s)" + (f": {', '.join(parts)}" if parts else "")
        if self.rejected:
            text += f"; rejected {len(self.rejected)} (moved to spool/_rejected)"
        return text


class Warehouse:
    """The single writer. Use as a context manager; raises `LockHeld` if another process owns it."""

    def __init__(self, db_path: Path, spool_dir: Path) -> None:
        self.db_path = Path(db_path)
        self.spool_dir = Path(spool_dir)
        self.lock = WriterLock(self.db_path)
        self.con: duckdb.DuckDBPyConnection | None = None
        self.chunk_rows = CHUNK_ROWS  # the most rows one ingest transaction takes
        # With [lake] enabled (set by the opener): raw rows go to the Iceberg tables
        # (warehouse/lake_ingest.py); the warehouse keeps rollups and a short raw tail.
        self.lake: Lake | None = None
        self.lake_interval_s = 0.0  # [lake] commit_interval_s: ingests with the lake this far apart
        self.lake_taken_at = float("-inf")  # time.monotonic() of the last one
        # The rollups of the chunk being ingested: (gpu_minute rows, minute spans they replace).
        self._minutes: tuple[pl.DataFrame, pl.DataFrame] | None = None

    def open(self) -> Warehouse:
        """Take the writer's lock, open (or create) the file and migrate it. A full disk, a
        folder that cannot be written and a damaged file each raise their StorageError
        (warehouse/errors.py)."""
        try:
            self.lock.acquire()
        except OSError as exc:  # the lock file cannot be made: a read-only folder, a full disk
            found = explain(exc, self.db_path)
            if found is None:
                raise
            raise found from exc
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.con = connect(self.db_path)
            except duckdb.IOException as exc:
                # Another program (a DuckDB shell, a notebook) has the file open: as good as a
                # held lock for the caller, who queues the work or waits.
                if "lock" not in str(exc).lower():
                    raise
                raise LockHeld(self.db_path, f"another program has the file open: {exc}") from None
            migrate(self.con)
        except BaseException as exc:
            if self.con is not None:
                self.con.close()
                self.con = None
            self.lock.release()
            found = explain(exc, self.db_path) if isinstance(exc, Exception) else None
            if found is not None:
                raise found from exc
            raise
        return self

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
        self.lock.release()

    def __enter__(self) -> Warehouse:
        return self if self.con is not None else self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise RuntimeError("warehouse is not open")
        return self.con

    # Ingest ------------------------------------------------------------------------------
    def pending_files(self, kind: str, *, since_date: str | None = None) -> list[Path]:
        """Spool batches of `kind` not yet in the ingest ledger."""
        files = spool.list_batches(self.spool_dir, kind, since_date=since_date)
        if not files:
            return []
        taken = {
            row[0]
            for row in self.db.execute(
                "SELECT path FROM ingested_files WHERE kind = ?", [kind]
            ).fetchall()
        }
        return [p for p in files if self._key(p) not in taken]

    def _key(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.spool_dir.resolve()))

    def ingest_spool(
        self,
        *,
        since_date: str | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> IngestResult:
        """Take every new spool batch; each chunk of files in one transaction with its ledger rows.

        Files are taken in chunks of about CHUNK_BYTES or `chunk_rows` (at most CHUNK_FILES
        files). A file that cannot be ingested (unreadable, an implausible time, rows that fail
        to store) is moved to spool/_rejected with its reason (warehouse/quarantine.py) and the
        others are stored; a failure of the warehouse itself (a full disk) is raised.
        """
        result = IngestResult()
        if self.lake is not None:
            from warehouse import lake_ingest

            if not lake_ingest.due(self):  # one lake commit per [lake] commit_interval_s
                return result
        for kind in SCHEMAS:
            pending = self.pending_files(kind, since_date=since_date)
            if not pending:
                continue
            if kind == "billing_items":
                files = self._readable(kind, pending, result)
                for i, path in enumerate(files):
                    self._take_billing(path, result)
                    if progress:
                        progress(kind, i + 1, len(files))
                continue
            done = 0
            for files, frame, counts in self._chunks(kind, pending, result):
                self._take_chunk(kind, files, frame, counts, result)
                done += len(files)
                if progress:
                    progress(kind, done, len(pending))
        return result

    def _take_chunk(
        self,
        kind: str,
        files: list[Path],
        frame: pl.DataFrame,
        counts: list[int],
        result: IngestResult,
    ) -> None:
        """Store a chunk, less the files holding a time tables/timestamps.py refuses (those are
        set aside first, each named by its first such row)."""
        faults = quarantine.time_faults(kind, frame, counts)
        if faults:
            for i, reason in faults.items():
                self._reject(files[i], reason, result, kind)
            frame = quarantine.without_files(frame, counts, set(faults))
            files = [f for i, f in enumerate(files) if i not in faults]
            counts = [n for i, n in enumerate(counts) if i not in faults]
        if files:
            self._store_halving(kind, files, frame, counts, result)

    def _store_halving(
        self,
        kind: str,
        files: list[Path],
        frame: pl.DataFrame,
        counts: list[int],
        result: IngestResult,
    ) -> None:
        """Store a chunk in one transaction; when that fails for the batches' fault (any
        exception, a Rust panic too, that is not the warehouse's), store each half of it on
        its own, down to the one file that fails, which is set aside."""
        try:
            added = self._ingest_rows(kind, files, frame, counts)
        except BaseException as exc:
            if not quarantine.batch_fault(exc):
                raise
            if len(files) == 1:
                self._reject(files[0], exc, result, kind)
                return
            log.warning(
                "%d %s spool files failed to store together (%s): storing them in halves to"
                " find the file at fault",
                len(files),
                kind,
                quarantine.describe(exc),
            )
            mid = len(files) // 2
            split = sum(counts[:mid])
            self._store_halving(kind, files[:mid], frame.slice(0, split), counts[:mid], result)
            self._store_halving(kind, files[mid:], frame.slice(split), counts[mid:], result)
            return
        result.rows[kind] = result.rows.get(kind, 0) + added
        result.files += len(files)

    def _take_billing(self, path: Path, result: IngestResult) -> None:
        """Store one billing batch; set it aside when it fails for its own fault."""
        try:
            added = self._ingest_billing(path)
        except BaseException as exc:
            if not quarantine.batch_fault(exc):
                raise
            self._reject(path, exc, result, "billing_items")
            return
        result.rows["billing_items"] = result.rows.get("billing_items", 0) + added
        result.files += 1

    def _reject(
        self, path: Path, why: BaseException | str, result: IngestResult, kind: str
    ) -> None:
        """Move a file that cannot be ingested to spool/_rejected, saying why in the log and in
        rejected_batches; never lose it."""
        reason = why if isinstance(why, str) else quarantine.describe(why)
        key = self._key(path)
        log.error("spool file %s rejected (moved to %s): %s", key, quarantine.REJECTED_DIR, reason)
        quarantine.move_aside(self.spool_dir, key, path, reason)
        try:
            quarantine.record(self.db, key, kind, reason)
        except Exception:  # the file is aside and its reason logged either way
            log.exception("could not record the rejection of %s", key)
        result.rejected.append((str(path), reason))

    def _readable(self, kind: str, files: list[Path], result: IngestResult) -> list[Path]:
        """Files that read whole with the columns of `kind`; others move to spool/_rejected with
        the reason (a file that passed only a footer check would fail every later ingest)."""
        good = []
        for path in files:
            try:
                read_spool_file(path, kind)
                good.append(path)
            except BaseException as exc:  # corrupt or foreign file: keep it aside, never lose it
                if not quarantine.batch_fault(exc):
                    raise
                self._reject(path, exc, result, kind)
        return good

    def _chunks(
        self, kind: str, files: list[Path], result: IngestResult
    ) -> Iterator[tuple[list[Path], pl.DataFrame, list[int]]]:
        """(files, rows, rows per file) in chunks of about CHUNK_BYTES of Parquet.

        A chunk is read in one parallel scan; when that fails, its files are read one by one and
        those that do not read whole with the columns of `kind` move to spool/_rejected (a file
        that passed only a footer check would fail every later ingest).
        """
        cols = list(SCHEMAS[kind])
        for group in _by_size(files, self.chunk_rows):
            try:
                frame = (
                    scan_spool_files(
                        group, kind, hive_partitioning=False, include_file_paths="_file"
                    )
                    .select([*cols, "_file"])
                    .collect()
                )
                per_file = dict(frame.group_by("_file").len().iter_rows())
                counts = [per_file.get(str(p), 0) for p in group]
                yield group, conform(frame.drop("_file"), kind), counts
                continue
            except BaseException as exc:  # some file of the group is bad: find it
                if not quarantine.batch_fault(exc):
                    raise
            good, frames = [], []
            for path in group:
                try:
                    frames.append(conform(read_spool_file(path, kind), kind))
                    good.append(path)
                except BaseException as exc:  # corrupt or foreign: keep it aside, never lose it
                    if not quarantine.batch_fault(exc):
                        raise
                    self._reject(path, exc, result, kind)
            if good:
                yield good, pl.concat(frames, how="vertical"), [f.height for f in frames]

    def _ledger_rows(self, kind: str, files: list[Path], counts: list[int]) -> pl.DataFrame:
        now = datetime.now(UTC)
        return pl.DataFrame(
            {
                "path": [self._key(p) for p in files],
                "kind": [kind] * len(files),
                "rows": counts,
                "ingested_at": [now] * len(files),
            },
            schema=INGESTED_FILES.polars_schema,
        )

    def _read_files(self, kind: str, files: list[Path]) -> pl.DataFrame:
        return pl.concat([read_spool_file(p, kind) for p in files], how="vertical")

    def _ingest_rows(
        self, kind: str, files: list[Path], new: pl.DataFrame, counts: list[int]
    ) -> int:
        """Store one chunk: new keys only (the last copy within the chunk; a key already stored
        wins), the minute rollups of what it touches, and the ledger rows, in one transaction.

        DuckDB inserts the rows on a worker thread while Polars computes the rollups here: both
        release the GIL, so the two halves overlap.
        """
        if self.lake is not None:
            from warehouse import lake_ingest

            if kind == "gpu_samples":
                return lake_ingest.ingest_gpu_rows(self, files, new, counts)
            lake_ingest.commit_rows(self, kind, files, new, counts)
        con = self.db
        batch = _Batch.build(kind, new)
        existing = self._existing_window(kind, batch)
        batch.drop_duplicates(existing)
        ledger = self._ledger_rows(kind, files, counts)
        rollup = kind == "gpu_samples" and batch.rows.height > 0
        horizon = self.raw_horizon() if rollup else None
        try:
            with transaction(con):
                con.register("new_rows", batch.rows)
                con.register("new_ledger", ledger)
                with ThreadPoolExecutor(1, thread_name_prefix="gpuledger-insert") as pool:
                    inserting = (
                        pool.submit(self._insert_new_rows, kind) if batch.rows.height else None
                    )
                    if rollup:
                        # Polars only here: the connection belongs to the insert until it is done.
                        self._minutes = minute_rollups(batch.rows, existing, batch.spans, horizon)
                    if inserting is not None:
                        inserting.result()
                if rollup:
                    self._refresh_minutes()
                self._mark_touched_days(kind, batch)
                con.execute("INSERT INTO ingested_files SELECT * FROM new_ledger").fetchall()
                quarantine.forget(con)  # a file set aside once, moved back and now taken
        finally:
            self._minutes = None
            con.unregister("new_rows")
            con.unregister("new_ledger")
        return batch.rows.height

    def _mark_touched_days(self, kind: str, batch: _Batch) -> None:
        """Mark the days whose attribution this chunk changed (the ledger job recomputes them):
        for GPU samples the days of the minutes the rollups rewrote, for process samples the
        days of the new rows. Health records change no figure of the ledger."""
        if kind == "gpu_samples" and self._minutes is not None:
            mark_dirty_frame(self.db, "usage", span_days(self._minutes[1]))
        elif kind == "process_samples" and batch.rows.height:
            days = batch.rows.filter(pl.col("ts").is_not_null())["ts"].dt.date().unique()
            mark_dirty_frame(self.db, "usage", days)

    def _insert_new_rows(self, kind: str) -> None:
        self.db.execute(f"INSERT INTO {kind} SELECT * FROM new_rows").fetchall()

    def _existing_window(self, kind: str, batch: _Batch) -> pl.DataFrame:
        """Stored rows of the chunk's GPUs around its span: for gpu_samples the whole rollup
        window (ROLLUP_LOOKBACK before the first minute to ROLLUP_LOOKBACK after the last, the
        rows the recomputed minutes need), for the other kinds the keys within the span."""
        if batch.spans.height == 0:
            return batch.rows.head(0)
        spans = batch.spans
        boards = spans.head(0)
        if kind == "gpu_samples":
            lookback = pl.duration(seconds=int(ROLLUP_LOOKBACK.total_seconds()))
            horizon = self.raw_horizon()

            def reach(frame: pl.DataFrame) -> pl.DataFrame:
                return rollup_spans(frame, horizon).with_columns(hi=pl.col("hi") + lookback)

            # A MIG board's minutes are recomputed together: the board's own rows and every
            # instance of it (also one without new samples), over the whole board's span.
            boards = board_spans(spans, batch.rows).rename({"board": "gpu_uuid"})
            plain = spans.join(board_members(batch.rows), on=["host", "gpu_uuid"], how="anti")
            spans = reach(pl.concat([plain, boards.select(plain.columns)]))
            boards = reach(boards)
            cols = ", ".join(f"e.{c}" for c in ROLLUP_COLUMNS)
        else:
            spans = spans.with_columns(hi=pl.col("hi") + pl.duration(microseconds=1))
            cols = ", ".join(f"e.{c}" for c in DEDUP_KEYS[kind])
        con = self.db
        con.register("chunk_spans", spans.select("host", "gpu_uuid", "lo", "hi"))
        con.register("board_spans", boards.select("host", "gpu_uuid", "lo", "hi"))
        # The constant bounds let DuckDB skip row groups by their ts zone maps.
        sql = f"""
            SELECT {cols} FROM {kind} e JOIN chunk_spans s
              ON e.host = s.host AND e.gpu_uuid = s.gpu_uuid AND e.ts >= s.lo AND e.ts < s.hi
            WHERE e.ts >= $lo AND e.ts < $hi"""
        if boards.height:
            sql += f"""
            UNION ALL
            SELECT {cols} FROM {kind} e JOIN board_spans s
              ON e.host = s.host AND e.parent_gpu_uuid = s.gpu_uuid
              AND e.ts >= s.lo AND e.ts < s.hi
            WHERE e.ts >= $lo AND e.ts < $hi"""
        try:
            return con.sql(sql, params={"lo": spans["lo"].min(), "hi": spans["hi"].max()}).pl()
        finally:
            con.unregister("chunk_spans")
            con.unregister("board_spans")

    def _refresh_minutes(self) -> None:
        """Replace the minute rollups of the GPUs and minutes the chunk being ingested touches
        with those `minute_rollups` computed (see there for the rules)."""
        assert self._minutes is not None
        minutes, spans = self._minutes
        con = self.db
        con.register("new_minutes", minutes)
        con.register("minute_spans", spans)
        try:
            con.execute(
                """
                DELETE FROM gpu_minute m USING minute_spans a
                WHERE m.host = a.host AND m.gpu_uuid = a.gpu_uuid
                  AND m.minute >= a.lo AND m.minute < a.hi
                  AND m.minute >= $lo AND m.minute < $hi""",
                {"lo": spans["lo"].min(), "hi": spans["hi"].max()},
            ).fetchall()
            con.execute("INSERT INTO gpu_minute BY NAME SELECT * FROM new_minutes").fetchall()
        finally:
            con.unregister("new_minutes")
            con.unregister("minute_spans")

    def _ingest_billing(self, path: Path) -> int:
        """One billing batch: its rows replace every stored row with the same `scope` (a restated
        billing period, or the same file imported again), so nothing is counted twice."""
        con = self.db
        new = self._read_files("billing_items", [path]).with_columns(
            pl.lit(self._key(path)).alias("batch")
        )
        faults = quarantine.time_faults("billing_items", new, [new.height])
        if faults:
            raise quarantine.BatchRefused(faults[0])
        ledger = self._ledger_rows("billing_items", [path], [new.height])
        if self.lake is not None:
            from warehouse import lake_ingest

            lake_ingest.commit_rows(self, "billing_items", [path], new.drop("batch"), [new.height])
        # The days of the rows a restated scope replaces, and of the new rows, are re-costed.
        replaced = "FROM billing_items WHERE scope IN (SELECT DISTINCT scope FROM new_bill)"
        try:
            with transaction(con):
                con.register("new_bill", new)
                con.register("new_ledger", ledger)
                mark_dirty(
                    con,
                    "cost",
                    f"SELECT {BILL_DAY} AS day {replaced}"
                    f" UNION SELECT {BILL_DAY} AS day FROM new_bill",
                )
                con.execute(f"DELETE {replaced}")
                con.execute("INSERT INTO billing_items BY NAME SELECT * FROM new_bill")
                con.execute("INSERT INTO ingested_files SELECT * FROM new_ledger")
                quarantine.forget(con)
        finally:
            con.unregister("new_bill")
            con.unregister("new_ledger")
        return new.height

    # Reads for the advisor jobs --------------------------------------------------------------
    def gpu_minutes(self, since: datetime, until: datetime) -> pl.DataFrame:
        return self.db.sql(
            "SELECT * FROM gpu_minute WHERE minute >= $since AND minute < $until",
            params={"since": since, "until": until},
        ).pl()

    def billing_items(self, since: datetime, until: datetime) -> pl.DataFrame:
        return self.db.sql(
            "SELECT * FROM billing_items"
            " WHERE ChargePeriodStart >= $since AND ChargePeriodStart < $until",
            params={"since": since, "until": until},
        ).pl()

    def billing_daily(self, since: datetime, until: datetime) -> pl.DataFrame:
        return self.db.sql(
            BILLING_DAILY_SQL
            + " HAVING day >= CAST($since AS DATE) AND day < CAST($until AS DATE)",
            params={"since": since, "until": until},
        ).pl()

    def raw_horizon(self) -> datetime | None:
        """The time before which raw samples were deleted by retention (warehouse/retention.py)."""
        rows = self.db.execute("SELECT value FROM meta WHERE key = 'raw_kept_from'").fetchall()
        return datetime.fromisoformat(rows[0][0]) if rows else None

    def sample_span(self, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """First and last GPU sample time stored: the first from the rollups (kept for good,
        while raw samples are pruned), the last exactly from the raw rows near the newest minute
        (a filtered read, not a scan of every sample). Times past `latest_allowed(now)` are not
        "the last" (a row stored before the ingest refused them: tables/timestamps.py)."""
        return self.db.execute(
            "SELECT (SELECT min(minute) FROM gpu_minute),"
            " (SELECT max(ts) FROM gpu_samples WHERE ts <= $latest"
            "   AND ts >= (SELECT max(minute) FROM gpu_minute WHERE minute <= $latest)"
            "   - INTERVAL 10 MINUTE)",
            {"latest": latest_allowed(now)},
        ).fetchall()[0]

    def last_sample(self, source: str) -> datetime | None:
        """Time of the newest GPU sample written by `source`."""
        return self.db.execute(
            "SELECT max(ts) FROM gpu_samples WHERE source = ?", [source]
        ).fetchall()[0][0]

    def purge_source(self, source: str) -> dict[str, int]:
        """Delete every row `source` wrote (the demo fleet, once real data is configured), in
        one transaction; returns the rows deleted per table."""
        tables = (*RECORDS, GPU_MINUTE.name)
        con = self.db
        deleted: dict[str, int] = {}
        with transaction(con):
            # The days whose rollups or bills go are attributed or re-costed again.
            mark_dirty(
                con,
                "usage",
                "SELECT DISTINCT CAST(minute AS DATE) AS day FROM gpu_minute WHERE source = $s",
                {"s": source},
            )
            mark_dirty(
                con,
                "cost",
                f"SELECT DISTINCT {BILL_DAY} AS day FROM billing_items WHERE source = $s",
                {"s": source},
            )
            for table in tables:
                deleted[table] = con.execute(
                    f"DELETE FROM {table} WHERE source = ?", [source]
                ).fetchall()[0][0]
        return deleted

    def has_real_data(self) -> bool:
        """Whether anything but the demo fleet has written samples or bills."""
        n = self.db.execute(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM gpu_samples WHERE source <> 'demo'"
            " LIMIT 1)) + (SELECT count(*) FROM (SELECT 1 FROM billing_items"
            " WHERE source <> 'demo' LIMIT 1))"
        ).fetchall()[0][0]
        return n > 0

    # Results -----------------------------------------------------------------------------
    def replace_result(self, table: str, frame: pl.DataFrame) -> None:
        """Replace a results table's rows in one transaction."""
        if table not in RESULT_TABLES:
            raise ValueError(f"not a results table: {table}")
        con = self.db
        try:
            with transaction(con):
                con.register("result_rows", frame)
                con.execute(f"DELETE FROM {table}")
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM result_rows")
        finally:
            con.unregister("result_rows")

    def counts(self) -> dict[str, int]:
        tables = [*RECORDS, GPU_MINUTE.name]
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables)
        return dict(self.db.execute(sql).fetchall())

    def checkpoint(self) -> None:
        self.db.execute("CHECKPOINT")


def _by_size(files: list[Path], max_rows: int = CHUNK_ROWS) -> Iterator[list[Path]]:
    """Consecutive groups of files of about CHUNK_BYTES or `max_rows` rows (at least one file
    each; rows are counted in files above FOOTER_BYTES)."""
    group: list[Path] = []
    size = rows = 0
    for path in files:
        group.append(path)
        here = file_size(path)
        size += here
        rows += footer_rows(path) if here > FOOTER_BYTES else 0
        if size >= CHUNK_BYTES or rows >= max_rows or len(group) >= CHUNK_FILES:
            yield group
            group, size, rows = [], 0, 0
    if group:
        yield group


def _gpu_ids(frame: pl.DataFrame) -> pl.Series:
    """A 64-bit id per (host, gpu_uuid) pair, cheap to sort, join and group on. The ids come
    from categorical casts, so they are comparable only within one frame (one call)."""
    host = frame["host"].cast(pl.Categorical).to_physical().cast(pl.UInt64)
    gpu = frame["gpu_uuid"].cast(pl.Categorical).to_physical().cast(pl.UInt64)
    return (host * (1 << 32) + gpu).alias("_gid")


@dataclass
class _Batch:
    """A chunk of spool rows being ingested: the rows to store and each GPU's time span."""

    kind: str
    rows: pl.DataFrame
    spans: pl.DataFrame  # host, gpu_uuid, lo, hi (first and last new ts, inclusive)

    @classmethod
    def build(cls, kind: str, frame: pl.DataFrame) -> _Batch:
        """Drop repeated keys within the chunk, keeping the last copy (a later file wins)."""
        keys = DEDUP_KEYS[kind]
        extra = [k for k in keys if k not in ("host", "gpu_uuid", "ts")]
        order = pl.DataFrame({"_gid": _gpu_ids(frame), "ts": frame["ts"]}).with_columns(
            *(frame[k] for k in extra)
        )
        # A stable sort keeps file order among equal keys: the last of each run is kept.
        idx = order.with_row_index("_i").sort(["_gid", "ts", *extra], maintain_order=True)
        # Equal to the next row in every key (a null equal to a null, as `unique` has it).
        same = pl.int_range(pl.len()) < pl.len() - 1
        for k in ("_gid", "ts", *extra):
            same = same & pl.col(k).eq_missing(pl.col(k).shift(-1))
        dup = idx.select(same.alias("dup"), "_i").filter("dup")
        if dup.height:
            mask = pl.Series(np.ones(frame.height, dtype=bool))
            mask = mask.scatter(dup["_i"], False)
            frame = frame.filter(mask)
        spans = (
            frame.filter(pl.col("ts").is_not_null() & pl.col("host").is_not_null())
            .filter(pl.col("gpu_uuid").is_not_null())
            .group_by("host", "gpu_uuid")
            .agg(lo=pl.col("ts").min(), hi=pl.col("ts").max())
        )
        return cls(kind, frame, spans)

    def drop_duplicates(self, existing: pl.DataFrame) -> None:
        """Drop rows whose key is already stored (the stored copy wins, as before)."""
        if existing.height == 0:
            return
        keys = list(DEDUP_KEYS[self.kind])
        inside = existing.join(self.spans, on=["host", "gpu_uuid"]).filter(
            pl.col("ts").is_between(pl.col("lo"), pl.col("hi"))
        )
        if inside.height:
            self.rows = self.rows.join(
                inside.select(keys).unique(),
                on=keys,
                how="anti",
                nulls_equal=True,  # a null pid (a pod from dcgm) is still the same row again
                maintain_order="left",
            )


def rollup_spans(spans: pl.DataFrame, horizon: datetime | None = None) -> pl.DataFrame:
    """The minutes [lo, hi) to recompute per GPU, from its first and last new sample: from
    ROLLUP_LOOKBACK before the first one's minute to the end of the last one's minute. Before
    the raw-retention `horizon` the stored samples are gone, so there no earlier minute is
    recomputed (it would lose what the deleted samples had counted)."""
    lookback = pl.duration(seconds=int(ROLLUP_LOOKBACK.total_seconds()))
    first = pl.col("lo").dt.truncate("1m")
    lo = first - lookback
    if horizon is not None:
        lo = pl.when(lo < pl.lit(horizon, pl.Datetime("us", "UTC"))).then(first).otherwise(lo)
    return spans.select(
        "host", "gpu_uuid", lo=lo, hi=pl.col("hi").dt.truncate("1m") + pl.duration(minutes=1)
    )


def minute_rollups(
    rows: pl.DataFrame,
    window: pl.DataFrame,
    spans: pl.DataFrame,
    horizon: datetime | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """gpu_minute rows for the minutes `rows` (new samples) touch, and the (host, gpu_uuid,
    lo, hi) minute spans they replace. `window` holds the stored samples of those GPUs from
    ROLLUP_LOOKBACK before the first new minute to ROLLUP_LOOKBACK after the last.

    For each GPU every minute from ROLLUP_LOOKBACK before its first new sample's minute to its
    last new sample's minute is recomputed from the stored and the new samples, so the minute
    where the previous batch ended learns its last sample's successor. A sample stands for the
    time until its GPU's next sample, capped at GAP_CAP times the GPU's usual (median) interval
    in that window, so gaps in telemetry never count as usage; a sample with no successor yet
    stands for the usual interval.

    Activity: a sample with neither SM active nor utilization has unknown activity; its seconds
    count in `seconds` but not in `activity_seconds`, and add nothing to `busy_seconds`, so busy
    fraction = busy_seconds / activity_seconds, unknown where no second had a signal.
    MIG: a board's instances and its own row become one GPU split by compute slices
    (warehouse.mig.split_boards); `window` then holds every instance of the board.
    """
    cols = list(ROLLUP_COLUMNS)
    both = pl.concat([window.select(cols), rows.select(cols)], how="vertical_relaxed").filter(
        pl.col("ts").is_not_null() & pl.col("host").is_not_null() & pl.col("gpu_uuid").is_not_null()
    )
    replaced = rollup_spans(widen_to_boards(spans, both), horizon)
    # One cast over both frames: categorical ids are only consistent within one cast.
    ids = _gpu_ids(
        pl.concat([both.select("host", "gpu_uuid"), replaced.select("host", "gpu_uuid")])
    )
    both = both.with_columns(ids.head(both.height)).sort("_gid", "ts")
    ends = replaced.with_columns(ids.tail(replaced.height)).select("_gid", "lo", "hi")
    minutes = _per_minute(_timed_samples(both, ends))
    return split_boards(minutes).select(GPU_MINUTE.names), replaced


def _timed_samples(both: pl.DataFrame, ends: pl.DataFrame) -> pl.DataFrame:
    """The samples in each GPU's recomputed span (`ends`: _gid, lo, hi), each with the seconds
    it stands for, its activity (a fraction, null where unknown), its minute and its energy."""
    same_next = pl.col("_gid").shift(-1) == pl.col("_gid")
    gap = pl.when(same_next).then(
        (pl.col("ts").shift(-1) - pl.col("ts")).dt.total_microseconds() / 1e6
    )
    # The energy counter's delta to the next sample, in joules, where the driver reports one.
    delta_j = pl.when(same_next).then(
        (pl.col("energy_mj").shift(-1) - pl.col("energy_mj")) / 1000.0
    )
    return (
        both.with_columns(gap=gap, delta_j=delta_j)
        .with_columns(usual=pl.col("gap").filter(pl.col("gap") > 0).median().over("_gid"))
        .join(ends, on="_gid", how="inner")
        .filter((pl.col("ts") >= pl.col("lo")) & (pl.col("ts") < pl.col("hi")))
        .with_columns(
            seconds=pl.min_horizontal(
                pl.coalesce("gap", "usual", pl.lit(1.0)),
                GAP_CAP * pl.coalesce("usual", "gap", pl.lit(1.0)),
            ),
            activity=activity() / 100.0,
            minute=pl.col("ts").dt.truncate("1m"),
        )
        .with_columns(
            # Measured energy: the counter's delta where present and the gap is a real sampling
            # interval (not capped, counter not reset), else power integrated over the seconds.
            sample_j=pl.when(
                pl.col("delta_j").is_not_null()
                & (pl.col("delta_j") >= 0)
                & (pl.col("gap") <= pl.col("seconds"))
            )
            .then(pl.col("delta_j"))
            .otherwise(pl.col("seconds") * pl.col("power_w").fill_null(0.0))
        )
    )


def _per_minute(samples: pl.DataFrame) -> pl.DataFrame:
    """The timed samples summed per (GPU, minute, workload) into gpu_minute rows (before MIG
    boards are split)."""
    return (
        samples.group_by("_gid", "minute", "workload")
        .agg(
            host=pl.col("host").first(),
            gpu_uuid=pl.col("gpu_uuid").first(),
            gpu_model=pl.col("gpu_model").first(),
            samples=pl.len().cast(pl.Int32),
            seconds=pl.col("seconds").sum(),
            busy_seconds=(pl.col("seconds") * pl.col("activity").fill_null(0.0)).sum(),
            activity_seconds=pl.col("seconds").filter(pl.col("activity").is_not_null()).sum(),
            util_avg=pl.col("util_pct").mean(),
            sm_active_avg=pl.col("sm_active_pct").mean(),
            activity_kind=pl.col("activity_kind").first(),
            mem_used_max_mib=pl.col("mem_used_mib").max(),
            mem_total_mib=pl.col("mem_total_mib").max(),
            power_avg_w=pl.col("power_w").mean(),
            energy_j=pl.col("sample_j").sum(),
            source=pl.col("source").first(),
            parent_gpu_uuid=pl.col("parent_gpu_uuid").drop_nulls().first(),
            mig_profile=pl.col("mig_profile").drop_nulls().first(),
        )
        .select([c for c in GPU_MINUTE.names if c != "board_share"])
    )


def pq_rows(path: Path) -> int:
    """Row count from a Parquet footer."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def footer_rows(path: Path) -> int:
    """`pq_rows`, 0 for a file whose footer does not read (the ingest sets it aside later)."""
    try:
        return pq_rows(path)
    except Exception:
        return 0


def file_size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
