"""The daemon's periodic jobs beyond ingest and publish: one line each in `JOBS`.

A job is its name, its period (read from the configuration), when it runs, and a factory that
builds its tick; the factory imports the feature's code only when the job runs, so a feature
that is off costs nothing. The daemon runs each tick on its own period, guarded (a failure is
logged and retried next period), in its scheduler thread; a tick writes only through the
`Warehouse` it is given. docs/architecture.md says how to add a job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from config.settings import Config
from warehouse.store import Warehouse

if TYPE_CHECKING:
    from cli.providers import PullProvider

Tick = Callable[[], object]
Job = tuple[str, float, Tick]


@dataclass(frozen=True)
class JobContext:
    """What a job's factory and its `when` may use."""

    cfg: Config
    wh: Warehouse
    catalog: pl.DataFrame
    demo_on: bool  # the demo fleet runs (cli/app.py demo_decision)


@dataclass(frozen=True)
class JobSpec:
    """One daemon job: its name, its period in seconds, when it runs, and its tick's factory."""

    name: str
    period_s: Callable[[Config], float]
    when: Callable[[JobContext], bool]
    factory: Callable[[JobContext], Tick]


def _on(section: str, key: str) -> Callable[[JobContext], bool]:
    """`when`: the job runs while `[section] key` is set (true, or not empty)."""
    return lambda ctx: bool(getattr(getattr(ctx.cfg, section), key))


# The factories: each imports its feature when its job runs ------------------------------------
def _demo_billing(ctx: JobContext) -> Tick:
    from cli import app

    return lambda: app.demo_billing_tick(ctx.cfg)


def _alerts(ctx: JobContext) -> Tick:
    from advisor.alerts import AlertService

    service = AlertService(ctx.cfg, ctx.catalog)
    return lambda: service.run_once(ctx.wh)


def _billing_pulls() -> list[JobSpec]:
    """One `<name>-billing` job per pull provider (cli/providers/): in its own thread, into the
    spool, when `[<section>] enabled`."""
    from cli.providers import PROVIDERS

    return [_billing_pull(p) for p in PROVIDERS.values()]


def _billing_pull(p: PullProvider) -> JobSpec:
    def period_s(_cfg: Config) -> float:
        return p.check_every_s

    def when(ctx: JobContext) -> bool:
        return p.enabled(ctx.cfg)

    def factory(ctx: JobContext) -> Tick:
        return p.daemon_job(ctx.cfg)

    return JobSpec(f"{p.name}-billing", period_s, when, factory)


def _retention(ctx: JobContext) -> Tick:
    from warehouse.retention import retention_job

    return retention_job(ctx.cfg, ctx.wh)


def _lake_maintenance(ctx: JobContext) -> Tick:
    from warehouse.lake import maintenance_job

    return maintenance_job(ctx.cfg, ctx.wh)


def _ship_pull(ctx: JobContext) -> Tick:
    from collectors.shipping import pull_job

    return pull_job(ctx.cfg.ship, ctx.cfg.spool_dir)


def _weekly_report(ctx: JobContext) -> Tick:
    from advisor.jobs import weekly_report_tick

    return lambda: weekly_report_tick(ctx.cfg, ctx.catalog)


# One line per job, in the order the daemon schedules them -------------------------------------
JOBS: list[JobSpec | Callable[[], list[JobSpec]]] = [
    # the live demo's billing lines, while the demo fleet runs
    JobSpec("demo-billing", lambda cfg: 300.0, lambda ctx: ctx.demo_on, _demo_billing),
    # wasted high-end GPU time: detect, update alerts, deliver
    JobSpec("alerts", lambda cfg: cfg.alerts.check_interval_s, _on("alerts", "enabled"), _alerts),
    _billing_pulls,  # a job per billing pull provider
    # raw rows kept [retention] raw_days; spool compaction
    JobSpec("retention", lambda cfg: cfg.retention.interval_s, lambda ctx: True, _retention),
    # the Iceberg lake: expire snapshots, rewrite small files, remove orphans
    JobSpec("lake", lambda cfg: cfg.lake.interval_s, _on("lake", "enabled"), _lake_maintenance),
    # multi-host over S3: the agents' batches into the local spool
    JobSpec("ship-pull", lambda cfg: cfg.ship.interval_s, _on("ship", "pull_from"), _ship_pull),
    # the weekly report, Monday 08:00 local time, and weeks it missed
    JobSpec("weekly-report", lambda cfg: 60.0, _on("report", "weekly"), _weekly_report),
]


def job_specs() -> list[JobSpec]:
    """Every job of `JOBS`, a group (such as the billing pulls) expanded in its place."""
    return [s for entry in JOBS for s in ([entry] if isinstance(entry, JobSpec) else entry())]


def periodic_jobs(cfg: Config, wh: Warehouse, catalog: pl.DataFrame, *, demo_on: bool) -> list[Job]:
    """(name, period in seconds, tick) of every job that runs under this configuration."""
    ctx = JobContext(cfg, wh, catalog, demo_on)
    return [(s.name, s.period_s(cfg), s.factory(ctx)) for s in job_specs() if s.when(ctx)]
