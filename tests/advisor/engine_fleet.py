"""A small fleet for the engine tests (tests/advisor/test_engine.py and test_engine_ray.py): the
day boundary, a GPU shared by two workloads, a billed cloud instance with telemetry, a billed one
without, a bill line naming no resource, and a restated bill that re-costs a day from its stored
attribution. Built into a warehouse through the spool and the ingest, as in production.

- lab1 (local, [[local.hosts]]: $26,280 over 3 years = $1.00 per GPU-hour + $0.50 operations):
  GPU-lab1-0 sampled every 10 s from 23:00 on DAY1 to 01:00 on DAY2 at 100 W; "train" alone
  until 23:30, shared with "notebook" (process samples: SM 60 % and 20 %) until 00:30, no process
  after. GPU-lab1-1 every 10 s from 10:00 to 10:30 on DAY2, "eval".
- i-0123456789abcdef0 (cloud: billed, tagged "inference", $24 a day on DAY1 and DAY2): telemetry
  10:00-12:00 on DAY1, "chat".
- i-0fedcba987654321f: billed $5 on DAY1 ("batch"), no telemetry.
- a $2 line on DAY2 naming no resource ("support").
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from config.settings import Config, EnergyConfig, LocalConfig, LocalHost, load_config
from tables import spool
from tables.records import conform
from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DAY1, DAY2 = date(2026, 11, 23), date(2026, 11, 24)
CLOUD = "i-0123456789abcdef0"
UNSEEN = "i-0fedcba987654321f"


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def gpu(host: str, index: int, start: datetime, end: datetime, workloads) -> pl.DataFrame:
    """One GPU every 10 s in [start, end); `workloads(ts)` names its workload (None: idle)."""
    ts = [
        start + timedelta(seconds=10 * i) for i in range(int((end - start).total_seconds()) // 10)
    ]
    return pl.DataFrame(
        {
            "ts": ts,
            "host": host,
            "gpu_uuid": f"GPU-{host}-{index}",
            "gpu_index": index,
            "gpu_model": "A100-80GB",
            "util_pct": [float(20 + (i * 7) % 80) for i in range(len(ts))],
            "mem_used_mib": 40000.0,
            "mem_total_mib": 81920.0,
            "power_w": 100.0,
            "workload": [workloads(t) for t in ts],
            "source": "import",
        }
    )


def gpu_samples() -> pl.DataFrame:
    shared_from, shared_to = _at(DAY1, 23, 30), _at(DAY2, 0, 30)

    def lab0(t: datetime) -> str | None:
        return "train" if t < shared_to else None

    frames = [
        gpu("lab1", 0, _at(DAY1, 23), _at(DAY2, 1), lab0),
        gpu("lab1", 1, _at(DAY2, 10), _at(DAY2, 10, 30), lambda t: "eval"),
        gpu(CLOUD, 0, _at(DAY1, 10), _at(DAY1, 12), lambda t: "chat"),
    ]
    assert shared_from < shared_to
    return conform(pl.concat(frames), "gpu_samples")


def process_samples() -> pl.DataFrame:
    """Two processes on GPU-lab1-0 every 10 s from 23:30 to 00:30: train 60 % SM, notebook 20 %."""
    start = _at(DAY1, 23, 30)
    ts = [start + timedelta(seconds=10 * i) for i in range(360)]
    rows = [
        (t, "lab1", "GPU-lab1-0", pid, workload, sm, mib)
        for t in ts
        for pid, workload, sm, mib in (
            (11, "train", 60.0, 30000.0),
            (12, "notebook", 20.0, 10000.0),
        )
    ]
    frame = pl.DataFrame(
        rows,
        schema=["ts", "host", "gpu_uuid", "pid", "workload", "sm_pct", "used_mib"],
        orient="row",
    ).with_columns(source=pl.lit("import"))
    return conform(frame, "process_samples")


def bills(days: dict[str, list[tuple[date, float]]], period: str) -> pl.DataFrame:
    """FOCUS-shaped lines: resource -> (day, USD); workload per resource as in the docstring."""
    tags = {CLOUD: "inference", UNSEEN: "batch", "": "support"}
    rows = [
        (_at(d, 0), _at(d, 0) + timedelta(days=1), res or None, usd, tags[res])
        for res, lines in days.items()
        for d, usd in lines
    ]
    frame = pl.DataFrame(
        rows,
        schema=["ChargePeriodStart", "ChargePeriodEnd", "ResourceId", "EffectiveCost", "workload"],
        orient="row",
    ).with_columns(
        ProviderName=pl.lit("AWS"),
        BilledCost=pl.col("EffectiveCost"),
        ListCost=pl.col("EffectiveCost"),
        BillingCurrency=pl.lit("USD"),
        source=pl.lit("focus"),
        scope=pl.lit(f"focus|AWS|111122223333|{period}"),
    )
    return conform(frame, "billing_items")


FIRST_BILL = {CLOUD: [(DAY1, 24.0), (DAY2, 24.0)], UNSEEN: [(DAY1, 5.0)], "": [(DAY2, 2.0)]}
# The period restated: the instance's DAY1 line becomes $30 (DAY1 is then re-costed only).
RESTATED = {CLOUD: [(DAY1, 30.0), (DAY2, 24.0)], UNSEEN: [(DAY1, 5.0)], "": [(DAY2, 2.0)]}


def fleet_config(directory: Path) -> Config:
    cfg = load_config(ROOT / "config" / "gpuledger.toml", db=directory / "warehouse.duckdb")
    return replace(
        cfg,
        energy=EnergyConfig(price_per_kwh=0.2, pue=1.5),
        local=LocalConfig(
            depreciation_years=3.0,
            ops_usd_per_gpu_hour=0.5,
            hosts=(LocalHost("lab1", "A100-80GB", 2, 52560.0, 3.0, 0.5),),
        ),
    )


def ingest(wh: Warehouse, cfg: Config, kind: str, frame: pl.DataFrame) -> None:
    spool.write_batch(cfg.spool_dir, kind, frame, "test")
    wh.ingest_spool()


def load_samples(wh: Warehouse, cfg: Config) -> None:
    """The fleet's samples and its first bill, ingested."""
    ingest(wh, cfg, "gpu_samples", gpu_samples())
    ingest(wh, cfg, "process_samples", process_samples())
    ingest(wh, cfg, "billing_items", bills(FIRST_BILL, "2026-11-01"))


def restate(wh: Warehouse, cfg: Config) -> None:
    ingest(wh, cfg, "billing_items", bills(RESTATED, "2026-11-01"))
