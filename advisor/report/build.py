"""`build_report`: everything one week's report shows, from the published snapshot (read-only).
The recommendations are recomputed for the window ending with the week (and with the week
before, to say what changed), with the same pure functions as the daemon's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from advisor.recommend import Params, recommendation_results
from advisor.report.changes import what_changed
from advisor.report.figures import WASTE_SCHEMA, Report, waste_note, week_figures
from advisor.report.schedule import ReportError, week_bounds
from config.catalog import catalog_as_of
from config.gpu_class import GpuClasses, unpriced_warnings
from config.settings import Config
from tables.units import IDLE
from warehouse import advisor_reads
from warehouse.snapshot import Snapshot
from warehouse.waste_reads import waste_summary, waste_total


@dataclass(frozen=True)
class _Reads:
    """What the report reads of the snapshot, read once."""

    ledger: pl.DataFrame
    usage: pl.DataFrame
    instances: pl.DataFrame
    evidence: pl.DataFrame  # what the daemon last sized the workloads by (process shape)

    @classmethod
    def of(cls, snap: Snapshot) -> _Reads:
        return cls(
            ledger=advisor_reads.ledger(snap),
            usage=advisor_reads.usage_hourly(snap),
            instances=advisor_reads.instances(snap),
            evidence=advisor_reads.workload_evidence(snap),
        )


def build_report(
    snap: Snapshot, cfg: Config, catalog: pl.DataFrame, week: str, *, now: datetime | None = None
) -> Report:
    """Everything the report shows for `week`, from the snapshot."""
    now = now or datetime.now(UTC)
    start, end = week_bounds(week)
    data_from, data_to = _data_span(snap, week, start, end, now)
    reads = _Reads.of(snap)
    ledger = reads.ledger
    week_ledger = ledger.filter((pl.col("day") >= start.date()) & (pl.col("day") < end.date()))
    recs, prev_recs, curves = _recommendations(reads, cfg, catalog, start, end, now)
    waste, prev_waste_usd = _waste(snap, start, end)
    rep = Report(
        week=week,
        start=start,
        end=end,
        generated_at=now,
        data_from=data_from,
        data_to=data_to,
        this=week_figures(ledger, start.date(), end.date()),
        prev=week_figures(ledger, (start - timedelta(days=7)).date(), start.date()),
        recs=recs,
        prev_recs=prev_recs,
        curves=curves,
        waste=waste,
        prev_waste_usd=prev_waste_usd,
        waste_note=waste_note(cfg, start.date(), end.date()),
        spare_high_end=_spare_high_end(week_ledger, catalog),
        catalog_as_of=catalog_as_of(catalog) if catalog.height else None,
    )
    rep.changes = what_changed(rep)
    rep.unpriced = unpriced_warnings(advisor_reads.unpriced_models(week_ledger), catalog)
    return rep


def _data_span(
    snap: Snapshot, week: str, start: datetime, end: datetime, now: datetime
) -> tuple[datetime, datetime]:
    """The span of the snapshot's GPU data, which must reach into `week` (else ReportError)."""
    if start >= now:
        raise ReportError(f"{week} has not started yet")
    if not advisor_reads.has_advisor_tables(snap):
        raise ReportError("the snapshot has no advisor results yet: run `gpuledger run` once")
    data_from, data_to = advisor_reads.data_span(snap)
    if data_from is None or data_to is None:
        raise ReportError(f"no GPU data in the snapshot for {week}")
    if data_to < start or data_from >= end:
        raise ReportError(
            f"no GPU data in {week} ({start:%d %b} – {end - timedelta(days=1):%d %b %Y}); the"
            f" snapshot holds {data_from:%d %b} – {data_to:%d %b %Y}"
        )
    return data_from, data_to


def _recommendations(
    reads: _Reads,
    cfg: Config,
    catalog: pl.DataFrame,
    start: datetime,
    end: datetime,
    now: datetime,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The recommendations as of the week's end (or now) with the hybrids' demand curves, and
    the recommendations as of the week before's. Both see the workloads' evidence the daemon
    last stored (the process samples are not in the snapshot)."""
    ledger, usage, instances = reads.ledger, reads.usage, reads.instances
    params = Params.from_config(cfg)
    sensitive = set(cfg.workloads.sensitive)
    out = recommendation_results(
        usage,
        ledger,
        instances,
        catalog,
        params,
        sensitive,
        end=min(end, now),
        now=now,
        evidence=reads.evidence,
    )
    prev = recommendation_results(
        usage.filter(pl.col("hour") < start),
        ledger.filter(pl.col("day") < start.date()),
        instances,
        catalog,
        params,
        sensitive,
        end=start,
        now=now,
        evidence=reads.evidence,
    )
    return out.recommendations, prev.recommendations, out.curves


def _waste(snap: Snapshot, start: datetime, end: datetime) -> tuple[pl.DataFrame, float]:
    """The week's stored wasted high-end GPU time per workload, GPU model and kind (the figure
    the dashboard shows for the same days), and the week before's money."""
    week = waste_summary(snap, start.date(), end.date(), by=("workload", "gpu_model", "kind"))
    prev = waste_total(snap, (start - timedelta(days=7)).date(), start.date())
    waste = week.select(
        "workload", "gpu_model", "kind", "runs", hours="wasted_gpu_hours", usd="wasted_usd"
    ).cast(pl.Schema(WASTE_SCHEMA))
    return waste, float(prev["wasted_usd"])


def _spare_high_end(week_ledger: pl.DataFrame, catalog: pl.DataFrame) -> pl.DataFrame:
    """High-end GPU-hours and money of the week no process held (`__idle__`), per host and model."""
    resolver = GpuClasses(catalog)
    return (
        resolver.resolve_frame(week_ledger.filter(pl.col("workload") == IDLE), memory=None)
        .filter(pl.col("gpu_class").is_in(list(resolver.high_end)))
        .group_by("host", "gpu_model")
        .agg(hours=pl.col("gpu_hours").sum(), usd=pl.col("cost_usd").sum())
        .sort("usd", descending=True)
    )
