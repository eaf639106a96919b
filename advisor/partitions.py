"""The ledger job's work cut into partitions of one day and one host (issue 17, the jobs on Ray).

Each partition's rollups, attribution and costing are plain Polars functions of that day and
host alone, so an engine (advisor/engine.py) can run them anywhere: in this process (`local`) or
as Ray tasks over a cluster (`ray`). They compute exactly what the whole-chunk job computes
(advisor/jobs.py `chunk_results`), because every figure there is already per host:

- minute rollups (warehouse/store.py `minute_rollups`) are per GPU; a day's minutes need the
  samples from ROLLUP_LOOKBACK before the day to ROLLUP_LOOKBACK after it (the last minute's
  samples learn their successor), which the partition's scan includes;
- hourly attribution (advisor/attribution.py) is per GPU and hour;
- the ledger (advisor/ledger.py) is one row per day, placement, workload and host: a cloud
  instance's money is split across the workloads on that instance only. What is not per host is
  passed in: the hosts' placements and owners, decided from the bills over all time, and the
  prices. A bill line of a resource without telemetry is a partition of its own (no usage), and
  bill lines naming no resource are the day's partition with no host.

Nothing here reads or writes: the driver reads each partition's rows (from the warehouse, the
spool or the lake), the engine runs `cost_partition` / `rollup_partition`, and the driver stores
every partition's results in one transaction once all of them have finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from advisor.attribution import HOURLY_SCHEMA, IDLE, hourly_usage, minute_shares
from advisor.ledger import LEDGER_SCHEMA, daily_ledger, held_usage, local_rates
from config.settings import Config
from tables.stored import GPU_MINUTE
from warehouse.store import ROLLUP_LOOKBACK, minute_rollups

# A partition: (day, host); host None holds the day's bill lines that name no resource.
Key = tuple[date, str | None]


@dataclass(frozen=True)
class CostContext:
    """What every partition's costing shares: the hosts' placements and owners (from the bills
    over all time; advisor/ledger.py `host_placements`), the configuration's prices and hosts,
    and the GPU catalog."""

    placements: pl.DataFrame
    cfg: Config
    catalog: pl.DataFrame


@dataclass
class CostWork:
    """One partition's inputs. `minutes` (gpu_minute rows) and `process` (process shares,
    warehouse/results.py PROCESS_SHARES_SQL) for a day attributed again; `stored` (its stored
    hourly attribution) for a day only re-costed; `bills`: its billing_daily rows."""

    day: date
    host: str | None
    bills: pl.DataFrame
    minutes: pl.DataFrame | None = None
    process: pl.DataFrame | None = None
    stored: pl.DataFrame | None = None


@dataclass
class CostResult:
    """One partition's hourly attribution (held: with placement and idle) and ledger rows."""

    day: date
    host: str | None
    usage: pl.DataFrame
    ledger: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LEDGER_SCHEMA))


def unheld_usage(stored: pl.DataFrame) -> pl.DataFrame:
    """Stored hourly attribution back to `hourly_usage`'s shape (unallocated time `__idle__`, no
    placement), to be placed again with `held_usage`."""
    if "idle" not in stored.columns:
        return stored
    return stored.with_columns(
        workload=pl.when(pl.col("idle")).then(pl.lit(IDLE)).otherwise(pl.col("workload"))
    ).drop("placement", "idle")


def partition_usage(work: CostWork) -> pl.DataFrame:
    """The partition's hourly attribution before placement: from its minute rollups and process
    shares where it is attributed again, else its stored attribution; none for a bill-only one."""
    if work.minutes is not None:
        shares = minute_shares(work.process) if work.process is not None else None
        return hourly_usage(work.minutes, shares)
    if work.stored is not None:
        return unheld_usage(work.stored)
    return pl.DataFrame(schema=HOURLY_SCHEMA)


def cost_partition(work: CostWork, ctx: CostContext) -> CostResult:
    """Attribution and ledger rows of one day and host (as `chunk_results` computes them)."""
    cfg = ctx.cfg
    local_hosts = [h.name for h in cfg.local.hosts]
    usage = held_usage(partition_usage(work), ctx.placements)
    rates = local_rates(usage.select("host", "gpu_model").unique(), cfg, ctx.catalog)
    ledger = daily_ledger(
        usage,
        work.bills,
        rates,
        price_per_kwh=cfg.energy.price_per_kwh,
        pue=cfg.energy.pue,
        local_hosts=local_hosts,
        placements=ctx.placements,
    )
    return CostResult(work.day, work.host, usage, ledger)


def _by_key(frame: pl.DataFrame | None, time_col: str, host_col: str) -> dict[Key, pl.DataFrame]:
    """`frame`'s rows per (UTC day of `time_col`, `host_col`)."""
    if frame is None or frame.height == 0:
        return {}
    day = pl.col(time_col).dt.date() if frame.schema[time_col] != pl.Date else pl.col(time_col)
    parts = frame.with_columns(_day=day).partition_by(
        "_day", host_col, as_dict=True, maintain_order=True
    )
    return {(k[0], k[1]): v.drop("_day") for k, v in parts.items()}


def split_chunk(
    minutes: pl.DataFrame | None,
    process: pl.DataFrame | None,
    stored: pl.DataFrame | None,
    bills: pl.DataFrame,
) -> list[CostWork]:
    """A chunk's inputs (the days attributed again: their minute rollups and process shares; the
    days re-costed: their stored attribution; all the chunk's bills) cut into partitions, in
    (day, host) order: every (day, host) with minutes, stored attribution or a bill line."""
    mins = _by_key(minutes, "minute", "host")
    procs = _by_key(process, "minute", "host")
    kept = _by_key(stored, "hour", "host")
    billed = _by_key(bills, "day", "resource_id")
    no_bill = bills.head(0)
    keys = sorted(set(mins) | set(kept) | set(billed), key=lambda k: (k[0], k[1] or ""))
    return [
        CostWork(
            day=key[0],
            host=key[1],
            bills=billed.get(key, no_bill),
            minutes=mins.get(key),
            process=procs.get(key),
            stored=kept.get(key),
        )
        for key in keys
    ]


def gather_costs(parts: list[CostResult]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All partitions' (hourly attribution, ledger rows), in the whole-chunk job's order."""
    usage = [p.usage for p in parts if p.usage.height]
    ledger = [p.ledger for p in parts if p.ledger.height]
    held = (
        pl.concat(usage, how="diagonal_relaxed").sort("hour", "host", "gpu_uuid", "workload")
        if usage
        else pl.DataFrame(schema={**HOURLY_SCHEMA, "placement": pl.String, "idle": pl.Boolean})
    )
    rows = (
        pl.concat(ledger, how="vertical").sort(
            "day", "placement", "workload", "host", nulls_last=True
        )
        if ledger
        else pl.DataFrame(schema=LEDGER_SCHEMA)
    )
    return held, rows


def process_minutes(process: pl.DataFrame) -> pl.DataFrame:
    """warehouse/results.py PROCESS_SHARES_SQL in Polars, for one partition's process samples:
    per minute, GPU and workload the SM percent's sum and count (null sum where none was
    reported), the memory's sum and the samples, only for GPU-minutes shared by two or more
    workloads."""
    key = ["minute", "host", "gpu_uuid"]
    sm, mib = pl.col("sm_pct"), pl.col("used_mib")
    return (
        process.filter(pl.col("workload").is_not_null())
        .with_columns(minute=pl.col("ts").dt.truncate("1m"))
        .group_by(*key, "workload")
        .agg(
            sm_pct_sum=pl.when(sm.count() > 0).then(sm.sum()),
            sm_samples=sm.count().cast(pl.Int64),
            used_mib_sum=pl.when(mib.count() > 0).then(mib.sum()),
            samples=pl.len().cast(pl.Int64),
        )
        .filter(pl.len().over(key) > 1)
        .sort(*key, "workload")
    )


# Minute rollups of one day and host, from its raw samples ------------------------------------
def scan_bounds(day: date) -> tuple[datetime, datetime]:
    """The raw samples a day's rollups read: ROLLUP_LOOKBACK either side of the day."""
    start = datetime.combine(day, time(), UTC)
    return start - ROLLUP_LOOKBACK, start + timedelta(days=1) + ROLLUP_LOOKBACK


def rollup_partition(samples: pl.DataFrame, day: date) -> pl.DataFrame:
    """gpu_minute rows of one day (and host) from its raw GPU samples (`scan_bounds`), as the
    ingest's `minute_rollups` computes them: each GPU's minutes of the day, a sample standing for
    the time to its GPU's next one (capped), the MIG boards split."""
    start = datetime.combine(day, time(), UTC)
    end = start + timedelta(days=1)
    ts = pl.col("ts")
    inside = samples.filter((ts >= start) & (ts < end))
    if inside.height == 0:
        return pl.DataFrame(schema=GPU_MINUTE.polars_schema)
    spans = inside.group_by("host", "gpu_uuid").agg(lo=ts.min(), hi=ts.max())
    outside = samples.filter((ts < start) | (ts >= end))
    minutes, _ = minute_rollups(inside, outside, spans)
    in_day = (pl.col("minute") >= start) & (pl.col("minute") < end)
    return minutes.filter(in_day).sort("host", "gpu_uuid", "minute", "workload", nulls_last=True)
