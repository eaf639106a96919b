"""results_workload_evidence (warehouse/evidence.py) from samples as the collectors write them:
one command busy on several GPUs at once is one multi-GPU job (torchrun's ranks share their
command line), distinct commands are independent work, process lives give the short-job figure,
and the minute rollups the activity signal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from tables import spool
from warehouse.evidence import workload_evidence
from warehouse.store import Warehouse

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
MINUTES = 60


def _gpu_rows(host: str, gpus: int, workload: str, *, sm: bool) -> list[dict]:
    return [
        {
            "ts": T0 + timedelta(minutes=m),
            "host": host,
            "gpu_uuid": f"{host}-{g}",
            "gpu_index": g,
            "gpu_model": "NVIDIA A100-SXM4-80GB",
            "util_pct": 90.0,
            "sm_active_pct": 80.0 if sm else None,
            "activity_kind": "gpm" if sm else "nvml_util",
            "mem_used_mib": 20_000.0,
            "mem_total_mib": 81_920.0,
            "power_w": 300.0,
            "workload": workload,
            "source": "test",
        }
        for m in range(MINUTES)
        for g in range(gpus)
    ]


def _process_rows(host: str, gpus: int, workload: str, command, pid) -> list[dict]:
    """One process per GPU each minute: `command(g)` and `pid(g, minute)` name it."""
    return [
        {
            "ts": T0 + timedelta(minutes=m),
            "host": host,
            "gpu_uuid": f"{host}-{g}",
            "pid": pid(g, m),
            "user": "u",
            "command": command(g),
            "used_mib": 19_000.0 + g,
            "sm_pct": 80.0,
            "workload": workload,
            "source": "test",
        }
        for m in range(MINUTES)
        for g in range(gpus)
    ]


@pytest.fixture
def evidence(cfg) -> pl.DataFrame:
    gpu = _gpu_rows("ddp", 4, "train", sm=True) + _gpu_rows("farm", 2, "queue", sm=False)
    procs = _process_rows("ddp", 4, "train", lambda g: "torchrun --nproc=4 t.py", lambda g, m: g)
    procs += _process_rows(
        "farm", 2, "queue", lambda g: f"worker --id={g}", lambda g, m: 100 * g + m // 10
    )
    spool.write_batch(cfg.spool_dir, "gpu_samples", pl.DataFrame(gpu), "test")
    spool.write_batch(cfg.spool_dir, "process_samples", pl.DataFrame(procs), "test")
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        wh.ingest_spool()
        out = workload_evidence(
            wh, T0, T0 + timedelta(hours=1), active_pct=10.0, now=T0 + timedelta(hours=1)
        )
    return out


def test_one_command_busy_on_every_gpu_at_once_is_one_multi_gpu_job(evidence):
    """`train`: the same torchrun command on its 4 GPUs, 90 % busy, in each of 60 minutes: 60
    busy minutes, all 60 multi-GPU, the job spans 4 GPUs; 4 processes (one pid per GPU) each
    seen for 59 minutes (the first to the last sample): 90 % of them lived 3,540 s; SM active
    measured (GPM) in all of its GPU-seconds."""
    train = evidence.filter(pl.col("workload") == "train").row(0, named=True)
    assert (train["busy_minutes"], train["multi_gpu_minutes"], train["job_gpus"]) == (60, 60, 4)
    assert train["processes"] == 4 and train["p90_process_s"] == pytest.approx(59 * 60)
    assert train["max_process_mib"] == pytest.approx(19_003.0)
    assert train["sm_active_share"] == pytest.approx(1.0) and train["util_share"] == 0.0


def test_distinct_commands_are_independent_work_and_short_lives_are_counted(evidence):
    """`queue`: a worker per GPU with its own command line: 60 busy minutes, none multi-GPU, one
    GPU per command; a new pid every 10 minutes on each GPU (2 × 6 = 12 processes, each seen 9
    minutes = 540 s); utilization.gpu only (no SM active)."""
    queue = evidence.filter(pl.col("workload") == "queue").row(0, named=True)
    assert (queue["busy_minutes"], queue["multi_gpu_minutes"], queue["job_gpus"]) == (60, 0, 1)
    assert queue["processes"] == 12 and queue["p90_process_s"] == pytest.approx(540)
    assert queue["sm_active_share"] == 0.0 and queue["util_share"] == pytest.approx(1.0)
