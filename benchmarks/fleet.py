"""A synthetic GPU fleet for the benchmarks: 8 hosts × 8 GPUs sampled at 1 Hz for 30 days
(64 × 86,400 × 30 = 165,888,000 GPU samples), written straight to hive-partitioned spool batches.

The values have the precision and the noise NVML gives an agent, so the storage figures mean
something: `util_pct` whole percent, power in milliwatts (`power_w` = mW / 1000), `energy_mj` a
monotonic millijoule counter, `memory.used` whole MiB changing only when a job allocates,
temperature and SM clock whole numbers, and on the Hopper hosts the GPM metrics (SM active,
occupancy, tensor and DRAM activity) as the unrounded doubles NVML computes. Each GPU runs a
seeded schedule of jobs (pre-training, fine-tuning, inference with a daily cycle, notebooks)
separated by idle gaps with no process, so `workload` changes and is null while idle.

Batches are one per host per `chunk_hours` (4 h: 8 × 14,400 = 115,200 rows), numbered in time
order; hosts are generated in parallel processes (each carries its GPUs' energy counters).
`FleetSpec(days=…, hosts=…)` scales it down for a quick run (`python -m benchmarks.fleet --days 1`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from tables import spool
from tables.records import conform

_NS = uuid.UUID("0b6a3c2e-7d4f-4f3a-9e1b-6c2d8a4f5e10")


@dataclass(frozen=True)
class HostKind:
    prefix: str
    model: str
    mem_total_mib: float
    idle_w: float
    max_w: float
    boost_mhz: int
    gpm: bool  # Hopper: SM active and the other GPM metrics are sampled


H100 = HostKind("h100", "H100", 81559.0, 70.0, 700.0, 1980, True)
A100 = HostKind("a100", "A100-80GB", 81920.0, 55.0, 400.0, 1410, False)
L40S = HostKind("l40s", "L40S", 46068.0, 35.0, 350.0, 2520, False)
HOST_KINDS = (H100, H100, H100, H100, A100, A100, L40S, L40S)

# Job profiles: (name, util mean, util sd, SM active share of util, workload names).
PROFILES = (
    ("idle", 0.0, 0.0, 0.0, ()),
    ("pretrain", 96.0, 2.5, 0.74, ("llm-pretrain", "vision-pretrain")),
    ("finetune", 86.0, 7.0, 0.62, ("llm-finetune", "team-nlp/finetune", "rlhf")),
    ("inference", 0.0, 9.0, 0.45, ("chat-inference", "search-embed")),
    ("notebook", 0.0, 1.0, 0.30, ("research-notebook", "alice-notebook")),
)
WORKLOADS = tuple(w for p in PROFILES for w in p[4])


@dataclass(frozen=True)
class FleetSpec:
    days: int = 30
    hosts: int = 8
    gpus_per_host: int = 8
    interval_s: int = 1
    chunk_hours: int = 4
    start: datetime = field(default_factory=lambda: _midnight() - timedelta(days=30))
    seed: int = 7

    @property
    def gpus(self) -> int:
        return self.hosts * self.gpus_per_host

    @property
    def samples(self) -> int:
        return self.gpus * self.days * 86_400 // self.interval_s

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def describe(self) -> str:
        return (
            f"{self.days} days × {self.gpus} GPUs ({self.hosts} hosts × {self.gpus_per_host})"
            f" at {self.interval_s} s = {self.samples:,} GPU samples"
        )


def _midnight() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def fleet_spec(days: int = 30, hosts: int = 8) -> FleetSpec:
    """The fleet ending at midnight UTC today (so the dashboard's windows hold it)."""
    return FleetSpec(days=days, hosts=hosts, start=_midnight() - timedelta(days=days))


FULL = FleetSpec()


def host_name(spec: FleetSpec, h: int) -> str:
    kind = HOST_KINDS[h % len(HOST_KINDS)]
    return f"gpu-{kind.prefix}-{h + 1:02d}"


def gpu_uuid(host: str, index: int) -> str:
    return f"GPU-{uuid.uuid5(_NS, f'{host}/{index}')}"


@dataclass
class Schedule:
    """A GPU's jobs: segment starts (epoch s), their profile, workload and memory level."""

    starts: np.ndarray
    profile: np.ndarray
    workload: np.ndarray  # index into WORKLOADS, -1 while idle
    mem_frac: np.ndarray


def schedule(spec: FleetSpec, h: int, g: int) -> Schedule:
    rng = np.random.default_rng([spec.seed, h, g, 1])
    t0 = int(spec.start.timestamp())
    t1 = int(spec.end.timestamp())
    kind = HOST_KINDS[h % len(HOST_KINDS)]
    # Hopper hosts pre-train and fine-tune, A100s fine-tune and serve, L40S serve and notebook.
    weights = {
        "h100": [0.0, 0.55, 0.35, 0.05, 0.05],
        "a100": [0.0, 0.15, 0.45, 0.30, 0.10],
        "l40s": [0.0, 0.0, 0.15, 0.55, 0.30],
    }[kind.prefix]
    starts, profile, workload, mem = [], [], [], []
    t = t0 - int(rng.integers(0, 6 * 3600))
    while t < t1:
        p = int(rng.choice(len(PROFILES), p=weights))
        hours = {1: (24, 120), 2: (2, 14), 3: (12, 96), 4: (3, 10)}[p]
        names = PROFILES[p][4]
        starts.append(t)
        profile.append(p)
        workload.append(WORKLOADS.index(names[int(rng.integers(0, len(names)))]))
        mem.append(float(rng.uniform(0.35, 0.95)))
        t += int(rng.uniform(*hours) * 3600)
        gap = int(rng.exponential(1.5 * 3600)) if p != 1 else int(rng.exponential(0.3 * 3600))
        if gap > 120:  # idle: no process on the GPU
            starts.append(t)
            profile.append(0)
            workload.append(-1)
            mem.append(0.0)
            t += gap
    return Schedule(
        np.array(starts, dtype=np.int64),
        np.array(profile, dtype=np.int8),
        np.array(workload, dtype=np.int16),
        np.array(mem),
    )


def _gpu_chunk(
    kind: HostKind, sched: Schedule, t: np.ndarray, rng: np.random.Generator, energy0: float
) -> tuple[dict[str, np.ndarray], float]:
    """One GPU's readings at epoch seconds `t`; returns the columns and its energy counter."""
    n = t.shape[0]
    seg = np.searchsorted(sched.starts, t, side="right") - 1
    prof = sched.profile[seg]
    noise = rng.standard_normal(n)
    hour = (t % 86400) / 3600.0
    means = np.array([p[1] for p in PROFILES])
    sds = np.array([p[2] for p in PROFILES])
    util = means[prof] + sds[prof] * noise
    # Inference follows the day (busiest at 15:00 UTC); notebooks idle but for short bursts.
    util = np.where(prof == 3, 38.0 + 22.0 * np.sin((hour - 9.0) / 24 * 2 * np.pi) + util, util)
    burst = ((t // 60) % 47) < 3
    util = np.where(prof == 4, np.where(burst, 70.0 + 9.0 * noise, np.abs(util)), util)
    util = np.clip(np.rint(util), 0, 100)
    activity = util / 100.0
    running = prof != 0
    used = np.where(
        running,
        np.rint(sched.mem_frac[seg] * kind.mem_total_mib / 2) * 2 + ((t // 900) % 3) * 2,
        np.where((t // 3600) % 5 == 0, 0.0, 1.0),
    )
    power_mw = np.rint(
        (kind.idle_w + (kind.max_w - kind.idle_w) * activity**1.2) * 1000
        + rng.normal(0.0, 6000.0 if kind.gpm else 3000.0, n)
    )
    power_mw = np.maximum(power_mw, kind.idle_w * 700)
    energy = energy0 + np.cumsum(power_mw)  # mJ: power in mW over one second
    temp = np.rint(33.0 + 42.0 * activity + rng.normal(0.0, 0.6, n))
    clock = np.where(activity > 0.02, kind.boost_mhz - 15 * ((t // 300) % 4), 345)
    cols = {
        "ts": t,
        "util_pct": util,
        "mem_used_mib": used,
        "power_w": power_mw / 1000.0,
        "energy_mj": energy,
        "sm_clock_mhz": clock.astype(np.float64),
        "temperature_c": temp,
        "workload_idx": sched.workload[seg],
    }
    if kind.gpm:
        shares = np.array([p[3] for p in PROFILES])
        sm = np.clip(util * shares[prof] + rng.normal(0.0, 2.5, n) * running, 0.0, util)
        cols["sm_active_pct"] = sm
        cols["sm_occupancy_pct"] = np.clip(sm * 0.8 + rng.normal(0.0, 2.0, n) * running, 0, 100)
        cols["tensor_active_pct"] = np.clip(sm * 0.6 + rng.normal(0.0, 3.0, n) * running, 0, 100)
        cols["dram_active_pct"] = np.clip(util * 0.5 + rng.normal(0.0, 3.0, n) * running, 0, 100)
    return cols, float(energy[-1])


def host_batches(spec: FleetSpec, h: int):
    """(chunk start, frame) of host `h`, in time order."""
    kind = HOST_KINDS[h % len(HOST_KINDS)]
    host = host_name(spec, h)
    scheds = [schedule(spec, h, g) for g in range(spec.gpus_per_host)]
    energy = [
        float(np.random.default_rng([spec.seed, h, g, 2]).integers(1e9, 9e11))
        for g in range(spec.gpus_per_host)
    ]
    names = pl.Series("workload", list(WORKLOADS), pl.String)
    t0 = int(spec.start.timestamp())
    chunk_s = spec.chunk_hours * 3600
    for c0 in range(t0, int(spec.end.timestamp()), chunk_s):
        t = np.arange(c0, c0 + chunk_s, spec.interval_s, dtype=np.int64)
        frames = []
        for g in range(spec.gpus_per_host):
            rng = np.random.default_rng([spec.seed, h, g, c0])
            cols, energy[g] = _gpu_chunk(kind, scheds[g], t, rng, energy[g])
            widx = cols.pop("workload_idx")
            frame = pl.DataFrame(cols).with_columns(
                pl.from_epoch(pl.col("ts"), time_unit="s").dt.replace_time_zone("UTC"),
                workload=names.gather(pl.Series(np.maximum(widx, 0))).set(
                    pl.Series(widx < 0), None
                ),
                gpu_uuid=pl.lit(gpu_uuid(host, g)),
                gpu_index=pl.lit(g, pl.Int32),
            )
            frames.append(frame)
        frame = pl.concat(frames, how="diagonal_relaxed").with_columns(
            host=pl.lit(host),
            gpu_model=pl.lit(kind.model),
            mem_total_mib=pl.lit(kind.mem_total_mib),
            activity_kind=pl.lit("gpm" if kind.gpm else "nvml_util"),
            source=pl.lit("nvml"),
        )
        yield datetime.fromtimestamp(c0, UTC), conform(frame, "gpu_samples")


def _write_host(args: tuple[FleetSpec, int, str]) -> tuple[int, int, int]:
    spec, h, spool_dir = args
    files = rows = size = 0
    for when, frame in host_batches(spec, h):
        path = spool.write_batch(
            Path(spool_dir), "gpu_samples", frame, host_name(spec, h), now=when
        )
        files += 1
        rows += frame.height
        size += path.stat().st_size
    return files, rows, size


@dataclass
class Written:
    spool_dir: Path
    files: int
    rows: int
    bytes: int
    seconds: float


def write_fleet(spec: FleetSpec, spool_dir: Path, *, workers: int | None = None) -> Written:
    """Write the whole fleet as spool batches under `spool_dir`; hosts in parallel."""
    t0 = time.perf_counter()
    workers = workers or min(spec.hosts, os.cpu_count() or 1)
    jobs = [(spec, h, str(spool_dir)) for h in range(spec.hosts)]
    if workers == 1:
        parts = [_write_host(j) for j in jobs]
    else:
        # Spawned, not forked: a fork of a process whose Polars or DuckDB threads already run
        # can deadlock.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_write_host, jobs))
    files, rows, size = (sum(p[i] for p in parts) for i in range(3))
    return Written(Path(spool_dir), files, rows, size, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spool", type=Path, help="spool directory to write into")
    parser.add_argument("--days", type=int, default=FULL.days)
    parser.add_argument("--hosts", type=int, default=FULL.hosts)
    args = parser.parse_args(argv)
    spec = fleet_spec(args.days, args.hosts)
    out = write_fleet(spec, args.spool)
    print(
        f"{spec.describe()}: {out.files} files, {out.rows:,} rows, {out.bytes / 1e6:,.1f} MB"
        f" in {out.seconds:.1f}s ({out.rows / out.seconds:,.0f} rows/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())


# The fleet warehouse the benchmark modules share (built once per `make bench` process) ---------
BENCH_DAYS_ENV = "GPULEDGER_BENCH_DAYS"  # a smaller fleet for a quick run (the doc says so)
BENCH_KEEP_ENV = "GPULEDGER_BENCH_KEEP"  # keep the fleet directory after the run


@dataclass
class BuiltFleet:
    spec: FleetSpec
    root: Path
    cfg: object  # config.settings.Config of the fleet warehouse
    written: Written
    ingest_s: float
    ingested_rows: int
    cycle_s: float  # ledger refresh + snapshot publish over the whole fleet


_BUILT: dict[FleetSpec, BuiltFleet] = {}


def bench_spec() -> FleetSpec:
    days = int(os.environ.get(BENCH_DAYS_ENV) or FULL.days)
    return fleet_spec(days, FULL.hosts)


def built_fleet(spec: FleetSpec | None = None) -> BuiltFleet:
    """Generate the fleet's spool, ingest it through `Warehouse.ingest_spool` (timed) and run the
    daemon's cycle once (ledger, snapshot); cached for the process."""
    import atexit
    import shutil
    import tempfile
    from dataclasses import replace

    from cli import app
    from config.settings import load_config
    from warehouse.store import Warehouse

    spec = spec or bench_spec()
    if spec in _BUILT:
        return _BUILT[spec]
    keep = os.environ.get(BENCH_KEEP_ENV)
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="gpuledger-fleet-"))
    if not keep:
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    shutil.rmtree(root / "data", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    base = Path(__file__).resolve().parent.parent / "config"
    cfg = load_config(base / "gpuledger.toml", db=root / "data" / "warehouse.duckdb")
    cfg = replace(
        cfg,
        demo=replace(cfg.demo, mode="off"),
        warehouse=replace(cfg.warehouse, snapshot_days=max(35, spec.days + 1)),
        catalog=replace(cfg.catalog, path=str(base / "catalog.csv")),
    )
    print(f"  fleet: {spec.describe()} ...", file=sys.stderr, flush=True)
    written = write_fleet(spec, cfg.spool_dir)
    print(
        f"  fleet: {written.files} spool files, {written.bytes / 1e6:,.0f} MB"
        f" in {written.seconds:.0f}s",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.perf_counter()
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        result = wh.ingest_spool()
        wh.checkpoint()
        ingest_s = time.perf_counter() - t0
        print(
            f"  fleet: ingested {result.rows.get('gpu_samples', 0):,} rows in {ingest_s:.0f}s",
            file=sys.stderr,
            flush=True,
        )
        t1 = time.perf_counter()
        app.cycle(wh, cfg, app.catalog_for(cfg), force=True)
        cycle_s = time.perf_counter() - t1
    built = BuiltFleet(
        spec, root, cfg, written, ingest_s, result.rows.get("gpu_samples", 0), cycle_s
    )
    _BUILT[spec] = built
    return built


def make_spool_live(spec: FleetSpec, spool_dir: Path, seconds: int = 30) -> int:
    """What the dashboard's live view meets in production: the fleet's batches are old news
    (back-dated an hour), and every host's agent wrote the last `seconds` in 5-second batches
    (8 GPUs × 5 ticks = 40 rows each). Returns the files written."""
    old = time.time() - 3600
    for path in spool_dir.rglob("*.parquet"):
        os.utime(path, (old, old))
    now = int(time.time())
    t = np.arange(now - seconds, now, spec.interval_s, dtype=np.int64)
    files = 0
    for h in range(spec.hosts):
        kind = HOST_KINDS[h % len(HOST_KINDS)]
        host = host_name(spec, h)
        sched = [schedule(spec, h, g) for g in range(spec.gpus_per_host)]
        frames = []
        for g in range(spec.gpus_per_host):
            cols, _ = _gpu_chunk(kind, sched[g], t, np.random.default_rng([h, g]), 1e9)
            cols.pop("workload_idx")
            frames.append(
                pl.DataFrame(cols).with_columns(
                    pl.from_epoch(pl.col("ts"), time_unit="s").dt.replace_time_zone("UTC"),
                    gpu_uuid=pl.lit(gpu_uuid(host, g)),
                    gpu_index=pl.lit(g, pl.Int32),
                    host=pl.lit(host),
                    gpu_model=pl.lit(kind.model),
                    mem_total_mib=pl.lit(kind.mem_total_mib),
                    source=pl.lit("nvml"),
                )
            )
        merged = pl.concat(frames, how="diagonal_relaxed").sort("ts", "gpu_index")
        per = 5 * spec.gpus_per_host
        for i in range(0, merged.height, per):
            spool.write_batch(spool_dir, "gpu_samples", merged.slice(i, per), host)
            files += 1
    return files
