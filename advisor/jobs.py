"""The periodic advisor jobs: read through warehouse/, compute with the pure functions, store.

`refresh_ledger` runs in every cycle (cli/app.py `cycle`). The ledger covers every day the
warehouse holds data for, and an ingest re-costs only the days it touched (DESIGN.md §2):

- ingest marks the days it changed in `ledger_dirty` (warehouse/store.py): `usage` for days whose
  minute rollups or process samples changed, `cost` for days whose bills changed (new rows and
  the rows a restated scope replaced);
- this job adds marks for what changes past days without touching them: a host whose placement or
  owner (from the bills over all time) differs from the one its days were costed with (all its
  days), a change of the prices or of the code and tables behind the figures (every day; the
  inputs' fingerprints are kept in `ledger_state`), and `recompute=True` (every day, from the
  rollups);
- it then recomputes the marked days a chunk of at most CHUNK_DAYS days at a time, so a year of
  history never loads at once: `usage` days are attributed again from their rollups and process
  samples, `cost` days re-placed and re-priced from their stored hourly attribution (which keeps
  the shared-GPU split after retention has deleted the raw process samples). Each chunk replaces
  its days' rows in results_usage_hourly and results_daily_ledger and clears their marks in one
  transaction;
- with each chunk, the wasted high-end GPU time (advisor/waste.py) of every run that touches its
  days is computed again, each run whole, and stored per run and day in results_waste_daily in
  the same transaction: the one waste figure over all history that the pages, the weekly report
  and the alerts' money agree on;
- last, the recommendations are computed from the stored hourly attribution and ledger over the
  advisor window, with each workload's evidence from the raw data (warehouse/evidence.py), and
  stored with their alternatives, the hybrids' demand curves and that evidence.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from advisor.attribution import hourly_usage, minute_shares
from advisor.engine import Engine, engine_for
from advisor.ledger import daily_ledger, held_usage, host_placements, local_rates
from advisor.partitions import CostContext, cost_partition, gather_costs, split_chunk, unheld_usage
from advisor.recommend import Params, recommendation_results
from advisor.waste import billed_hosts, run_reach, wasted_days
from config.settings import Config
from tables.stored import (
    GPU_MINUTE,
    RESULTS_ALTERNATIVES,
    RESULTS_DAILY_LEDGER,
    RESULTS_DEMAND_CURVES,
    RESULTS_RECOMMENDATIONS,
    RESULTS_USAGE_HOURLY,
    RESULTS_WASTE_DAILY,
    RESULTS_WORKLOAD_EVIDENCE,
)
from warehouse import results
from warehouse.evidence import workload_evidence
from warehouse.results import (
    advisor_minutes,
    instance_types,
    process_shares,
)
from warehouse.store import Warehouse

log = logging.getLogger(__name__)

# Days recomputed per transaction: bounds the memory a long history needs.
CHUNK_DAYS = 31
# Bump when the attribution (hourly usage) or the ledger's arithmetic changes: every stored day is
# then attributed again (USAGE_VERSION) or re-costed (COST_VERSION) at the next run.
USAGE_VERSION = "1"
COST_VERSION = "1"
# Bump when the wasted-time detection's arithmetic changes: every day's waste is computed again.
WASTE_VERSION = "1"
USAGE_KEY, COST_KEY, WASTE_KEY = "usage_inputs", "cost_inputs", "waste_inputs"
# A run goes on across one missing minute (advisor/waste.py): runs that end or start this close
# to a recomputed span are recomputed whole with it.
RUN_GAP = timedelta(minutes=2)
# The bill's instance types are read over all time for the waste's prices.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class AdvisorResults:
    usage: pl.DataFrame  # RESULTS_USAGE_HOURLY
    ledger: pl.DataFrame  # RESULTS_DAILY_LEDGER
    recommendations: pl.DataFrame
    alternatives: pl.DataFrame
    curves: pl.DataFrame = field(default_factory=RESULTS_DEMAND_CURVES.empty)
    evidence: pl.DataFrame = field(default_factory=RESULTS_WORKLOAD_EVIDENCE.empty)

    def tables(self) -> dict[str, pl.DataFrame]:
        return {
            RESULTS_USAGE_HOURLY.name: self.usage,
            RESULTS_DAILY_LEDGER.name: self.ledger,
            RESULTS_RECOMMENDATIONS.name: self.recommendations,
            RESULTS_ALTERNATIVES.name: self.alternatives,
            RESULTS_DEMAND_CURVES.name: self.curves,
            RESULTS_WORKLOAD_EVIDENCE.name: self.evidence,
        }


@dataclass
class LedgerRefresh:
    """What one `refresh_ledger` did."""

    usage_days: list[date] = field(default_factory=list)  # attributed again from rollups
    cost_days: list[date] = field(default_factory=list)  # re-costed from stored attribution
    chunks: int = 0
    ledger_rows: int = 0  # ledger rows written for those days
    waste_rows: int = 0  # results_waste_daily rows written (runs x days)
    recommendations: int = 0
    reasons: list[str] = field(default_factory=list)  # why past days were marked

    @property
    def days(self) -> int:
        return len(self.usage_days) + len(self.cost_days)


def compute_advisor(
    minutes: pl.DataFrame,
    process_minutes: pl.DataFrame,
    bills: pl.DataFrame,
    instances: pl.DataFrame,
    cfg: Config,
    catalog: pl.DataFrame,
    *,
    now: datetime,
    evidence: pl.DataFrame | None = None,
) -> AdvisorResults:
    """All advisor results from one window's frames, in memory (pure: no I/O). The job stores the
    same figures day by day (`refresh_ledger`); this whole-window form serves tests and checks.
    `evidence`: results_workload_evidence rows (warehouse/evidence.py), where at hand."""
    local_hosts = [h.name for h in cfg.local.hosts]
    usage = hourly_usage(minutes, minute_shares(process_minutes))
    placements = host_placements(usage["host"], bills, local_hosts)
    usage = held_usage(usage, placements)
    rates = local_rates(usage.select("host", "gpu_model").unique(), cfg, catalog)
    ledger = daily_ledger(
        usage,
        bills,
        rates,
        price_per_kwh=cfg.energy.price_per_kwh,
        pue=cfg.energy.pue,
        local_hosts=local_hosts,
    )
    out = recommendation_results(
        usage,
        ledger,
        instances,
        catalog,
        Params.from_config(cfg),
        set(cfg.workloads.sensitive),
        end=now,
        now=now,
        evidence=evidence,
    )
    if evidence is None:
        evidence = RESULTS_WORKLOAD_EVIDENCE.empty()
    return AdvisorResults(
        usage, ledger, out.recommendations, out.alternatives, out.curves, evidence
    )


def load_and_compute(
    wh: Warehouse, cfg: Config, catalog: pl.DataFrame, *, days: int, now: datetime
) -> AdvisorResults:
    """`compute_advisor` over the last `days` days (at least the advisor window), read at once."""
    since = (now - timedelta(days=max(days, cfg.advisor.window_days + 1))).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    until = now + timedelta(days=1)
    return compute_advisor(
        advisor_minutes(wh, since, until),
        process_shares(wh, since, until),
        wh.billing_daily(since, until),
        instance_types(wh, since),
        cfg,
        catalog,
        now=now,
        evidence=window_evidence(wh, cfg, now=now),
    )


# What the stored days were computed with ---------------------------------------------------
def _digest(*parts: object) -> str:
    text = json.dumps(parts, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def input_fingerprints(wh: Warehouse, cfg: Config, catalog: pl.DataFrame) -> dict[str, str]:
    """Fingerprints of what the stored figures depend on beyond the marked data: the code
    versions and table columns (migrations add columns), the prices ([local], [[local.hosts]],
    [energy]) and the catalog, and what the wasted time depends on beyond them ([thresholds],
    the memory headroom)."""
    return {
        USAGE_KEY: _digest(
            USAGE_VERSION,
            results.table_columns(wh, GPU_MINUTE.name),
            results.table_columns(wh, RESULTS_USAGE_HOURLY.name),
        ),
        COST_KEY: _digest(
            COST_VERSION,
            results.table_columns(wh, RESULTS_DAILY_LEDGER.name),
            repr(cfg.local),
            repr(cfg.energy),
            catalog.to_dicts(),
        ),
        WASTE_KEY: _digest(
            WASTE_VERSION,
            results.table_columns(wh, RESULTS_WASTE_DAILY.name),
            repr(cfg.thresholds),
            cfg.advisor.memory_headroom_pct,
        ),
    }


def mark_changed_inputs(
    wh: Warehouse, cfg: Config, catalog: pl.DataFrame, *, recompute: bool = False
) -> list[str]:
    """Mark every day dirty where the inputs' fingerprints changed (the first run on a warehouse
    included: it has none) or `recompute` is asked; returns why, in words."""
    now = input_fingerprints(wh, cfg, catalog)
    before = results.ledger_state(wh)
    reasons = []
    kind = None
    if recompute:
        kind, reasons = "usage", ["a recompute was asked for"]
    elif before.get(USAGE_KEY) != now[USAGE_KEY]:
        kind = "usage"
        reasons = [
            "first run of the incremental ledger"
            if USAGE_KEY not in before
            else "the attribution's code or tables changed"
        ]
    elif before.get(COST_KEY) != now[COST_KEY]:
        kind, reasons = "cost", ["the prices, the catalog or the ledger's code changed"]
    elif before.get(WASTE_KEY) != now[WASTE_KEY]:  # re-costing a day computes its waste too
        kind = "cost"
        reasons = [
            "first computation of the wasted time over all history"
            if WASTE_KEY not in before
            else "the waste thresholds or the waste's code changed"
        ]
    if kind is not None:  # the marks and the new fingerprints in one transaction
        results.mark_days(wh, {kind: results.known_days(wh)}, state=now)
    return reasons


def mark_moved_hosts(wh: Warehouse, resources: pl.DataFrame, local_hosts: list[str]) -> list[str]:
    """Mark every day of each host whose placement or owner, decided from the bills over all time,
    is no longer the one its days were costed with; returns the hosts."""
    before = results.ledger_hosts(wh)
    if before.height == 0:
        return []
    now = host_placements(before["host"], resources, local_hosts)
    moved = (
        before.join(now, on="host", how="inner", suffix="_now")
        .filter(
            pl.col("placement").ne_missing(pl.col("placement_now"))
            | pl.col("owner").ne_missing(pl.col("owner_now"))
        )
        .select("host", placement="placement_now", owner="owner_now")
    )
    if moved.height == 0:
        return []
    hosts = moved["host"].to_list()
    results.mark_days(wh, {"cost": results.host_days(wh, hosts)}, hosts=moved)
    log.info("ledger: placement or owner of %s changed; re-costing their days", ", ".join(hosts))
    return hosts


def day_chunks(dirty: pl.DataFrame, size: int = CHUNK_DAYS) -> Iterator[pl.DataFrame]:
    """The dirty days (day, usage) in chunks spanning at most `size` calendar days."""
    if dirty.height == 0:
        return
    first = dirty["day"].min()
    chunk_no = ((pl.col("day") - pl.lit(first)).dt.total_days() // size).alias("_chunk")
    for _, part in dirty.sort("day").with_columns(chunk_no).group_by("_chunk", maintain_order=True):
        yield part.drop("_chunk")


# Recomputing days --------------------------------------------------------------------------
def chunk_results(
    wh: Warehouse,
    cfg: Config,
    catalog: pl.DataFrame,
    chunk: pl.DataFrame,
    resources: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(hourly attribution, ledger rows, host placements) of the chunk's days."""
    local_hosts = [h.name for h in cfg.local.hosts]
    usage_days = chunk.filter("usage")["day"].to_list()
    cost_days = chunk.filter(~pl.col("usage"))["day"].to_list()
    parts = []
    if usage_days:
        shares = minute_shares(results.process_shares_on_days(wh, usage_days))
        parts.append(hourly_usage(results.minutes_on_days(wh, usage_days), shares))
    if cost_days:
        parts.append(unheld_usage(results.usage_on_days(wh, cost_days)))
    usage = pl.concat(parts, how="diagonal_relaxed")
    placements = host_placements(usage["host"], resources, local_hosts)
    usage = held_usage(usage, placements)
    rates = local_rates(usage.select("host", "gpu_model").unique(), cfg, catalog)
    ledger = daily_ledger(
        usage,
        results.billing_on_days(wh, chunk["day"].to_list()),
        rates,
        price_per_kwh=cfg.energy.price_per_kwh,
        pue=cfg.energy.pue,
        local_hosts=local_hosts,
        placements=placements,
    )
    return usage, ledger, placements


def chunk_results_on(
    engine: Engine,
    wh: Warehouse,
    cfg: Config,
    catalog: pl.DataFrame,
    chunk: pl.DataFrame,
    resources: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """`chunk_results` with the chunk cut into day-and-host partitions (advisor/partitions.py),
    each attributed and costed by `engine`; the same rows. The driver reads the inputs here and
    gets every partition's results back before anything is stored."""
    local_hosts = [h.name for h in cfg.local.hosts]
    usage_days = chunk.filter("usage")["day"].to_list()
    cost_days = chunk.filter(~pl.col("usage"))["day"].to_list()
    minutes = results.minutes_on_days(wh, usage_days) if usage_days else None
    process = results.process_shares_on_days(wh, usage_days) if usage_days else None
    stored = results.usage_on_days(wh, cost_days) if cost_days else None
    work = split_chunk(
        minutes, process, stored, results.billing_on_days(wh, chunk["day"].to_list())
    )
    hosts = {
        w.host
        for w in work
        if w.host is not None and (w.minutes is not None or w.stored is not None)
    }
    placements = host_placements(sorted(hosts), resources, local_hosts)
    usage, ledger = gather_costs(
        engine.map(cost_partition, work, CostContext(placements, cfg, catalog))
    )
    return usage, ledger, placements.join(usage.select("host").unique(), on="host", how="semi")


def chunk_waste(
    wh: Warehouse, cfg: Config, catalog: pl.DataFrame, days: list[date], cloud: pl.DataFrame
) -> tuple[pl.DataFrame, list[tuple[datetime, datetime]]]:
    """The wasted time (RESULTS_WASTE_DAILY rows) of every run that touches the span of `days`,
    each run whole (read with the minutes around the span and those of the stored runs reaching
    into it), and the span whose stored runs these rows replace."""
    lo = datetime.combine(min(days), time(), UTC) - RUN_GAP
    hi = datetime.combine(max(days), time(), UTC) + timedelta(days=1) + RUN_GAP
    since, until = results.waste_span(wh, lo, hi, run_reach(cfg))
    rows = wasted_days(results.waste_minutes(wh, since, until), cloud, catalog, cfg)
    touching = (pl.col("run_started_at") < hi) & (pl.col("run_ended_at") > lo)
    return rows.filter(touching), [(lo, hi)]


def _window_span(cfg: Config, now: datetime) -> tuple[date, datetime, datetime]:
    """The first day and [since, until) read around the advisor window before `now`."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=cfg.advisor.window_days + 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return first, since, since + timedelta(days=cfg.advisor.window_days + 3)


def window_evidence(wh: Warehouse, cfg: Config, *, now: datetime) -> pl.DataFrame:
    """results_workload_evidence over the advisor window before `now`: each workload's activity
    signal and process shape (the raw process samples still kept)."""
    _, since, until = _window_span(cfg, now)
    return workload_evidence(wh, since, until, active_pct=cfg.advisor.active_hour_busy_pct, now=now)


def window_recommendations(
    wh: Warehouse, cfg: Config, catalog: pl.DataFrame, *, now: datetime
) -> dict[str, pl.DataFrame]:
    """The recommendations, their alternatives, the hybrids' demand curves and the evidence they
    were sized by, from the stored hourly attribution and ledger over the advisor window before
    `now`: table name -> rows to store."""
    first, since, until = _window_span(cfg, now)
    evidence = window_evidence(wh, cfg, now=now)
    out = recommendation_results(
        results.usage_between(wh, since, until),
        results.ledger_between(wh, first, until.date()),
        instance_types(wh, since),
        catalog,
        Params.from_config(cfg),
        set(cfg.workloads.sensitive),
        end=now,
        now=now,
        evidence=evidence,
    )
    return {
        RESULTS_RECOMMENDATIONS.name: out.recommendations,
        RESULTS_ALTERNATIVES.name: out.alternatives,
        RESULTS_DEMAND_CURVES.name: out.curves,
        RESULTS_WORKLOAD_EVIDENCE.name: evidence,
    }


def refresh_ledger(
    wh: Warehouse,
    cfg: Config,
    catalog: pl.DataFrame,
    *,
    now: datetime | None = None,
    recompute: bool = False,
    engine: Engine | None = None,
) -> LedgerRefresh:
    """Recompute the ledger of the days that need it (see the module docstring), then the
    recommendations; `recompute` attributes and re-costs every day from the rollups. `engine`
    (advisor/engine.py; by default `[engine] mode`'s, none for "local") attributes and costs
    each day and host as a partition; without one each chunk is computed whole, here."""
    now = now or datetime.now(UTC)
    if engine is None and cfg.engine.mode != "local":
        engine = engine_for(cfg)
    done = LedgerRefresh()
    done.reasons = mark_changed_inputs(wh, cfg, catalog, recompute=recompute)
    resources = results.billed_resources(wh)
    moved = mark_moved_hosts(wh, resources, [h.name for h in cfg.local.hosts])
    if moved:
        done.reasons.append(f"placement or owner changed: {', '.join(moved)}")
    cloud = billed_hosts(resources, results.instance_types(wh, EPOCH))
    for chunk in day_chunks(results.dirty_days(wh)):
        days = chunk["day"].to_list()
        if engine is None:
            usage, ledger, placements = chunk_results(wh, cfg, catalog, chunk, resources)
        else:
            usage, ledger, placements = chunk_results_on(engine, wh, cfg, catalog, chunk, resources)
        waste = chunk_waste(wh, cfg, catalog, days, cloud)
        results.store_ledger_days(wh, days, usage, ledger, placements, waste)
        done.usage_days += chunk.filter("usage")["day"].to_list()
        done.cost_days += chunk.filter(~pl.col("usage"))["day"].to_list()
        done.ledger_rows += ledger.height
        done.waste_rows += waste[0].height
        done.chunks += 1
    stored = window_recommendations(wh, cfg, catalog, now=now)
    results.store_advisor_results(wh, stored)
    done.recommendations = stored[RESULTS_RECOMMENDATIONS.name].height
    if done.reasons:
        log.info("ledger: %s; recomputed %d day(s)", "; ".join(done.reasons), done.days)
    log.debug(
        "advisor: %d day(s) attributed, %d re-costed in %d chunk(s), %d ledger rows,"
        " %d recommendations",
        len(done.usage_days),
        len(done.cost_days),
        done.chunks,
        done.ledger_rows,
        done.recommendations,
    )
    return done


def weekly_report_tick(
    cfg: Config,
    catalog: pl.DataFrame,
    *,
    now: datetime | None = None,
    tz=None,
    limit: int | None = 1,
) -> list:
    """The daemon's weekly report job (every minute): write the due weeks' reports that are not
    written yet (Monday 08:00 local time, and at start-up the weeks it missed, up to
    [report] catch_up_weeks), oldest first and at most `limit` a tick so the scheduler is never
    held for long, and email each where [report.email] host and recipients are set. Reads only the
    snapshot, so it never holds the writer."""
    from advisor.report import (
        due_weeks,
        email_report,
        reports_dir,
        write_report,
        written_weeks,
    )
    from warehouse import advisor_reads
    from warehouse.snapshot import Snapshot

    now = now or datetime.now(UTC)
    snap = Snapshot(cfg.snapshot_path)
    if not snap.exists():
        return []
    written = []
    try:
        if not advisor_reads.has_advisor_tables(snap):
            return []
        data_from, data_to = advisor_reads.data_span(snap)
        directory = reports_dir(cfg)
        weeks = due_weeks(
            now,
            written_weeks(directory),
            data_from,
            data_to,
            catch_up=cfg.report.catch_up_weeks,
            tz=tz,
        )
        for week in weeks[:limit]:
            files = write_report(cfg, catalog, week, snap=snap, now=now, directory=directory)
            log.info("weekly report written: %s (%s)", files.html, files.summary)
            written.append(files)
            if cfg.report.email.enabled:
                try:
                    email_report(cfg, files)
                    log.info(
                        "weekly report %s sent to %s", week, ", ".join(cfg.report.email.recipients)
                    )
                except Exception as exc:  # the file is written; say why the mail is not
                    log.error("weekly report %s not sent: %s", week, exc)
    finally:
        snap.close()
    return written
