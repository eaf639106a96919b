"""The warehouse writer: one process at a time owns `warehouse.duckdb` read-write.

It ingests the spool idempotently (the `ingested_files` ledger records every batch it took, in
the same transaction as the rows), keeps the per-minute rollups current, stores the advisor's
results and publishes the read-only snapshot readers open (DESIGN.md §1).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from collectors import spool
from collectors.schema import SCHEMAS
from warehouse.lock import WriterLock
from warehouse.schema import migrate

log = logging.getLogger(__name__)

# Kinds whose rows are deduplicated by key on ingest (a file imported twice counts once).
DEDUP_KEYS = {
    "gpu_samples": ("host", "gpu_uuid", "ts"),
    "process_samples": ("host", "gpu_uuid", "ts", "pid"),
    "health": ("host", "gpu_uuid", "ts", "kind"),
}
# A sample stands for the time until its GPU's next sample, capped at this many usual intervals.
GAP_CAP = 2.0
# Rollup recomputation reaches this far before the earliest new sample (>= 2 x the longest
# supported interval of 5 minutes), so a minute whose next sample arrives later is corrected.
ROLLUP_LOOKBACK = timedelta(minutes=10)


# Billing per day, workload and resource; every money basis kept (DESIGN.md §2).
BILLING_DAILY_SQL = """
    SELECT CAST(ChargePeriodStart AS DATE) AS day, ProviderName AS provider,
           coalesce(workload, 'untagged') AS workload, ResourceId AS resource_id,
           InstanceType AS instance_type, BillingCurrency AS currency, source,
           sum(EffectiveCost) AS effective_cost, sum(BilledCost) AS billed_cost,
           sum(ListCost) AS list_cost, count(*) AS line_items
    FROM billing_items
    GROUP BY ALL"""


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the session settings gpuledger relies on (UTC everywhere)."""
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")
    return con


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

    def open(self) -> Warehouse:
        self.lock.acquire()
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            self.con = connect(self.db_path)
            migrate(self.con)
        except BaseException:
            self.lock.release()
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
        """Take every new spool batch; each kind in one transaction with its ledger rows."""
        result = IngestResult()
        for kind in SCHEMAS:
            files = self._readable(kind, self.pending_files(kind, since_date=since_date), result)
            if not files:
                continue
            if kind == "billing_items":
                for i, path in enumerate(files):
                    result.rows[kind] = result.rows.get(kind, 0) + self._ingest_billing(path)
                    if progress:
                        progress(kind, i + 1, len(files))
            else:
                # Bounded batches keep memory flat when a backlog has piled up.
                step = 25
                for start in range(0, len(files), step):
                    chunk = files[start : start + step]
                    added = self._ingest_rows(kind, chunk)
                    result.rows[kind] = result.rows.get(kind, 0) + added
                    if progress:
                        progress(kind, start + len(chunk), len(files))
            result.files += len(files)
        return result

    def _readable(self, kind: str, files: list[Path], result: IngestResult) -> list[Path]:
        """Files that read whole with the columns of `kind`; others move to spool/_rejected with
        the reason (a file that passed only a footer check would fail every later ingest)."""
        good = []
        for path in files:
            try:
                pl.read_parquet(path, columns=list(SCHEMAS[kind]))
                good.append(path)
            except Exception as exc:  # corrupt or foreign file: keep it aside, never lose it
                reason = f"{type(exc).__name__}: {exc}"
                log.error("spool file %s rejected: %s", path, reason)
                target = self.spool_dir / "_rejected" / self._key(path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), target)
                result.rejected.append((str(path), reason))
        return good

    def _ledger_rows(self, kind: str, files: list[Path], counts: list[int]) -> pl.DataFrame:
        now = datetime.now(UTC)
        return pl.DataFrame(
            {
                "path": [self._key(p) for p in files],
                "kind": [kind] * len(files),
                "rows": counts,
                "ingested_at": [now] * len(files),
            },
            schema={
                "path": pl.String,
                "kind": pl.String,
                "rows": pl.Int64,
                "ingested_at": pl.Datetime("us", "UTC"),
            },
        )

    def _read_files(self, kind: str, files: list[Path]) -> pl.DataFrame:
        frames = [pl.read_parquet(p) for p in files]
        return pl.concat(frames, how="vertical_relaxed").select(list(SCHEMAS[kind]))

    def _ingest_rows(self, kind: str, files: list[Path]) -> int:
        con = self.db
        new = self._read_files(kind, files)
        counts = [pq_rows(p) for p in files]
        keys = DEDUP_KEYS[kind]
        new = new.unique(subset=list(keys), keep="last", maintain_order=True)
        ledger = self._ledger_rows(kind, files, counts)
        con.execute("BEGIN")
        try:
            con.register("new_rows", new)
            con.register("new_ledger", ledger)
            before = con.execute(f"SELECT count(*) FROM {kind}").fetchall()[0][0]
            join = " AND ".join(f"e.{k} = n.{k}" for k in keys)
            con.execute(
                f"""
                INSERT INTO {kind}
                SELECT n.* FROM new_rows n
                WHERE NOT EXISTS (
                    SELECT 1 FROM {kind} e
                    WHERE e.ts BETWEEN (SELECT min(ts) FROM new_rows)
                                   AND (SELECT max(ts) FROM new_rows)
                      AND {join}
                )"""
            )
            added = con.execute(f"SELECT count(*) FROM {kind}").fetchall()[0][0] - before
            if kind == "gpu_samples" and new.height:
                self._refresh_minutes()
            con.execute("INSERT INTO ingested_files SELECT * FROM new_ledger")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("new_rows")
            con.unregister("new_ledger")
        return added

    def _refresh_minutes(self) -> None:
        """Recompute the minute rollups of the GPUs and minutes the rows in `new_rows` touch.

        A sample stands for the time until its GPU's next sample, capped at GAP_CAP times the
        GPU's usual (median) interval, so gaps in telemetry never count as usage.
        """
        con = self.db
        lookback = int(ROLLUP_LOOKBACK.total_seconds())
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE affected AS
            SELECT host, gpu_uuid,
                   date_trunc('minute', min(ts)) - INTERVAL {lookback} SECOND AS lo,
                   date_trunc('minute', max(ts)) + INTERVAL 1 MINUTE AS hi
            FROM new_rows GROUP BY host, gpu_uuid"""
        )
        con.execute(
            """
            DELETE FROM gpu_minute m USING affected a
            WHERE m.host = a.host AND m.gpu_uuid = a.gpu_uuid
              AND m.minute >= a.lo AND m.minute < a.hi"""
        )
        con.execute(
            f"""
            INSERT INTO gpu_minute
            WITH s AS (
                SELECT g.*, a.hi,
                       epoch(lead(g.ts) OVER (PARTITION BY g.host, g.gpu_uuid ORDER BY g.ts))
                         - epoch(g.ts) AS gap
                FROM gpu_samples g JOIN affected a USING (host, gpu_uuid)
                WHERE g.ts >= a.lo AND g.ts < a.hi + INTERVAL {lookback} SECOND
            ),
            usual AS (
                SELECT host, gpu_uuid, median(gap) AS interval_s
                FROM s WHERE gap > 0 GROUP BY host, gpu_uuid
            ),
            d AS (
                SELECT s.*,
                       least(coalesce(s.gap, u.interval_s, 1.0),
                             {GAP_CAP} * coalesce(u.interval_s, s.gap, 1.0)) AS seconds,
                       coalesce(s.sm_active_pct, s.util_pct) / 100.0 AS activity
                FROM s LEFT JOIN usual u USING (host, gpu_uuid)
                WHERE s.ts < s.hi
            )
            SELECT date_trunc('minute', ts) AS minute, host, gpu_uuid,
                   any_value(gpu_model), workload,
                   count(*)::INTEGER, sum(seconds), sum(seconds * coalesce(activity, 0)),
                   avg(util_pct), avg(sm_active_pct), any_value(activity_kind),
                   max(mem_used_mib), max(mem_total_mib), avg(power_w),
                   sum(seconds * coalesce(power_w, 0)), any_value(source)
            FROM d
            GROUP BY date_trunc('minute', ts), host, gpu_uuid, workload"""
        )

    def _ingest_billing(self, path: Path) -> int:
        """One billing batch: its rows replace every stored row with the same `scope` (a restated
        billing period, or the same file imported again), so nothing is counted twice."""
        con = self.db
        new = self._read_files("billing_items", [path]).with_columns(
            pl.lit(self._key(path)).alias("batch")
        )
        ledger = self._ledger_rows("billing_items", [path], [new.height])
        con.execute("BEGIN")
        try:
            con.register("new_bill", new)
            con.register("new_ledger", ledger)
            con.execute(
                "DELETE FROM billing_items WHERE scope IN (SELECT DISTINCT scope FROM new_bill)"
            )
            con.execute("INSERT INTO billing_items SELECT * FROM new_bill")
            con.execute("INSERT INTO ingested_files SELECT * FROM new_ledger")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
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

    def gpu_minutes_since(self, since: datetime) -> pl.DataFrame:
        return self.db.sql(
            "SELECT minute, host, gpu_uuid, gpu_model, workload, seconds, busy_seconds, energy_j"
            " FROM gpu_minute WHERE minute >= $since",
            params={"since": since},
        ).pl()

    def sample_span(self) -> tuple[datetime | None, datetime | None]:
        """First and last GPU sample time stored."""
        lo, hi = self.db.execute("SELECT min(ts), max(ts) FROM gpu_samples").fetchall()[0]
        return lo, hi

    def last_sample(self, source: str) -> datetime | None:
        """Time of the newest GPU sample written by `source`."""
        return self.db.execute(
            "SELECT max(ts) FROM gpu_samples WHERE source = ?", [source]
        ).fetchall()[0][0]

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
        if not table.startswith("results_"):
            raise ValueError(f"not a results table: {table}")
        con = self.db
        con.execute("BEGIN")
        try:
            con.register("result_rows", frame)
            con.execute(f"DELETE FROM {table}")
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM result_rows")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("result_rows")

    def counts(self) -> dict[str, int]:
        tables = ["gpu_samples", "process_samples", "health", "billing_items", "gpu_minute"]
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables)
        return dict(self.db.execute(sql).fetchall())

    def checkpoint(self) -> None:
        self.db.execute("CHECKPOINT")


def pq_rows(path: Path) -> int:
    """Row count from a Parquet footer."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def file_size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
