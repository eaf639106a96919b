"""Ingest: GPU samples per second through `Warehouse.ingest_spool` (what `gpuledger run` does every
few seconds: read the spool batches, drop keys already stored, insert, recompute the minute
rollups they touch, record the files in the ledger, one transaction per chunk).

- The whole benchmark fleet (benchmarks/fleet.py), one run: its spool batches hold 115,200 rows
  (8 GPUs × 4 h at 1 Hz).
- One fleet day (48 such batches, 5.5 M rows) into a fresh warehouse: median of 3 runs; beside it
  the ingest path as it was before issue 8 (an SQL anti-join against the stored rows and a
  windowed SQL rollup) on the same day, once.
- The row-by-row baseline: each sample its own `INSERT … VALUES (?, …)`, as a naive collector
  writing straight to DuckDB would (2,000 rows).
- Agent-sized batches: the agent flushes every 5 s, so one host's file holds 40 rows (8 GPUs);
  1,000 such files, median of 3. Per-file costs dominate there; the daemon sees ~2 files a
  second from 8 hosts, far below this rate.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from benchmarks.fleet import built_fleet, host_batches
from benchmarks.run import Result
from tables import spool
from tables.records import SCHEMAS
from warehouse.db import transaction
from warehouse.store import DEDUP_KEYS, GAP_CAP, ROLLUP_LOOKBACK, Warehouse, pq_rows

GOAL = 1_000_000  # samples per second for batches of 100k rows and more
REPEAT = 3
ROW_BY_ROW = 2_000


class LegacyWarehouse(Warehouse):
    """The ingest path before issue 8, kept here to measure the speed-up on the same data: every
    file read whole once to check it, then again in chunks of 25 files; duplicates dropped by an
    SQL anti-join against the stored rows; the rollups recomputed by a windowed SQL query."""

    def _chunks(self, kind, files, result):  # type: ignore[override]
        good = self._readable(kind, files, result)
        for start in range(0, len(good), 25):
            chunk = good[start : start + 25]
            yield chunk, self._read_files(kind, chunk), [pq_rows(p) for p in chunk]

    def _ingest_rows(self, kind, files, new, counts):  # type: ignore[override]
        con = self.db
        keys = DEDUP_KEYS[kind]
        new = new.unique(subset=list(keys), keep="last", maintain_order=True)
        ledger = self._ledger_rows(kind, files, counts)
        try:
            with transaction(con):
                con.register("new_rows", new)
                con.register("new_ledger", ledger)
                before = con.execute(f"SELECT count(*) FROM {kind}").fetchall()[0][0]
                join = " AND ".join(f"e.{k} = n.{k}" for k in keys)
                con.execute(
                    f"""INSERT INTO {kind} SELECT n.* FROM new_rows n WHERE NOT EXISTS (
                        SELECT 1 FROM {kind} e
                        WHERE e.ts BETWEEN (SELECT min(ts) FROM new_rows)
                                       AND (SELECT max(ts) FROM new_rows) AND {join})"""
                ).fetchall()
                added = con.execute(f"SELECT count(*) FROM {kind}").fetchall()[0][0] - before
                if kind == "gpu_samples" and new.height:
                    self._legacy_rollup()
                con.execute("INSERT INTO ingested_files SELECT * FROM new_ledger").fetchall()
        finally:
            con.unregister("new_rows")
            con.unregister("new_ledger")
        return added

    def _legacy_rollup(self) -> None:
        con = self.db
        lb = int(ROLLUP_LOOKBACK.total_seconds())
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE affected AS
            SELECT host, gpu_uuid, date_trunc('minute', min(ts)) - INTERVAL {lb} SECOND AS lo,
                   date_trunc('minute', max(ts)) + INTERVAL 1 MINUTE AS hi
            FROM new_rows GROUP BY host, gpu_uuid"""
        ).fetchall()
        con.execute(
            """DELETE FROM gpu_minute m USING affected a WHERE m.host = a.host
            AND m.gpu_uuid = a.gpu_uuid AND m.minute >= a.lo AND m.minute < a.hi"""
        ).fetchall()
        con.execute(
            f"""INSERT INTO gpu_minute (minute, host, gpu_uuid, gpu_model, workload, samples,
                seconds, busy_seconds, util_avg, sm_active_avg, activity_kind, mem_used_max_mib,
                mem_total_mib, power_avg_w, energy_j, source)
            WITH s AS (
                SELECT g.*, a.hi, epoch(lead(g.ts) OVER (PARTITION BY g.host, g.gpu_uuid
                       ORDER BY g.ts)) - epoch(g.ts) AS gap
                FROM gpu_samples g JOIN affected a USING (host, gpu_uuid)
                WHERE g.ts >= a.lo AND g.ts < a.hi + INTERVAL {lb} SECOND),
            usual AS (SELECT host, gpu_uuid, median(gap) AS interval_s FROM s WHERE gap > 0
                      GROUP BY host, gpu_uuid),
            d AS (SELECT s.*, least(coalesce(s.gap, u.interval_s, 1.0),
                         {GAP_CAP} * coalesce(u.interval_s, s.gap, 1.0)) AS seconds,
                         coalesce(s.sm_active_pct, s.util_pct) / 100.0 AS activity
                  FROM s LEFT JOIN usual u USING (host, gpu_uuid) WHERE s.ts < s.hi)
            SELECT date_trunc('minute', ts), host, gpu_uuid, any_value(gpu_model), workload,
                   count(*)::INTEGER, sum(seconds), sum(seconds * coalesce(activity, 0)),
                   avg(util_pct), avg(sm_active_pct), any_value(activity_kind),
                   max(mem_used_mib), max(mem_total_mib), avg(power_w),
                   sum(seconds * coalesce(power_w, 0)), any_value(source)
            FROM d GROUP BY date_trunc('minute', ts), host, gpu_uuid, workload"""
        ).fetchall()


def _day_spool(fleet_spool: Path, day: str, into: Path) -> int:
    """Copy one day of the fleet's spool batches; returns the rows."""
    rows = 0
    for src in spool.list_batches(fleet_spool, "gpu_samples"):
        if f"date={day}" in str(src):
            dest = into / src.relative_to(fleet_spool)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            rows += _rows(dest)
    return rows


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _ingest_seconds(spool_dir: Path, cls: type[Warehouse] = Warehouse) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="gpuledger-ingest-") as tmp:
        t0 = time.perf_counter()
        with cls(Path(tmp) / "w.duckdb", spool_dir) as wh:
            result = wh.ingest_spool()
            wh.checkpoint()
        return time.perf_counter() - t0, result.rows.get("gpu_samples", 0)


def _row_by_row(frame: pl.DataFrame) -> float:
    """Rows per second, one INSERT statement per sample (autocommit)."""
    rows = frame.head(ROW_BY_ROW).select(list(SCHEMAS["gpu_samples"])).rows()
    marks = ", ".join("?" for _ in SCHEMAS["gpu_samples"])
    with (
        tempfile.TemporaryDirectory(prefix="gpuledger-rbr-") as tmp,
        Warehouse(Path(tmp) / "w.duckdb", Path(tmp) / "spool") as wh,
    ):
        t0 = time.perf_counter()
        for row in rows:
            wh.db.execute(f"INSERT INTO gpu_samples VALUES ({marks})", row).fetchall()
        return len(rows) / (time.perf_counter() - t0)


def _agent_batches(frame: pl.DataFrame, into: Path, files: int) -> int:
    """`files` agent flushes: 5 s of 8 GPUs each (40 rows), ts-major as the agent writes."""
    ordered = frame.sort("ts", "gpu_uuid")
    per = 40
    for i in range(files):
        spool.write_batch(into, "gpu_samples", ordered.slice(i * per, per), ordered["host"][0])
    return files * per


def bench() -> list[Result]:
    fleet = built_fleet()
    spec = fleet.spec
    full_rate = fleet.ingested_rows / fleet.ingest_s
    results = [
        Result(
            f"ingest the whole fleet ({fleet.ingested_rows:,} samples, {fleet.written.files}"
            " batches of 115,200)",
            full_rate,
            "samples/s",
            goal=">= 1,000,000 samples/s",
            met=full_rate >= GOAL,
            note=f"one run, {fleet.ingest_s:.0f} s into one warehouse, final CHECKPOINT included"
            + (
                f"; {100 * (1 - full_rate / GOAL):.0f} % short: DuckDB's insert (compressing 21"
                " columns) is most of the time and shares 2 cores with the rollups; the table"
                " grows to 166 M rows meanwhile"
                if full_rate < GOAL
                else ""
            ),
        )
    ]
    day = (spec.end - timedelta(days=1)).strftime("%Y-%m-%d")
    with tempfile.TemporaryDirectory(prefix="gpuledger-day-") as tmp:
        day_spool = Path(tmp) / "spool"
        rows = _day_spool(fleet.cfg.spool_dir, day, day_spool)
        runs = [_ingest_seconds(day_spool) for _ in range(REPEAT)]
        secs = statistics.median(s for s, _ in runs)
        assert all(n == rows for _, n in runs), (runs, rows)
        legacy_s, legacy_rows = _ingest_seconds(day_spool, LegacyWarehouse)
    rate = rows / secs
    legacy = legacy_rows / legacy_s
    results += [
        Result(
            f"ingest one fleet day ({rows:,} samples, 48 batches of 115,200)",
            rate,
            "samples/s",
            goal=">= 1,000,000 samples/s",
            met=rate >= GOAL,
            note=f"median of {REPEAT} runs ({secs:.1f} s), fresh warehouse each",
        ),
        Result(
            "same day, ingest path before issue 8 (SQL anti-join + window rollup)",
            legacy,
            "samples/s",
            note=f"one run ({legacy_s:.1f} s); speed-up {rate / legacy:.1f}×",
        ),
    ]
    _, sample = next(host_batches(spec, 0))
    rbr = _row_by_row(sample)
    results += [
        Result(
            f"row-by-row baseline ({ROW_BY_ROW:,} single-row INSERTs)",
            rbr,
            "samples/s",
            note="each sample its own INSERT statement, autocommit",
        ),
        Result("bulk ingest ÷ row-by-row", rate / rbr, "×", note="one fleet day vs the baseline"),
    ]
    with tempfile.TemporaryDirectory(prefix="gpuledger-agent-") as tmp:
        small = Path(tmp) / "spool"
        n = _agent_batches(sample, small, 1000)
        small_runs = [_ingest_seconds(small)[0] for _ in range(REPEAT)]
    small_s = statistics.median(small_runs)
    results.append(
        Result(
            "ingest agent-sized batches (1,000 files × 40 rows)",
            n / small_s,
            "samples/s",
            note=f"median of {REPEAT}: {1000 / small_s:,.0f} files/s; per-file costs dominate",
        )
    )
    return results


if __name__ == "__main__":
    for r in bench():
        print(f"{r.name}: {r.value:,.1f} {r.unit} {r.goal} {r.note}")
