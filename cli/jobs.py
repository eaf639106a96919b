"""The daemon's periodic jobs beyond ingest and publish.

Each entry is (name, period in seconds, callable). The daemon runs each on its own period, guarded
(a failure is logged and retried next period), in its scheduler thread; a job writes only through
the `Warehouse` it is given. Features add their job here in one line.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from config.settings import Config
from warehouse.store import Warehouse

Job = tuple[str, float, Callable[[], object]]


def periodic_jobs(cfg: Config, wh: Warehouse, catalog: pl.DataFrame, *, demo_on: bool) -> list[Job]:
    from cli import app

    jobs: list[Job] = []
    if demo_on:
        jobs.append(("demo-billing", 300.0, lambda: app.demo_billing_tick(cfg)))
    if cfg.alerts.enabled:  # wasted high-end GPU time: detect, update alerts, deliver
        from advisor.alerts import AlertService

        alert_service = AlertService(cfg, catalog)
        jobs.append(("alerts", cfg.alerts.check_interval_s, lambda: alert_service.run_once(wh)))
    from cli.providers import PROVIDERS

    for provider in PROVIDERS.values():  # billing pulls, in their own thread, into the spool
        if provider.enabled(cfg):
            jobs.append(
                (f"{provider.name}-billing", provider.check_every_s, provider.daemon_job(cfg))
            )
    from warehouse.retention import retention_job

    jobs.append(retention_job(cfg, wh))  # raw rows kept [retention] raw_days; spool compaction
    if cfg.ship.pull_from:  # multi-host over S3: the agents' batches into the local spool
        from collectors.shipping import pull_job

        jobs.append(pull_job(cfg.ship, cfg.spool_dir))
    if cfg.report.weekly:  # the weekly report, Monday 08:00 local time, and weeks it missed
        from advisor.jobs import weekly_report_tick

        jobs.append(("weekly-report", 60.0, lambda: weekly_report_tick(cfg, catalog)))
    return jobs
