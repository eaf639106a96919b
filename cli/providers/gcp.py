"""`gpuledger billing gcp` and the daemon's Google Cloud job: the billing files in Cloud Storage
and the BigQuery export configured in [gcp] (the GCP pull provider, registered in
cli/providers/__init__.py; the pull itself is collectors/billing/gcp.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime

from cli.providers import pulls
from collectors.billing.gcp import GcpPullOptions, pull_gcp_bigquery, pull_gcp_files
from collectors.billing.provider import PullReport, WindowPlan
from config.settings import Config, ConfigError
from warehouse.billing_state import BillingState


def add_arguments(a: argparse.ArgumentParser) -> None:
    """The options of `gpuledger billing gcp`."""
    a.add_argument("--no-files", action="store_true", help="skip the Cloud Storage files")
    a.add_argument("--no-bigquery", action="store_true", help="skip the BigQuery export")


def pull_options(cfg: Config) -> GcpPullOptions:
    """The [gcp] settings as pull options; refuses a configuration that would count twice."""
    g = cfg.gcp
    where = f"{cfg.source or 'configuration'}: [gcp]"
    if g.bucket and g.bigquery_table:
        raise ConfigError(
            f"{where} bucket = {g.bucket!r} and bigquery_table = {g.bigquery_table!r} would "
            "count the same dollars twice: set one of them"
        )
    if not g.bucket and not g.bigquery_table:
        raise ConfigError(f"{where} set bucket (billing files) or bigquery_table")
    if g.export_prefix and not g.bucket:
        raise ConfigError(f"{where} export_prefix is set but bucket is empty")
    return GcpPullOptions(
        project=g.project,
        bucket=g.bucket,
        export_prefix=g.export_prefix,
        bigquery_table=g.bigquery_table,
        tag_key=cfg.workloads.tag_key,
    )


def _pull(
    cfg: Config, opts: GcpPullOptions, *, files: bool = True, bigquery: bool = True
) -> Callable[[BillingState], PullReport]:
    plan = WindowPlan(cfg.gcp.bq_trailing_days, cfg.gcp.bq_rebuild_days)

    def pull(state: BillingState) -> PullReport:
        report = PullReport()
        if files and opts.bucket:
            part = pull_gcp_files(opts, state, cfg.spool_dir, cfg.db_path.parent / "tmp")
            report.lines += part.lines
            report.batches += part.batches
        if bigquery and opts.bigquery_table:
            now = datetime.now(UTC)
            part = pull_gcp_bigquery(opts, state, cfg.spool_dir, plan, now=now)
            report.lines += part.lines
            report.batches += part.batches
        return report

    return pull


def run(args: argparse.Namespace, cfg: Config) -> int:
    """`gpuledger billing gcp`: one pull now, ingested (or queued for the daemon)."""
    pull = _pull(cfg, pull_options(cfg), files=not args.no_files, bigquery=not args.no_bigquery)
    return pulls.run_command(cfg, "gcp", "Google Cloud", pull, args.format)


def daemon_job(cfg: Config, *, check_every_s: float = 60.0) -> Callable[[], None]:
    """The daemon's Google Cloud job (validates [gcp] now: a bad one stops the daemon)."""
    return pulls.daemon_job(
        cfg,
        "gcp",
        cfg.gcp.pull_interval_h,
        _pull(cfg, pull_options(cfg)),
        check_every_s=check_every_s,
    )
