"""DESIGN.md §1 with two real processes: one writer ingesting and publishing in a loop, one reader
querying the snapshot meanwhile. The reader never errs, never meets the writer's lock, never
sees a count go backwards or a half-published file, and ends on what the writer wrote."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.settings import Config
from tables import spool
from warehouse.snapshot import Snapshot, publish
from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]
GPUS = 4
PER_GPU = 3  # samples per GPU per batch
BATCH = GPUS * PER_GPU
MIN_PUBLISHES = 20
READS = 1000

# Shared by the test and the writer process: batch `i` of GPU samples, each key (host, gpu, ts)
# new, all within the last day so the snapshot keeps them.
BATCH_CODE = f"""
import polars as pl
from datetime import timedelta

def batch(base, i):
    rows = [
        (base + timedelta(seconds=10 * (i * {PER_GPU} + j)), f"GPU-{{g}}", g)
        for g in range({GPUS})
        for j in range({PER_GPU})
    ]
    return pl.DataFrame(
        {{
            "ts": [r[0] for r in rows],
            "host": ["node-1"] * len(rows),
            "gpu_uuid": [r[1] for r in rows],
            "gpu_index": [r[2] for r in rows],
            "gpu_model": ["H100"] * len(rows),
            "util_pct": [float(i % 100)] * len(rows),
            "mem_used_mib": [1000.0] * len(rows),
            "mem_total_mib": [81559.0] * len(rows),
            "power_w": [300.0] * len(rows),
            "workload": ["train"] * len(rows),
            "source": ["test"] * len(rows),
        }},
        schema_overrides={{"ts": pl.Datetime("us", "UTC"), "gpu_index": pl.Int32}},
    )
"""

WRITER = (
    BATCH_CODE
    + """
import json, sys, time
from datetime import datetime
from pathlib import Path
from tables import spool
from warehouse.snapshot import publish
from warehouse.store import Warehouse

db, spool_dir, snap, reader_done, base = sys.argv[1:6]
min_publishes, deadline = int(sys.argv[6]), time.monotonic() + float(sys.argv[7])
base = datetime.fromisoformat(base)
publishes, written, cycle_s = 0, 0, []
with Warehouse(Path(db), Path(spool_dir)) as wh:
    written = wh.db.execute("SELECT count(*) FROM gpu_samples").fetchall()[0][0]
    print("ready", flush=True)
    i = 1
    while time.monotonic() < deadline:
        if publishes >= min_publishes and Path(reader_done).exists():
            break
        t = time.monotonic()
        spool.write_batch(Path(spool_dir), "gpu_samples", batch(base, i), "node-1")
        written += wh.ingest_spool().rows.get("gpu_samples", 0)
        publish(wh, Path(snap), days=2)
        publishes += 1
        cycle_s.append(time.monotonic() - t)
        i += 1
    stored = wh.db.execute("SELECT count(*) FROM gpu_samples").fetchall()[0][0]
print(json.dumps({"publishes": publishes, "written": written, "stored": stored,
                  "cycle_s": sum(cycle_s) / max(1, len(cycle_s))}), flush=True)
"""
)

READER = """
import json, sys, time
from pathlib import Path
from warehouse.snapshot import Snapshot

snap_path, reads, done = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
snap = Snapshot(snap_path)
counts, errors, files = [], [], set()
t0 = time.monotonic()
for _ in range(reads):
    try:
        counts.append(snap.sample_count())
        files.add(snap._ident)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    time.sleep(0.002)  # spread the reads over the writer's cycles
elapsed = time.monotonic() - t0
snap.close()
done.touch()
print(json.dumps({"counts": counts, "errors": errors[:20], "n_errors": len(errors),
                  "files_seen": len(files), "elapsed_s": elapsed}), flush=True)
"""


@pytest.mark.slow
def test_reader_and_writer_in_two_processes(cfg: Config, tmp_path: Path) -> None:
    started = time.monotonic()
    namespace: dict = {}
    exec(BATCH_CODE, namespace)  # the same batches the writer writes
    # The real clock: the writer is another process, out of the pinned clock's reach (hours
    # ago only, never a date).
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    # A first snapshot, published before the reader starts (as `gpuledger run` does at start).
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        spool.write_batch(cfg.spool_dir, "gpu_samples", namespace["batch"](base, 0), "node-1")
        wh.ingest_spool()
        publish(wh, cfg.snapshot_path, days=2)
    assert Snapshot(cfg.snapshot_path).sample_count() == BATCH

    done = tmp_path / "reader-done"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(cfg.db_path), str(cfg.spool_dir)]
        + [str(cfg.snapshot_path), str(done), base.isoformat(), str(MIN_PUBLISHES), "25"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = None
    try:
        assert writer.stdout is not None
        line = writer.stdout.readline().strip()
        assert line == "ready", writer.stderr.read() if writer.stderr else line
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(cfg.snapshot_path), str(READS), str(done)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        r_out, r_err = reader.communicate(timeout=60)
        w_out, w_err = writer.communicate(timeout=60)
    finally:
        for proc in (writer, reader):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert reader.returncode == 0, r_err
    assert writer.returncode == 0, w_err
    read = json.loads(r_out)
    wrote = json.loads(w_out)
    elapsed = time.monotonic() - started

    counts = read["counts"]
    assert read["n_errors"] == 0, read["errors"]
    assert len(counts) == READS
    assert all(a <= b for a, b in zip(counts, counts[1:], strict=False)), "count went back"
    # Every count is a whole published state: the first batch plus k later batches.
    assert {c % BATCH for c in counts} == {0}
    assert len(set(counts)) > 1, "the reader never saw a publish: no overlap"
    assert read["files_seen"] > 1
    assert wrote["publishes"] >= MIN_PUBLISHES
    total = BATCH * (wrote["publishes"] + 1)
    assert wrote["written"] == wrote["stored"] == total
    assert counts[-1] <= total
    final = Snapshot(cfg.snapshot_path)
    assert final.sample_count() == total
    final.close()
    print(
        f"\ntwo processes: {wrote['publishes']} publishes "
        f"(~{wrote['cycle_s'] * 1000:.0f} ms per ingest+publish), {len(counts)} reads "
        f"in {read['elapsed_s']:.1f} s, {len(set(counts))} distinct counts, "
        f"{read['files_seen']} snapshot files opened, total {elapsed:.1f} s"
    )
    assert elapsed < 60
