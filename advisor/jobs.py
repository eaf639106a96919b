"""The periodic advisor jobs: read through warehouse/, compute with the pure functions, store.

`refresh_ledger` runs in every cycle that ingested something (cli/app.py `cycle`): attribution of
GPU time per workload and hour, the daily ledger, and the recommendations, stored together in
one transaction so the next snapshot shows figures from the same data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from advisor.attribution import hourly_usage, minute_shares
from advisor.ledger import daily_ledger, held_usage, host_placements, local_rates
from advisor.recommend import Params, recommendations
from config.settings import Config
from warehouse.results import (
    advisor_minutes,
    instance_types,
    process_shares,
    store_advisor_results,
)
from warehouse.store import Warehouse

log = logging.getLogger(__name__)


@dataclass
class AdvisorResults:
    usage: pl.DataFrame  # results_usage_hourly
    ledger: pl.DataFrame  # results_daily_ledger
    recommendations: pl.DataFrame
    alternatives: pl.DataFrame

    def tables(self) -> dict[str, pl.DataFrame]:
        return {
            "results_usage_hourly": self.usage,
            "results_daily_ledger": self.ledger,
            "results_recommendations": self.recommendations,
            "results_alternatives": self.alternatives,
        }


def compute_advisor(
    minutes: pl.DataFrame,
    process_minutes: pl.DataFrame,
    bills: pl.DataFrame,
    instances: pl.DataFrame,
    cfg: Config,
    catalog: pl.DataFrame,
    *,
    now: datetime,
) -> AdvisorResults:
    """All advisor results from the warehouse's frames (pure: no I/O)."""
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
    recs, alts = recommendations(
        usage,
        ledger,
        instances,
        catalog,
        Params.from_config(cfg),
        set(cfg.workloads.sensitive),
        end=now,
        now=now,
    )
    return AdvisorResults(usage, ledger, recs, alts)


def load_and_compute(
    wh: Warehouse, cfg: Config, catalog: pl.DataFrame, *, days: int, now: datetime
) -> AdvisorResults:
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
    )


def refresh_ledger(
    wh: Warehouse, cfg: Config, catalog: pl.DataFrame, *, days: int, now: datetime | None = None
) -> int:
    """Recompute attribution, the daily ledger (last `days` days) and the recommendations;
    returns the ledger rows stored."""
    now = now or datetime.now(UTC)
    results = load_and_compute(wh, cfg, catalog, days=days, now=now)
    store_advisor_results(wh, results.tables())
    log.debug(
        "advisor: %d usage rows, %d ledger rows, %d recommendations",
        results.usage.height,
        results.ledger.height,
        results.recommendations.height,
    )
    return results.ledger.height


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
    held for long, and email each where [report] smtp_host and email_to are set. Reads only the
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
            if cfg.report.smtp_host and cfg.report.email_to:
                try:
                    email_report(cfg, files)
                    log.info("weekly report %s sent to %s", week, ", ".join(cfg.report.email_to))
                except Exception as exc:  # the file is written; say why the mail is not
                    log.error("weekly report %s not sent: %s", week, exc)
    finally:
        snap.close()
    return written
