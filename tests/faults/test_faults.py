"""Faults short of a kill: the spool's disk full, the warehouse held by another process, the
wall clock stepping while the agent runs, a GPU falling off the bus mid-run."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from cli.main import main
from collectors.gpu import agent as agent_mod
from collectors.gpu.agent import Agent
from config.settings import Config
from tables import files, spool
from tables.records import Batch
from tests.disks import fill, tmpfs
from warehouse.snapshot import Snapshot
from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]
GPUS = 4


def sample(now: datetime) -> Batch:
    return Batch(
        pl.DataFrame(
            {
                "ts": [now] * GPUS,
                "host": ["node-f"] * GPUS,
                "gpu_uuid": [f"GPU-{i}" for i in range(GPUS)],
                "util_pct": [float(10 * i) for i in range(GPUS)],
                "workload": ["w"] * GPUS,
            }
        )
    )


def spool_frame(spool_dir: Path) -> pl.DataFrame:
    files = spool.list_batches(spool_dir, "gpu_samples")
    return pl.concat([pl.read_parquet(p) for p in files]) if files else pl.DataFrame()


# Disk full ---------------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB tmpfs; skipped where mounting is not allowed."""
    with tmpfs(tmp_path / "tiny", "1m", "; see the fallback test") as mount:
        yield mount


def test_a_full_spool_disk_keeps_samples_in_memory_says_so_and_recovers(
    tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir = tiny_disk / "spool"
    agent = Agent(sample, spool_dir)
    agent.tick()
    assert agent.flush() == 1  # the disk works
    filler = fill(tiny_disk)
    with caplog.at_level(logging.ERROR, logger="collectors.gpu.agent"):
        for _ in range(3):
            agent.tick()
            assert agent.flush() == 0  # a real ENOSPC from the kernel
    said = [r.getMessage() for r in caplog.records]
    assert said and all("spool write failed" in m and "keeping" in m for m in said), said
    assert "No space left on device" in said[0]
    assert not list(spool_dir.rglob(".tmp-*"))  # no half-written batch left behind
    filler.unlink()
    agent.tick()
    assert agent.flush() == 1
    rows = spool_frame(spool_dir)
    assert rows.height == 5 * GPUS  # the 3 ticks of the outage and the one after: all there
    assert rows.select("ts", "gpu_uuid").unique().height == rows.height


def test_a_full_disk_fallback_without_a_tmpfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Where no tmpfs can be mounted: os.replace raises ENOSPC as a full disk would."""
    real = os.replace

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    agent = Agent(sample, tmp_path / "spool")
    monkeypatch.setattr(files.os, "replace", full)
    with caplog.at_level(logging.ERROR, logger="collectors.gpu.agent"):
        agent.tick()
        assert agent.flush() == 0
    assert "keeping 4 rows in memory" in caplog.text
    monkeypatch.setattr(files.os, "replace", real)
    agent.tick()
    assert agent.flush() == 1
    assert spool_frame(tmp_path / "spool").height == 2 * GPUS


def test_the_memory_buffer_keeps_the_newest_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = Agent(sample, tmp_path / "spool", max_buffered_rows=3 * GPUS)
    times = [datetime(2026, 3, 2, tzinfo=UTC) + timedelta(seconds=i) for i in range(6)]

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "write_batch", full)
    for t in times:
        agent._buffer.setdefault("gpu_samples", []).append(sample(t).gpu_samples)
        agent.flush()
    monkeypatch.undo()
    agent.flush()
    kept = spool_frame(tmp_path / "spool")["ts"].unique().sort().to_list()
    assert kept == times[-3:]


def test_dropping_buffered_samples_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    agent = Agent(sample, tmp_path / "spool", max_buffered_rows=GPUS)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "write_batch", full)
    with caplog.at_level(logging.WARNING, logger="collectors.gpu.agent"):
        agent.tick()
        agent.tick()
        agent.flush()
    assert "dropp" in caplog.text.lower()


# The warehouse held by another process -----------------------------------------------------------
HOLD_WRITER = """
import sys, time
from pathlib import Path
from warehouse.store import Warehouse
with Warehouse(Path(sys.argv[1]), Path(sys.argv[2])):
    print("held", flush=True)
    sys.stdin.readline()
"""
HOLD_FILE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
"""


def samples_csv() -> str:
    """Two samples of an hour ago by the (pinned) clock, inside the snapshot's window."""
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    rows = [
        f"{(t + timedelta(seconds=10 * i)).isoformat()},node-l,GPU-l,H100,50,1000,81559,300,train"
        for i in range(2)
    ]
    head = "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,workload"
    return "\n".join([head, *rows]) + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("holder", ["gpuledger writer", "another DuckDB program"])
def test_a_held_warehouse_shows_no_error_and_the_data_arrives_later(
    holder: str, cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: datetime
) -> None:
    db = str(cfg.db_path)
    assert main(["init", "--db", db]) == 0  # a published (empty) snapshot
    capsys.readouterr()
    script = HOLD_WRITER if holder == "gpuledger writer" else HOLD_FILE
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, db, str(cfg.spool_dir)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        csv = tmp_path / "late.csv"
        csv.write_text(samples_csv())
        code = main(["import", "samples", str(csv), "--db", db, "--format", "json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "queued in the spool" in out
        assert "Traceback" not in err and "error" not in err.lower()
        # The dashboard keeps reading the snapshot meanwhile.
        snap = Snapshot(cfg.snapshot_path)
        assert snap.sample_count() == 0
        snap.close()
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    assert main(["run", "--once", "--db", db]) == 0
    snap = Snapshot(cfg.snapshot_path)
    assert snap.sample_count() == 2
    snap.close()


# The wall clock steps while the agent runs ------------------------------------------------------
class SteppingWall:
    """datetime stand-in: wall time = start + monotonic time + a step applied at a given tick."""

    def __init__(self, clock: list[float], start: datetime, at: float, step_s: float) -> None:
        self.clock, self.start, self.at, self.step = clock, start, at, step_s

    def now(self, tz=None) -> datetime:
        t = self.clock[0]
        return self.start + timedelta(seconds=t + (self.step if t >= self.at else 0.0))


def run_agent_with_step(tmp_path: Path, step_s: float, monkeypatch) -> tuple[Agent, Path]:
    """120 one-second ticks on a monotonic schedule; the wall clock steps by `step_s` at 60."""
    clock = [0.0]
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    monkeypatch.setattr(agent_mod, "datetime", SteppingWall(clock, start, 60.0, step_s))
    spool_dir = tmp_path / "spool"
    agent = Agent(sample, spool_dir, interval_s=1.0, flush_interval_s=10.0, clock=lambda: clock[0])

    def wait(delay: float) -> bool:
        clock[0] += delay
        if clock[0] >= 120.0:
            agent.stop_event.set()
        return agent.stop_event.is_set()

    agent.stop_event.wait = wait  # type: ignore[method-assign]
    agent.run()
    return agent, spool_dir


def test_a_backward_clock_step_keeps_every_sample_and_counts_none_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, spool_dir = run_agent_with_step(tmp_path, -30.25, monkeypatch)
    assert agent.ticks == 120  # the schedule follows the monotonic clock, not the wall
    rows = spool_frame(spool_dir)
    ts = rows.filter(pl.col("gpu_uuid") == "GPU-0")["ts"]
    assert ts.len() == 120
    # Samples keep their wall time: after the step the clock reads 30.25 s earlier again.
    assert ts.max() - ts.min() == timedelta(seconds=88.75)
    with Warehouse(tmp_path / "w.duckdb", spool_dir) as wh:
        wh.ingest_spool()
        stored = wh.db.execute("SELECT count(*) FROM gpu_samples").fetchall()[0][0]
        seconds = wh.db.execute(
            "SELECT sum(seconds) FROM gpu_minute WHERE gpu_uuid = 'GPU-0'"
        ).fetchall()[0][0]
    # Every sample stored once; the 30 repeated wall seconds hold two samples each, so the
    # GPU time of the span is counted once: about 90 s of wall time, not 120 (documented in
    # docs/multi-host.md). A sample whose wall time equals an earlier one's to the microsecond
    # would be taken for the same sample: the step here is not a whole number of seconds.
    assert stored == 120 * GPUS
    assert seconds == pytest.approx(90.0, abs=1.0)


def test_a_forward_clock_step_leaves_a_capped_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, spool_dir = run_agent_with_step(tmp_path, 3600.0, monkeypatch)
    assert agent.ticks == 120
    with Warehouse(tmp_path / "w.duckdb", spool_dir) as wh:
        wh.ingest_spool()
        stored = wh.db.execute("SELECT count(*) FROM gpu_samples").fetchall()[0][0]
        seconds = wh.db.execute(
            "SELECT sum(seconds) FROM gpu_minute WHERE gpu_uuid = 'GPU-0'"
        ).fetchall()[0][0]
    # The hour the clock skipped is a gap like any other: capped at 2 x 1 s. 119 x 1 s + 2 s.
    assert stored == 120 * GPUS
    assert seconds == pytest.approx(121.0)


# A GPU falls off the bus in the middle of a run -------------------------------------------------
def test_a_gpu_lost_mid_run_becomes_a_health_record_and_the_rest_is_sampled(
    tmp_path: Path,
) -> None:
    from collectors.gpu.nvml import NvmlCollector
    from tests.collectors.gpu import fake_nvml as fk

    clock = fk.FakeClock()
    fake = fk.ISSUE_SCENARIOS["gpu_lost_mid_run"](clock)
    proc_root = fk.write_scenario_procs(tmp_path / "proc")
    collector = NvmlCollector(
        "node-lost", nvml=fake, proc_root=proc_root, clock=clock.monotonic, sleep=clock.sleep
    )
    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    ticks = iter(range(10))

    def sample_at(_now: datetime) -> Batch:
        i = next(ticks)
        batch = collector.sample(start + timedelta(seconds=i))
        clock.advance(1.0)
        return batch

    agent = Agent(sample_at, tmp_path / "spool")
    with collector:
        for _ in range(10):
            agent.tick()
        agent.flush()
    assert (agent.ticks, agent.errors) == (10, 0)
    with Warehouse(tmp_path / "w.duckdb", tmp_path / "spool") as wh:
        wh.ingest_spool()
        per_gpu = dict(
            wh.db.execute("SELECT gpu_uuid, count(*) FROM gpu_samples GROUP BY 1").fetchall()
        )
        health = wh.db.execute("SELECT DISTINCT gpu_uuid, kind FROM health").fetchall()
    assert per_gpu == {"GPU-h100-lost-0": 10, "GPU-h100-lost-1": 1}
    assert health == [("GPU-h100-lost-1", "gpu_lost")]
    shutil.rmtree(tmp_path / "proc")
