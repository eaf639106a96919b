"""The demo fleet: a seeded, deterministic simulation of a small AI team's GPUs and cloud bill.

It emits exactly what the real collectors emit (gpu_samples with workloads, process_samples,
FOCUS-shaped billing rows), through the same spool, so every later stage runs on it unchanged.
docs/demo-fleet.md describes each workload and the recommendation it is built to provoke.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from collectors.gpu.sources import Sampler, SourceSettings
from tables.records import Batch, conform
from tables.units import MIB_PER_GIB, activity

ACCOUNT = "111122223333"
_NS = uuid.UUID("6f1c1c5e-8a5b-4e35-9a57-4c1f0d9b2a11")


@dataclass(frozen=True)
class DemoGpu:
    host: str
    index: int
    model: str
    mem_total_mib: float
    idle_w: float
    max_w: float
    workload: str
    pattern: str
    gpm: bool = False  # Hopper: the agent reads SM active through GPM

    @property
    def uuid(self) -> str:
        return f"GPU-{uuid.uuid5(_NS, f'{self.host}/{self.index}')}"


@dataclass(frozen=True)
class DemoInstance:
    resource_id: str
    instance_type: str
    workload: str
    usd_per_hour: float
    pattern: str  # when the instance runs (and is billed)


def _gpus(
    host: str,
    n: int,
    model: str,
    mem_gib: float,
    idle_w: float,
    max_w: float,
    workloads: list[tuple[str, str]],
    gpm: bool = False,
) -> list[DemoGpu]:
    return [
        DemoGpu(host, i, model, mem_gib * MIB_PER_GIB, idle_w, max_w, w, p, gpm)
        for i, (w, p) in enumerate(workloads[:n])
    ]


P4D, G5, P5, G6E = (
    "i-0d3a9c1e5b7f20001",
    "i-0d3a9c1e5b7f20002",
    "i-0d3a9c1e5b7f20003",
    "i-0d3a9c1e5b7f20004",
)

FLEET: tuple[DemoGpu, ...] = tuple(
    _gpus(
        "dgx-a100",
        8,
        "A100-80GB",
        80,
        60,
        400,
        [("batch-queue", "saturated")] * 6
        + [("chat-inference", "small_inference")]
        + [("batch-queue", "saturated")],
    )
    + _gpus("ws-4090", 2, "RTX 4090", 24, 25, 450, [("vision-dev", "office_hours")] * 2)
    + _gpus(P4D, 8, "A100-40GB", 40, 55, 400, [("llm-pretrain", "continuous")] * 8)
    + _gpus(G5, 1, "A10G", 24, 20, 150, [("clinical-nlp", "steady_half")])
    + _gpus(P5, 1, "H100", 80, 70, 700, [("research-notebook", "notebook")], gpm=True)
    + _gpus(G6E, 4, "L40S", 48, 35, 350, [("weekly-sweep", "weekly_burst")] * 4)
)

INSTANCES: tuple[DemoInstance, ...] = (
    DemoInstance(P4D, "p4d.24xlarge", "llm-pretrain", 21.96, "always"),
    DemoInstance(G5, "g5.xlarge", "clinical-nlp", 1.006, "always"),
    DemoInstance(P5, "p5.4xlarge", "research-notebook", 6.88, "always"),
    DemoInstance(G6E, "g6e.12xlarge", "weekly-sweep", 10.49, "saturday"),
)

HOSTS = tuple(sorted({g.host for g in FLEET}))


# Time helpers (vectorized over epoch seconds, UTC) ---------------------------------------------
def _hour(t: np.ndarray) -> np.ndarray:
    return (t % 86400) / 3600.0


def _weekday(t: np.ndarray) -> np.ndarray:
    return ((t // 86400) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0


def _office(t: np.ndarray) -> np.ndarray:
    h = _hour(t)
    return (_weekday(t) < 5) & (h >= 9) & (h < 19)


def _saturday_run(t: np.ndarray) -> np.ndarray:
    h = _hour(t)
    return (_weekday(t) == 5) & (h >= 6) & (h < 16)


def _notebook_burst(t: np.ndarray) -> np.ndarray:
    h = _hour(t)
    return (_weekday(t) < 5) & (((h >= 10) & (h < 11)) | ((h >= 14) & (h < 15.5)))


RUNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "always": lambda t: np.ones(t.shape, dtype=bool),
    "saturday": _saturday_run,
}


@dataclass
class Readings:
    present: np.ndarray  # the GPU exists at t (its instance runs)
    busy: np.ndarray  # a process of the workload holds the GPU
    util: np.ndarray
    sm_active: np.ndarray | None
    mem_used: np.ndarray


def _readings(gpu: DemoGpu, t: np.ndarray, rng: np.random.Generator) -> Readings:
    n: int = t.shape[0]
    noise = rng.normal(0.0, 1.0, n)
    mem = gpu.mem_total_mib
    present = np.ones(n, dtype=bool)
    busy = np.ones(n, dtype=bool)
    sm = None
    if gpu.pattern == "saturated":
        # queued jobs back to back; a 2-minute gap between jobs every ~6 hours
        switching = ((t // 60) % 360) < 2
        util = np.where(switching, 3.0, 95.0 + 2.5 * noise)
        mem_used = np.where(switching, 500.0, mem * (0.78 + 0.05 * np.sin(t / 5400.0)))
    elif gpu.pattern == "small_inference":
        util = 15.0 + 7.0 * np.sin((_hour(t) - 8) / 24 * 2 * np.pi) + 2.5 * noise
        mem_used = 9.0 * MIB_PER_GIB + 150.0 * noise
    elif gpu.pattern == "office_hours":
        busy = _office(t)
        util = np.where(busy, 62.0 + 14.0 * noise, 0.0)
        mem_used = np.where(busy, 19.5 * MIB_PER_GIB + 500.0 * noise, 310.0)
    elif gpu.pattern == "continuous":
        util = 97.0 + 1.5 * noise
        mem_used = mem * 0.96 + 120.0 * noise
    elif gpu.pattern == "steady_half":
        util = 41.0 + 8.0 * noise
        mem_used = 14.0 * MIB_PER_GIB + 200.0 * noise
    elif gpu.pattern == "notebook":
        burst = _notebook_burst(t)
        util = np.where(burst, 72.0 + 9.0 * noise, np.abs(1.2 * noise))
        sm = np.where(burst, 47.0 + 8.0 * noise, np.abs(0.4 * noise))
        mem_used = 30.0 * MIB_PER_GIB + 80.0 * noise
    elif gpu.pattern == "weekly_burst":
        present = _saturday_run(t)
        util = 88.0 + 5.0 * noise
        mem_used = 40.0 * MIB_PER_GIB + 300.0 * noise
    else:  # pragma: no cover - the fleet table names only the patterns above
        raise ValueError(gpu.pattern)
    util = np.clip(util, 0.0, 100.0)
    if sm is not None:
        sm = np.clip(np.minimum(sm, util), 0.0, 100.0)
    mem_used = np.clip(mem_used, 0.0, mem)
    return Readings(present, busy, util, sm, mem_used)


def gpu_frame(gpu: DemoGpu, t: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """Samples of one GPU at epoch seconds `t` (rows only where the GPU exists)."""
    r = _readings(gpu, t, rng)
    keep = r.present
    if not keep.any():
        return conform(pl.DataFrame(), "gpu_samples")
    util = r.util[keep]
    power = gpu.idle_w + (gpu.max_w - gpu.idle_w) * (util / 100.0) ** 1.2
    power = power + rng.normal(0.0, 2.0, power.shape[0])
    frame = pl.DataFrame(
        {
            "ts": (t[keep] * 1_000_000).astype(np.int64),
            "util_pct": np.round(util, 1),
            "sm_active_pct": np.round(r.sm_active[keep], 1) if r.sm_active is not None else None,
            "mem_used_mib": np.round(r.mem_used[keep]),
            "power_w": np.round(np.maximum(power, gpu.idle_w * 0.8), 1),
            "busy": r.busy[keep],
        },
        schema={
            "ts": pl.Int64,
            "util_pct": pl.Float64,
            "sm_active_pct": pl.Float64,
            "mem_used_mib": pl.Float64,
            "power_w": pl.Float64,
            "busy": pl.Boolean,
        },
    )
    return conform(
        frame.with_columns(
            pl.col("ts").cast(pl.Datetime("us", "UTC")),
            **_board_readings(gpu),
            host=pl.lit(gpu.host),
            gpu_uuid=pl.lit(gpu.uuid),
            gpu_index=pl.lit(gpu.index, pl.Int32),
            gpu_model=pl.lit(gpu.model),
            mem_total_mib=pl.lit(gpu.mem_total_mib),
            activity_kind=pl.lit("gpm" if gpu.gpm else "nvml_util"),
            workload=pl.when(pl.col("busy")).then(pl.lit(gpu.workload)).otherwise(None),
            source=pl.lit("demo"),
        ).drop("busy"),
        "gpu_samples",
    )


# The SM clock each model boosts to while busy (MHz); idle GPUs drop to 210 MHz.
BOOST_MHZ = {"A100-80GB": 1410, "A100-40GB": 1410, "RTX 4090": 2520, "A10G": 1710, "H100": 1980}
IDLE_MHZ = 210.0
NO_ECC = ("RTX 4090",)  # a consumer card: no ECC counters


def _board_readings(gpu: DemoGpu) -> dict[str, pl.Expr]:
    """Temperature, SM clock, power limit and ECC errors, from the frame's utilization and power
    (no random draws: the fleet's other figures stay as they are)."""
    load = ((pl.col("power_w") - gpu.idle_w) / (gpu.max_w - gpu.idle_w)).clip(0.0, 1.0)
    boost = float(BOOST_MHZ.get(gpu.model, 2520))
    return {
        "temperature_c": (30.0 + 45.0 * load).round(0),
        "sm_clock_mhz": pl.when(pl.col("util_pct") >= 1.0).then(boost).otherwise(IDLE_MHZ),
        "power_limit_w": pl.lit(gpu.max_w),
        "ecc_errors": pl.lit(None if gpu.model in NO_ECC else 0.0, pl.Float64),
    }


def _rng(seed: int, gpu: DemoGpu, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, hash_index(gpu), salt])


def hash_index(gpu: DemoGpu) -> int:
    return FLEET.index(gpu)


def history(
    start: datetime, end: datetime, *, interval_s: int, seed: int
) -> Iterator[tuple[str, pl.DataFrame]]:
    """GPU samples in [start, end) at `interval_s`, one (host, frame) per host and UTC day."""
    t0 = int(np.ceil(start.timestamp() / interval_s) * interval_s)
    t1 = int(end.timestamp())
    day0 = t0 // 86400
    for day in range(day0, t1 // 86400 + 1):
        lo, hi = max(t0, day * 86400), min(t1, (day + 1) * 86400)
        if lo >= hi:
            continue
        lo = int(np.ceil(lo / interval_s) * interval_s)
        t = np.arange(lo, hi, interval_s, dtype=np.float64)
        if t.size == 0:
            continue
        for host in HOSTS:
            frames = [gpu_frame(g, t, _rng(seed, g, day)) for g in FLEET if g.host == host]
            frame = pl.concat(frames)
            if frame.height:
                yield host, frame


def billing(start: datetime, end: datetime) -> pl.DataFrame:
    """Hourly FOCUS rows for every demo instance hour that ran in [start, end).

    Each row's scope is its (instance, hour), so a re-emitted hour replaces itself.
    """
    h0 = int(np.ceil(start.timestamp() / 3600))
    h1 = int(end.timestamp() // 3600)
    hours = np.arange(h0, h1, dtype=np.int64)
    frames = []
    for inst in INSTANCES:
        mid = hours * 3600.0 + 1800.0
        ran = hours[RUNS[inst.pattern](mid)]
        if ran.size == 0:
            continue
        frames.append(
            pl.DataFrame({"hour": ran}).with_columns(
                ResourceId=pl.lit(inst.resource_id),
                InstanceType=pl.lit(inst.instance_type),
                workload=pl.lit(inst.workload),
                cost=pl.lit(inst.usd_per_hour),
            )
        )
    if not frames:
        return conform(pl.DataFrame(), "billing_items")
    rows = pl.concat(frames).with_columns(
        start=(pl.col("hour") * 3_600_000_000).cast(pl.Datetime("us", "UTC")),
    )
    return conform(
        rows.select(
            ChargePeriodStart=pl.col("start"),
            ChargePeriodEnd=pl.col("start") + pl.duration(hours=1),
            BillingPeriodStart=pl.col("start").dt.truncate("1mo"),
            BillingAccountId=pl.lit(ACCOUNT),
            ProviderName=pl.lit("AWS"),
            ServiceName=pl.lit("Amazon Elastic Compute Cloud"),
            ResourceId=pl.col("ResourceId"),
            SkuId=pl.col("InstanceType"),
            ChargeCategory=pl.lit("Usage"),
            PricingUnit=pl.lit("Hours"),
            PricingQuantity=pl.lit(1.0),
            ConsumedQuantity=pl.lit(1.0),
            BilledCost=pl.col("cost"),
            EffectiveCost=pl.col("cost"),
            ListCost=pl.col("cost"),
            BillingCurrency=pl.lit("USD"),
            Tags=pl.col("workload").map_elements(
                lambda w: json.dumps({"workload": w}), return_dtype=pl.String
            ),
            RegionId=pl.lit("us-east-1"),
            InstanceType=pl.col("InstanceType"),
            workload=pl.col("workload"),
            source=pl.lit("demo"),
            scope=pl.concat_str(
                [pl.lit("demo"), pl.col("ResourceId"), pl.col("hour").cast(pl.String)],
                separator="|",
            ),
        ),
        "billing_items",
    )


_USERS = {
    "batch-queue": ("svc-queue", "python train.py --queue=default"),
    "chat-inference": ("svc-infer", "python -m vllm.entrypoints.api_server --model small-7b"),
    "vision-dev": ("alice", "python eval_vision.py --split val"),
    "llm-pretrain": ("ubuntu", "torchrun --nproc_per_node=8 pretrain.py"),
    "clinical-nlp": ("ubuntu", "python serve_ner.py"),
    "research-notebook": ("bob", "/usr/bin/python3 -m ipykernel_launcher"),
    "weekly-sweep": ("ubuntu", "python sweep.py --grid=weekly"),
}


class LiveDemo:
    """Live samples of the demo fleet, one tick per call."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = np.random.default_rng([seed, 7])

    def tick(self, now: datetime | None = None) -> Batch:
        now = now or datetime.now(UTC)
        t = np.array([now.timestamp()])
        frames = [gpu_frame(g, t, self._rng) for g in FLEET]
        gpus = pl.concat([f for f in frames if f.height])
        procs = gpus.filter(pl.col("workload").is_not_null()).select(
            "ts",
            "host",
            "gpu_uuid",
            pid=(pl.col("gpu_index") + 4100).cast(pl.Int64),
            user=pl.col("workload").replace_strict(
                {w: u for w, (u, _) in _USERS.items()}, default="unknown"
            ),
            command=pl.col("workload").replace_strict(
                {w: c for w, (_, c) in _USERS.items()}, default=""
            ),
            used_mib=pl.col("mem_used_mib"),
            sm_pct=activity(),
            workload=pl.col("workload"),
            source=pl.lit("demo"),
        )
        return Batch(gpus, procs)


def history_window(now: datetime, days: int, last: datetime | None) -> tuple[datetime, datetime]:
    """The span to simulate: the last `days` days, or only the gap since `last` (a restart)."""
    start = now - timedelta(days=days)
    if last is not None and last > start:
        start = last + timedelta(seconds=1)
    return start, now


# The source's entry points (collectors/gpu/sources.py) ----------------------------------------
def open_sampler(settings: SourceSettings) -> Sampler:
    """`collect --source demo` and the daemon's demo fleet: live samples, seeded by [demo] seed."""
    return Sampler(LiveDemo(settings.seed).tick)
