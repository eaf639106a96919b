"""What a workload asks of its GPUs, hour by hour (its `Load`): how many GPUs its processes
held at once, how busy they were in its busiest hours, how much memory it used in total and per
process, whether its GPUs work as one multi-GPU job or independently, which hours of the week it
is active in, and whether its work may be interrupted.

Sizing (advisor/recommend/sizing.py) reads it to consolidate independent or idle GPUs onto fewer,
smaller ones and to keep a multi-GPU job whole; the schedule and hybrid options read its active
hours and its hourly curve.

Evidence beyond the hourly attribution comes from `results_workload_evidence`
(warehouse/evidence.py): the activity signal of its minutes and, from the raw process samples
(kept [retention] raw_days, default 14), whether one command was busy on several of its GPUs in
the same minute, its largest process and how long its processes lived. Where no process samples
exist, the hourly co-activity of its GPUs decides, and the reasons say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast

import polars as pl

from advisor.costs import pct
from advisor.recommend.params import Params
from advisor.recommend.usage import Window, hour_of_week
from tables.units import MIB_PER_GIB

# How a workload's GPUs work together (the `assumption` of its recommendation).
SINGLE, MULTI_GPU, INDEPENDENT, IDLE_GPUS, UNKNOWN = (
    "single_gpu",
    "multi_gpu_job",
    "independent",
    "idle_gpus",
    "unknown",
)
# A workload is one multi-GPU job where one command was busy on several of its GPUs in the same
# minute in at least this share of its busy minutes (process samples) ...
MULTI_GPU_SHARE = 0.5
# ... counted only over at least this many busy minutes (less is no evidence either way);
MIN_EVIDENCE_MINUTES = 30
# and, without process samples, where its GPUs were active together in this share of its active
# hours (conservative: independent work that always runs on every GPU at once looks the same).
CO_ACTIVE_SHARE = 0.8
# Short independent jobs may run on spot capacity when at least this many processes were seen.
MIN_SHORT_JOBS = 5


@dataclass
class Load:
    """A workload's demand on its GPUs over the window (see the module docstring)."""

    process_gpus: int  # GPUs with its processes at once (the most in one hour)
    busy_p95: float | None  # GPU-equivalents busy in its busiest hours (p95); None: unknown
    memory_total_gib: float | None  # most memory in use at once over all its GPUs
    process_memory_gib: float | None  # its largest process (process samples), else per GPU
    shape: str  # SINGLE | MULTI_GPU | INDEPENDENT | IDLE_GPUS | UNKNOWN
    shape_words: str
    job_gpus: int  # GPUs one job spans at once (a multi-GPU job); else 1
    curve: list[float] = field(default_factory=list)  # GPUs with a process, each window hour
    active_how: frozenset[int] = frozenset()  # hours of the week it was active in
    interruptible: bool = False
    interruptible_words: str = ""
    signal: str = "unknown"  # sm_active | utilization | none | unknown (no evidence)
    process_evidence: bool = False  # process samples said how its GPUs work together


def measure_load(
    rows: pl.DataFrame,
    window: Window,
    params: Params,
    evidence: dict | None,
    *,
    interruptible: bool = False,
) -> Load:
    """The load of one workload from its hourly `rows` where it runs (hour, gpu_uuid, idle,
    seconds, busy_seconds, activity_seconds, mem_peak_mib) and its `evidence` row (or None)."""
    hours = _per_hour(rows, params)
    held = hours.filter(pl.col("held") > 0)
    process_gpus = int(cast(int | None, held["gpus_used"].max()) or 0)
    shape, words, job_gpus, from_processes = _shape(held, process_gpus, evidence, params)
    spot, spot_words = _interruptible(shape, evidence, params, listed=interruptible)
    return Load(
        process_gpus=max(process_gpus, 1),
        busy_p95=_busy_p95(held),
        memory_total_gib=_memory_total(hours),
        process_memory_gib=_process_memory(rows, evidence),
        shape=shape,
        shape_words=words,
        job_gpus=job_gpus,
        curve=_curve(hours, window),
        active_how=_active_hours_of_week(hours),
        interruptible=spot,
        interruptible_words=spot_words,
        signal=_signal(evidence, held),
        process_evidence=from_processes,
    )


def _per_hour(rows: pl.DataFrame, params: Params) -> pl.DataFrame:
    """Per hour: GPU-hours held, with a process (`used`), GPUs with a process, busy and known
    GPU-hours, memory in use over its GPUs, GPUs active, and whether the hour was active."""
    share = params.active_hour_busy_pct / 100.0
    used = ~pl.col("idle")
    gpu_active = used & (pl.col("activity_seconds") > 0)
    gpu_active = gpu_active & (pl.col("busy_seconds") >= pl.col("activity_seconds") * share)
    return (
        rows.group_by("hour")
        .agg(
            held=pl.col("seconds").sum() / 3600.0,
            used=pl.col("seconds").filter(used).sum() / 3600.0,
            gpus_used=pl.col("gpu_uuid").filter(used & (pl.col("seconds") > 0)).n_unique(),
            busy=pl.col("busy_seconds").sum() / 3600.0,
            known=pl.col("activity_seconds").sum() / 3600.0,
            mem_mib=pl.col("mem_peak_mib").filter(used).sum(),
            mem_readings=pl.col("mem_peak_mib").filter(used).count(),
            gpus_active=pl.col("gpu_uuid").filter(gpu_active).n_unique(),
        )
        .with_columns(
            # The duty-cycle rule: busy at least active_hour_busy_pct of its held time; an hour
            # without an activity signal counts as active (no evidence that it idled).
            active=(pl.col("known") <= 0) | (pl.col("busy") >= pl.col("known") * share),
        )
        .sort("hour")
    )


def _busy_p95(held: pl.DataFrame) -> float | None:
    """GPU-equivalents busy in its busiest hours: the 95th percentile (linear) over the hours it
    held GPUs with an activity signal of busy ÷ known × held GPU-hours."""
    known = held.filter(pl.col("known") > 0)
    if known.height == 0:
        return None
    per_hour = known["busy"] / known["known"] * known["held"]
    return float(per_hour.quantile(0.95, interpolation="linear") or 0.0)


def _memory_total(hours: pl.DataFrame) -> float | None:
    """The most memory its processes held at once over all its GPUs (GiB); None: never read."""
    read = hours.filter(pl.col("mem_readings") > 0)
    if read.height == 0:
        return None
    return float(cast(float | None, read["mem_mib"].max()) or 0.0) / MIB_PER_GIB


def _process_memory(rows: pl.DataFrame, evidence: dict | None) -> float | None:
    """Its largest process (GiB): from the process samples where there are any, else the most
    one GPU of it held (a GPU's memory is at least one process's)."""
    if evidence and evidence.get("max_process_mib"):
        return float(evidence["max_process_mib"]) / MIB_PER_GIB
    peak = rows.filter(~pl.col("idle"))["mem_peak_mib"].max()
    return None if peak is None else float(peak) / MIB_PER_GIB  # type: ignore[arg-type]


def _curve(hours: pl.DataFrame, window: Window) -> list[float]:
    """GPUs with its processes in each hour of the window, 0 where it held none."""
    per_hour = dict(hours.select("hour", "used").iter_rows())
    start = window.start
    out = []
    for i in range(int(window.hours)):
        out.append(float(per_hour.get(start + timedelta(hours=i), 0.0)))
    return out


def _active_hours_of_week(hours: pl.DataFrame) -> frozenset[int]:
    """The hours of the week (Monday 00:00 = 0) in which it was active in at least one week."""
    active = hours.filter((pl.col("used") > 0) & pl.col("active"))
    if active.height == 0:
        return frozenset()
    return frozenset(int(h) for h in active.select(how=hour_of_week())["how"].unique())


# How its GPUs work together -----------------------------------------------------------------
def _shape(
    held: pl.DataFrame, process_gpus: int, evidence: dict | None, params: Params
) -> tuple[str, str, int, bool]:
    """(shape, the reason in words, GPUs one job spans, whether process samples decided)."""
    if process_gpus <= 1:
        return SINGLE, "its processes held one GPU at a time", 1, False
    known = held.filter(pl.col("known") > 0)
    if known.height == 0:
        return (
            UNKNOWN,
            f"busy unknown (no activity signal): each of the {process_gpus} GPUs its processes "
            "held at once is kept",
            process_gpus,
            False,
        )
    measured = _shape_from_processes(evidence, process_gpus)
    if measured is not None:
        return (*measured, True)
    return (*_shape_from_hours(held, process_gpus, params), False)


def _shape_from_processes(evidence: dict | None, process_gpus: int) -> tuple[str, str, int] | None:
    """From the process samples: one command busy on several GPUs at once (one job), or not."""
    if not evidence or (evidence.get("busy_minutes") or 0) < MIN_EVIDENCE_MINUTES:
        return None
    busy, multi = int(evidence["busy_minutes"]), int(evidence.get("multi_gpu_minutes") or 0)
    share = multi / busy
    words = (
        f"in {multi:,} of its {busy:,} busy minutes ({pct(share)}) of process samples one "
        f"command was busy on several of its GPUs at once"
    )
    if share >= MULTI_GPU_SHARE:
        gpus = max(int(evidence.get("job_gpus") or process_gpus), 2)
        return (
            MULTI_GPU,
            f"one multi-GPU job: {words} (NCCL-style ranks, one per GPU), so it keeps "
            f"{gpus} GPUs together",
            gpus,
        )
    return INDEPENDENT, f"independent work: {words}, under {pct(MULTI_GPU_SHARE)}", 1


def _shape_from_hours(
    held: pl.DataFrame, process_gpus: int, params: Params
) -> tuple[str, str, int]:
    """Without process samples: its GPUs' hourly activity together (never busy: idle GPUs)."""
    active = held.filter(pl.col("gpus_active") >= 1)
    no_processes = "no process samples in the window (raw ones are kept 14 days)"
    if active.height == 0:
        return (
            IDLE_GPUS,
            f"idle GPUs: never busy {params.active_hour_busy_pct:g} % of an hour on any of them "
            f"({no_processes}), so nothing needs them together",
            1,
        )
    together = active.filter(pl.col("gpus_active") >= 2).height / active.height
    words = f"its GPUs were busy together in {pct(together)} of its active hours"
    if together >= CO_ACTIVE_SHARE:
        return (
            MULTI_GPU,
            f"assumed one multi-GPU job: {words} and {no_processes} to show otherwise; kept "
            f"whole ({process_gpus} GPUs), conservatively",
            process_gpus,
        )
    return INDEPENDENT, f"independent work: {words} ({no_processes})", 1


def _interruptible(
    shape: str, evidence: dict | None, params: Params, *, listed: bool
) -> tuple[bool, str]:
    """Whether spot capacity fits: listed in [workloads] interruptible, or measured short
    independent jobs (each process lived at most [advisor] spot_max_job_minutes, p90)."""
    if listed:
        return True, "listed in [workloads] interruptible"
    if shape == MULTI_GPU or not evidence:
        return False, ""
    processes = int(evidence.get("processes") or 0)
    p90 = evidence.get("p90_process_s")
    if processes < MIN_SHORT_JOBS or p90 is None:
        return False, ""
    minutes = float(p90) / 60.0
    if minutes > params.spot_max_job_minutes:
        return False, ""
    return True, (
        f"short independent jobs: 90 % of its {processes:,} processes ran {math.ceil(minutes)} "
        f"min or less (≤ {params.spot_max_job_minutes:g} min), so an interrupted one is cheap "
        "to run again"
    )


def _signal(evidence: dict | None, held: pl.DataFrame) -> str:
    """The activity signal its busy time was measured with."""
    if held.height and float(held["known"].sum()) <= 0:
        return "none"
    if not evidence or evidence.get("sm_active_share") is None:
        return "unknown"
    if float(evidence["sm_active_share"]) >= 0.5:
        return "sm_active"
    return "utilization"
