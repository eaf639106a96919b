"""kill -9 at random points, over repeated runs: of the collector (an Agent sampling into its
spool) and of the daemon's writer (ingesting and compacting the spool). No committed sample is
lost and none is counted twice.

A sample is committed once the agent's spool batch holding it is renamed into place; the agent
prints each batch it wrote, so the test knows every batch it must find. The loops are short by
default; GPULEDGER_FAULT_LOOPS=200 (say) runs longer ones (`.ci/run` runs the default).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tables import spool
from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]
LOOPS = int(os.environ.get("GPULEDGER_FAULT_LOOPS", "6"))

# An agent sampling 4 GPUs every 20 ms, flushing every 100 ms, printing each batch it wrote.
AGENT = """
import sys, time
from datetime import datetime
from pathlib import Path
import polars as pl
from collectors.gpu import agent as agent_mod
from tables import spool
from collectors.gpu.agent import Agent
from tables.records import Batch

spool_dir = Path(sys.argv[1])
real = spool.write_batch
def reporting(*a, **k):
    path = real(*a, **k)
    print(path.relative_to(spool_dir), flush=True)
    return path
spool.write_batch = reporting

def sample(now: datetime) -> Batch:
    return Batch(pl.DataFrame({
        "ts": [now] * 4, "host": ["node-k"] * 4, "gpu_uuid": [f"GPU-{i}" for i in range(4)],
        "gpu_model": ["H100"] * 4, "util_pct": [50.0] * 4, "power_w": [300.0] * 4,
        "mem_used_mib": [1.0] * 4, "mem_total_mib": [80.0] * 4, "workload": ["w"] * 4,
    }))

Agent(sample, spool_dir, interval_s=0.02, flush_interval_s=0.1).run()
"""

# The writer: ingest and compact the spool in a loop, as the daemon's jobs do.
WRITER = """
import sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from warehouse.retention import compact_spool
from warehouse.store import Warehouse

db, spool_dir = Path(sys.argv[1]), Path(sys.argv[2])
with Warehouse(db, spool_dir) as wh:
    print("open", flush=True)
    while True:
        wh.ingest_spool()
        compact_spool(wh, min_files=3, now=datetime.now(UTC) + timedelta(days=2))
"""


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "GPULEDGER_CONFIG"}
    out["PYTHONPATH"] = str(ROOT)
    return out


def spool_keys(spool_dir: Path) -> pl.DataFrame:
    files = spool.list_batches(spool_dir, "gpu_samples")
    if not files:
        return pl.DataFrame(schema={"host": pl.String, "gpu_uuid": pl.String})
    return pl.concat([pl.read_parquet(p, columns=["host", "gpu_uuid", "ts"]) for p in files])


def stored(wh: Warehouse) -> tuple[int, int, int]:
    q = wh.db.execute
    return (
        q("SELECT count(*) FROM gpu_samples").fetchall()[0][0],
        q("SELECT count(*) FROM (SELECT DISTINCT host, gpu_uuid, ts FROM gpu_samples)").fetchall()[
            0
        ][0],
        q("SELECT coalesce(sum(samples), 0) FROM gpu_minute").fetchall()[0][0],
    )


@pytest.mark.slow
def test_kill_9_of_the_collector_loses_no_committed_sample(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    rng = random.Random(8)
    reported: list[str] = []
    for _ in range(LOOPS):
        proc = subprocess.Popen(
            [sys.executable, "-c", AGENT, str(spool_dir)],
            cwd=ROOT,
            env=env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.6, 1.6))  # interpreter start-up, then some flushes
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        reported += out.split()
    assert len(reported) >= LOOPS  # each run committed batches before it died
    # Every batch an agent reported is there, whole; a killed write left at most a temp file.
    for rel in reported:
        assert pl.read_parquet(spool_dir / rel).height > 0
    finished = spool.list_batches(spool_dir, "gpu_samples")
    assert {str(p.relative_to(spool_dir)) for p in finished} >= set(reported)
    keys = spool_keys(spool_dir)
    with Warehouse(tmp_path / "w.duckdb", spool_dir) as wh:
        wh.ingest_spool()
        rows, distinct, minute_samples = stored(wh)
    assert rows == distinct == minute_samples == keys.unique().height == keys.height


@pytest.mark.slow
def test_kill_9_of_the_writer_never_loses_or_doubles_a_sample(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    db = tmp_path / "w.duckdb"
    rng = random.Random(9)
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    written = 0
    kills_inside = 0
    for loop in range(LOOPS):
        # New batches keep arriving, big enough that an ingest takes a noticeable time.
        for b in range(4):
            start = t0 + timedelta(seconds=(loop * 4 + b) * 3000)
            frame = pl.DataFrame(
                {
                    "ts": [start + timedelta(seconds=i // 8) for i in range(24_000)],
                    "host": ["node-w"] * 24_000,
                    "gpu_uuid": [f"GPU-{i % 8}" for i in range(24_000)],
                    "util_pct": [float(i % 100) for i in range(24_000)],
                    "workload": ["w"] * 24_000,
                },
                schema_overrides={"ts": pl.Datetime("us", "UTC")},
            )
            when = t0 + timedelta(days=loop % 3)
            spool.write_batch(spool_dir, "gpu_samples", frame, "node-w", now=when)
            written += frame.height
        if loop % 3 == 0:  # and a batch repeated, as a re-import would
            again = spool.list_batches(spool_dir, "gpu_samples")[0]
            spool.write_batch(spool_dir, "gpu_samples", pl.read_parquet(again), "node-w")
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(spool_dir)],
            cwd=ROOT,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "open", proc.stderr.read()
        time.sleep(rng.uniform(0.05, 1.5))  # somewhere inside an ingest or a compaction
        kills_inside += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert kills_inside == LOOPS
    keys = spool_keys(spool_dir)
    assert keys.unique().height == written  # the spool holds every sample (merged or not)
    with Warehouse(db, spool_dir) as wh:
        wh.ingest_spool()
        rows, distinct, minute_samples = stored(wh)
        taken = wh.ingest_spool()
    assert rows == distinct == minute_samples == written
    assert taken.files == 0
