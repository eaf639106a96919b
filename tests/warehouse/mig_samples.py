"""MIG boards as the collectors report them, for the MIG tests: one row per instance and tick
(`parent_gpu_uuid` = the board, `mig_profile` = its profile, no utilization: NVML answers N/A
on MIG), with or without a row of the board itself (nvidia-smi and dcgm-exporter have one with
the board's power; NVML has none)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl

from advisor.attribution import hourly_usage, minute_shares
from advisor.ledger import daily_ledger, held_usage, host_placements, local_rates
from config.settings import Config, LocalHost
from tables import spool
from tables.records import conform
from warehouse.results import advisor_minutes, process_shares
from warehouse.store import Warehouse

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # a Friday
HOST = "mig-node"
BOARD = "GPU-h200-board"
MODEL = "NVIDIA H200"
# (uuid, profile, workload): 1g + 1g + 1g + 2g + 2g = all 7 slices of the H200; the third 1g
# runs nothing, so its share is `__idle__`.
FIVE = (
    ("MIG-1g-a", "1g.18gb", "train"),
    ("MIG-1g-b", "1g.18gb", "eval"),
    ("MIG-1g-c", "1g.18gb", None),
    ("MIG-2g-a", "2g.35gb", "train"),
    ("MIG-2g-b", "2g.35gb", "serve"),
)
NO_BILLS = pl.DataFrame(
    schema={
        "day": pl.Date,
        "workload": pl.String,
        "resource_id": pl.String,
        "currency": pl.String,
        "effective_cost": pl.Float64,
    }
)
# The board's price: $35,040 over 2 years = $2.00 per GPU-hour + $0.10 operations = $2.10.
BOARD_USD_PER_HOUR = 35_040 / (2 * 8760) + 0.10


def every(start: datetime, step_s: int, count: int) -> list[datetime]:
    return [start + timedelta(seconds=step_s * i) for i in range(count)]


def board_samples(
    times: list[datetime],
    instances=FIVE,
    *,
    board_power_w: float | None = None,
    sm: float | None = None,
    mem_used_mib: float = 2048.0,
    mem_total_mib: float = 18176.0,
    host: str = HOST,
    board: str = BOARD,
    model: str = MODEL,
    source: str = "nvml",
) -> pl.DataFrame:
    """Samples of one MIG board at `times`: a row per instance (SM active `sm` where DCGM
    profiling gives one, else no activity signal), and a board row with `board_power_w` where
    given (nvidia-smi's shape)."""
    rows = []
    for ts in times:
        if board_power_w is not None:
            rows.append(
                {
                    "ts": ts,
                    "host": host,
                    "gpu_uuid": board,
                    "gpu_index": 0,
                    "gpu_model": model,
                    "mem_used_mib": mem_used_mib * len(instances),
                    "mem_total_mib": 143771.0,
                    "power_w": board_power_w,
                    "activity_kind": "nvml_util",
                    "source": source,
                }
            )
        for uuid, profile, workload in instances:
            rows.append(
                {
                    "ts": ts,
                    "host": host,
                    "gpu_uuid": uuid,
                    "gpu_index": 0,
                    "gpu_model": model,
                    "sm_active_pct": sm,
                    "activity_kind": "dcgm" if sm is not None else "nvml_util",
                    "mem_used_mib": mem_used_mib,
                    "mem_total_mib": mem_total_mib,
                    "parent_gpu_uuid": board,
                    "mig_profile": profile,
                    "workload": workload,
                    "source": source,
                }
            )
    return conform(
        pl.DataFrame(rows, schema_overrides={"sm_active_pct": pl.Float64, "power_w": pl.Float64}),
        "gpu_samples",
    )


def ingest_each(cfg: Config, *frames: pl.DataFrame) -> None:
    """Each frame as its own spool batch, ingested by its own run of the writer (as the daemon
    ingests a collector's flushes one cycle at a time)."""
    for frame in frames:
        spool.write_batch(cfg.spool_dir, "gpu_samples", frame, "test")
        with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
            wh.ingest_spool()


def minute_rows(cfg: Config) -> pl.DataFrame:
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        return wh.db.sql("SELECT * FROM gpu_minute ORDER BY minute, gpu_uuid").pl()


def with_host(cfg: Config, name: str = HOST, model: str = "H200") -> Config:
    """`cfg` with `name` in [[local.hosts]]: one GPU bought for $35,040, 2 years, $0.10 ops."""
    host = LocalHost(
        name=name,
        gpu_model=model,
        gpu_count=1,
        purchase_usd=35_040.0,
        depreciation_years=2.0,
        ops_usd_per_gpu_hour=0.10,
    )
    return replace(cfg, local=replace(cfg.local, hosts=(host,)))


def ledger_from_warehouse(
    cfg: Config, catalog: pl.DataFrame, since: datetime, until: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(hourly usage through `held_usage`, daily ledger) as the advisor computes them from the
    warehouse's rollups in [since, until), without bills."""
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        minutes = advisor_minutes(wh, since, until)
        shares = minute_shares(process_shares(wh, since, until))
    local = [h.name for h in cfg.local.hosts]
    usage = hourly_usage(minutes, shares)
    usage = held_usage(usage, host_placements(usage["host"], NO_BILLS, local))
    rates = local_rates(usage.select("host", "gpu_model").unique(), cfg, catalog)
    ledger = daily_ledger(
        usage,
        NO_BILLS,
        rates,
        price_per_kwh=cfg.energy.price_per_kwh,
        pue=cfg.energy.pue,
        local_hosts=local,
    )
    return usage, ledger
