"""The ledger job from the lake's raw partitions (issue 17): each day-and-host partition's minute
rollups, hourly attribution and ledger rows computed by an engine's task that scans just that
partition (warehouse/lake.py `Lake.scan`, `Lake.raw_for`), the results stored by the driver in
one transaction (warehouse/results.py `store_partition_days`).

A task opens the lake itself (`LakeSource`: a catalog connection does not travel between
processes; each worker opens it once). What is not per host comes from the driver: the hosts'
placements from the bills over all time, and the bills of the span (each task takes its own day
and host's lines; the lines of a resource with no telemetry, or of none, are costed as partitions
of their own). The waste and the recommendations stay with the daemon's ledger job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

import polars as pl

from advisor.engine import Engine
from advisor.ledger import host_placements
from advisor.partitions import (
    CostContext,
    CostResult,
    CostWork,
    cost_partition,
    gather_costs,
    process_minutes,
    rollup_partition,
    scan_bounds,
    split_chunk,
)
from config.settings import Config
from tables.stored import GPU_MINUTE, MINUTE_ATTRIBUTION
from warehouse import results
from warehouse.store import ROLLUP_COLUMNS, Warehouse

# The process sample columns the minute shares read.
PROCESS_COLUMNS = ("ts", "host", "gpu_uuid", "workload", "sm_pct", "used_mib")


class Reader(Protocol):
    """What the partition jobs read: the lake's API (warehouse/lake.py `Lake`)."""

    def partitions(
        self, kind: str, since: date | None = None, until: date | None = None
    ) -> list[tuple[date, str]]: ...

    def scan(
        self, kind: str, day: date, host: str, columns: Sequence[str] | None = None
    ) -> pl.DataFrame: ...

    def raw_for(self, host: str, hour: Any, kind: str = "gpu_samples") -> pl.DataFrame: ...


_OPEN: dict[str, Reader] = {}


@dataclass(frozen=True)
class LakeSource:
    """The lake of `cfg`, opened once per process (the driver's and each Ray worker's)."""

    cfg: Config

    def open(self) -> Reader:
        key = f"{self.cfg.lake!r}|{self.cfg.spool_dir}"
        if key not in _OPEN:
            from warehouse.lake import open_lake

            _OPEN[key] = open_lake(self.cfg)
        return _OPEN[key]


@dataclass(frozen=True)
class RawJob:
    """What every raw partition's task shares."""

    source: Any  # has open() -> Reader (LakeSource)
    cost: CostContext
    bills: pl.DataFrame  # billing_daily rows of the span


@dataclass
class RawResult:
    day: date
    host: str
    minutes: pl.DataFrame  # gpu_minute rows of the day and host
    cost: CostResult


def day_samples(reader: Reader, day: date, host: str) -> pl.DataFrame:
    """A host's GPU samples a day's rollups read (`scan_bounds`): the day's partition and the
    edge hours of the days either side."""
    lo, hi = scan_bounds(day)
    cols = list(ROLLUP_COLUMNS)
    ts = pl.col("ts")
    before = reader.raw_for(host, lo.replace(minute=0)).select(cols).filter(ts >= lo)
    after = reader.raw_for(host, hi.replace(minute=0)).select(cols).filter(ts < hi)
    inside = reader.scan("gpu_samples", day, host, cols)
    return pl.concat([before, inside, after], how="vertical_relaxed")


def raw_partition(key: tuple[date, str], job: RawJob) -> RawResult:
    """One day and host from its raw samples: minute rollups, hourly attribution, ledger rows."""
    day, host = key
    reader = job.source.open()
    minutes = rollup_partition(day_samples(reader, day, host), day)
    process = process_minutes(reader.scan("process_samples", day, host, PROCESS_COLUMNS))
    bills = job.bills.filter(pl.col("day") == day, pl.col("resource_id") == host)
    work = CostWork(
        day, host, bills, minutes=minutes.select(MINUTE_ATTRIBUTION.names), process=process
    )
    return RawResult(day, host, minutes, cost_partition(work, job.cost))


@dataclass
class LakeRun:
    """What one `lake_ledger` did."""

    partitions: int
    minutes: pl.DataFrame
    usage: pl.DataFrame
    ledger: pl.DataFrame


def lake_ledger(
    engine: Engine,
    wh: Warehouse,
    cfg: Config,
    catalog: pl.DataFrame,
    source: Any,
    since: date,
    until: date,
) -> LakeRun:
    """Rollups, attribution and ledger of every lake partition with GPU samples on the days in
    [since, until), run by `engine`, stored in the warehouse in one transaction once all have
    finished (a failed task stores nothing)."""
    keys = source.open().partitions("gpu_samples", since, until)
    days = [since + timedelta(days=i) for i in range((until - since).days)]
    hosts = sorted({h for _, h in keys})
    placements = host_placements(
        hosts, results.billed_resources(wh), [h.name for h in cfg.local.hosts]
    )
    bills = results.billing_on_days(wh, days)
    ctx = CostContext(placements, cfg, catalog)
    raw = engine.map(raw_partition, keys, RawJob(source, ctx, bills))
    done = {(r.day, r.host) for r in raw}
    billed_only = [w for w in split_chunk(None, None, None, bills) if (w.day, w.host) not in done]
    costs = [r.cost for r in raw] + engine.map(cost_partition, billed_only, ctx)
    usage, ledger = gather_costs(costs)
    minutes = pl.concat([r.minutes for r in raw], how="vertical") if raw else GPU_MINUTE.empty()
    results.store_partition_days(wh, days, hosts, minutes, usage, ledger, placements)
    return LakeRun(len(keys), minutes, usage, ledger)
