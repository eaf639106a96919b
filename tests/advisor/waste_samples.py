"""Scenario builders for the waste and alert tests: GPU samples and bill lines in the collectors'
shapes, written to the spool and ingested by the real warehouse writer."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl

from config.settings import Config
from tables import spool
from tables.records import conform
from warehouse.store import Warehouse

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC
H100_HOST = "i-0aaaaaaaaaaaa0001"  # a p5.4xlarge: one H100 at $6.88/h on demand
H100_UUID = "GPU-11111111-1111-1111-1111-111111111111"
P5_4XL_USD = 6.88


def samples(
    host: str,
    gpu_uuid: str,
    model: str,
    start: datetime,
    minutes: int,
    *,
    util: float,
    sm: float | None = None,
    mem_gib: float = 30.0,
    mem_total_gib: float = 80.0,
    power_w: float = 100.0,
    workload: str | None = "research-notebook",
    interval_s: int = 60,
) -> pl.DataFrame:
    """One GPU's samples every `interval_s` for `minutes` minutes from `start`."""
    n = minutes * 60 // interval_s
    ts = [start + timedelta(seconds=i * interval_s) for i in range(n)]
    return conform(
        pl.DataFrame(
            {
                "ts": ts,
                "host": [host] * n,
                "gpu_uuid": [gpu_uuid] * n,
                "gpu_index": [0] * n,
                "gpu_model": [model] * n,
                "util_pct": [util] * n,
                "sm_active_pct": [sm] * n,
                "activity_kind": ["gpm" if sm is not None else "nvml_util"] * n,
                "mem_used_mib": [mem_gib * 1024] * n,
                "mem_total_mib": [mem_total_gib * 1024] * n,
                "power_w": [power_w] * n,
                "workload": [workload] * n,
                "source": ["test"] * n,
            },
            schema_overrides={"sm_active_pct": pl.Float64, "workload": pl.String},
        ),
        "gpu_samples",
    )


def notebook(start: datetime, minutes: int, *, idle: bool, **kw) -> pl.DataFrame:
    """The H100 notebook: idle (1% utilization, 0.5% SM active) or working (70%, 60%)."""
    util, sm = (1.0, 0.5) if idle else (70.0, 60.0)
    return samples(H100_HOST, H100_UUID, "H100", start, minutes, util=util, sm=sm, **kw)


def bill(
    host: str, instance_type: str, workload: str, start: datetime, hours: int, usd: float
) -> pl.DataFrame:
    """Hourly FOCUS lines of one tagged cloud instance."""
    starts = [start + timedelta(hours=h) for h in range(hours)]
    return conform(
        pl.DataFrame(
            {
                "ChargePeriodStart": starts,
                "ChargePeriodEnd": [s + timedelta(hours=1) for s in starts],
                "ProviderName": ["AWS"] * hours,
                "ResourceId": [host] * hours,
                "ChargeCategory": ["Usage"] * hours,
                "BilledCost": [usd] * hours,
                "EffectiveCost": [usd] * hours,
                "ListCost": [usd] * hours,
                "BillingCurrency": ["USD"] * hours,
                "Tags": [json.dumps({"workload": workload})] * hours,
                "InstanceType": [instance_type] * hours,
                "workload": [workload] * hours,
                "source": ["test"] * hours,
                "scope": [f"test|{host}|{s:%Y%m%d%H}" for s in starts],
            }
        ),
        "billing_items",
    )


def p5_bill(start: datetime = T0 - timedelta(hours=2), hours: int = 12) -> pl.DataFrame:
    return bill(H100_HOST, "p5.4xlarge", "research-notebook", start, hours, P5_4XL_USD)


def ingest(cfg: Config, wh: Warehouse, *frames: pl.DataFrame) -> None:
    """Write each frame as a spool batch, as a collector would, and ingest them."""
    for frame in frames:
        kind = "billing_items" if "EffectiveCost" in frame.columns else "gpu_samples"
        spool.write_batch(cfg.spool_dir, kind, frame, "test")
    wh.ingest_spool()


def quiet_cfg(cfg: Config, **alerts: object) -> Config:
    """The shipped configuration with fast retries and the given [alerts] keys."""
    return replace(
        cfg, alerts=replace(cfg.alerts, **{"retry_backoff_s": 0.05, "timeout_s": 2.0, **alerts})
    )
