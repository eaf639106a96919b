"""`gpuledger billing aws` and the daemon's AWS job: pull AWS Cost Explorer and the S3 exports
configured in [aws] (the AWS pull provider, registered in cli/providers/__init__.py).

Pulls write spool batches, then (like `import`) ingest them when no daemon owns the warehouse,
else leave them queued for it. Every run prints how many Cost Explorer requests it made (each
costs USD 0.01).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from cli import app
from cli.output import emit
from cli.providers.pulls import record_status
from collectors.billing.aws import AwsPullOptions, PullReport, describe_error, pull_aws
from collectors.billing.aws_ce import USD_PER_REQUEST
from collectors.errors import InputError
from config.settings import Config, ConfigError
from warehouse.billing_state import BillingState
from warehouse.lock import LockHeld

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
CE_HISTORY_DAYS = 395  # Cost Explorer answers for about the last 13 months


def add_arguments(a: argparse.ArgumentParser) -> None:
    """The options of `gpuledger billing aws`."""
    a.add_argument("--since", help="first day to pull from Cost Explorer (YYYY-MM-DD)")
    a.add_argument("--until", help="day after the last one to pull (YYYY-MM-DD; default: tomorrow)")
    a.add_argument("--no-cost-explorer", action="store_true", help="skip Cost Explorer")
    a.add_argument("--no-exports", action="store_true", help="skip the S3 exports")


# Options ---------------------------------------------------------------------------------------
def pull_options(cfg: Config) -> AwsPullOptions:
    """The [aws] settings as pull options; refuses a configuration that would count twice."""
    aws = cfg.aws
    where = f"{cfg.source or 'configuration'}: [aws]"
    if aws.cost_explorer and aws.export_bucket:
        raise ConfigError(
            f"{where} cost_explorer = true and export_bucket = {aws.export_bucket!r} would count "
            "the same dollars twice: set cost_explorer = false to read the export only, or "
            'export_bucket = "" to use Cost Explorer'
        )
    if aws.export_prefix and not aws.export_bucket:
        raise ConfigError(f"{where} export_prefix is set but export_bucket is empty")
    return AwsPullOptions(
        region=aws.region,
        profile=aws.profile,
        accounts=tuple((a.id, a.name, a.role_arn) for a in aws.accounts),
        use_organizations=aws.use_organizations,
        organizations_role_name=aws.organizations_role_name,
        cost_explorer=aws.cost_explorer,
        ce_trailing_days=aws.ce_trailing_days,
        ce_rebuild_days=aws.ce_rebuild_days,
        ce_with_resources=aws.ce_with_resources,
        export_bucket=aws.export_bucket,
        export_prefix=aws.export_prefix,
        tag_key=cfg.workloads.tag_key,
    )


def _day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(flag, f"{value!r} is not a date (YYYY-MM-DD)") from None


def run_pull(
    cfg: Config,
    opts: AwsPullOptions,
    *,
    since: date | None = None,
    until: date | None = None,
    cost_explorer: bool = True,
    exports: bool = True,
    session: Any = None,
    now: datetime | None = None,
    sleep: Callable[[float], None] | None = None,
) -> PullReport:
    """One pull under the state lock (raises LockHeld while another pull runs)."""
    kwargs: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    with BillingState(cfg.billing_state_path) as state:
        report = pull_aws(
            opts,
            state,
            cfg.spool_dir,
            cfg.db_path.parent / "tmp",
            since=since,
            until=until,
            cost_explorer=cost_explorer,
            exports=exports,
            session=session,
            now=now,
            **kwargs,
        )
        stamp = (now or datetime.now(UTC)).isoformat()
        state.mark("last_pull_at", stamp)
        if cost_explorer and opts.cost_explorer:
            state.mark("last_ce_pull_at", stamp)
    record_status(cfg, "aws", report, now or datetime.now(UTC))  # for Data health
    return report


# Commands --------------------------------------------------------------------------------------
def run(args: argparse.Namespace, cfg: Config, *, session: Any = None) -> int:
    """`gpuledger billing aws`: one pull now, ingested (or queued for the daemon)."""
    opts = pull_options(cfg)
    since, until = _window(args.since, args.until)
    try:
        report = run_pull(
            cfg,
            opts,
            since=since,
            until=until,
            cost_explorer=not args.no_cost_explorer,
            exports=not args.no_exports,
            session=session,
        )
    except LockHeld as exc:
        print(f"gpuledger: another AWS billing pull is running ({exc.holder})", file=sys.stderr)
        return EXIT_FAIL
    except NoCredentialsError:
        print(
            "gpuledger: no AWS credentials in boto3's chain (environment, [aws] profile, "
            "instance role): see docs/aws.md",
            file=sys.stderr,
        )
        return EXIT_FAIL
    except (ClientError, BotoCoreError) as exc:
        print(f"gpuledger: AWS: {describe_error(exc)}", file=sys.stderr)
        return EXIT_FAIL
    status = app.ingest_now(cfg) if report.batches else "nothing new"
    emit(report_rows(report, status), args.format)
    if report.bad_input:
        return EXIT_USAGE
    return EXIT_FAIL if report.failed else EXIT_OK


def _window(since_text: str | None, until_text: str | None) -> tuple[date | None, date | None]:
    """--since and --until as days; --until defaults to tomorrow when --since is given."""
    today = datetime.now(UTC).date()
    since, until = _day(since_text, "--since"), _day(until_text, "--until")
    if until is not None and since is None:
        raise InputError("--until", "needs --since")
    if since is not None:
        until = until or today + timedelta(days=1)
        if since >= until:
            raise InputError("--since", f"{since} is not before --until {until}")
        if since < today - timedelta(days=CE_HISTORY_DAYS):
            raise InputError("--since", f"{since}: Cost Explorer keeps about 13 months")
    return since, until


def report_rows(report: PullReport, status: str) -> list[dict[str, Any]]:
    """A row per pulled account or export period, then the total with the ingest status and
    what Cost Explorer cost."""
    rows: list[dict[str, Any]] = [
        {
            "source": line.source,
            "account": line.account,
            "period": line.period,
            "rows": line.rows,
            "ce_requests": line.ce_requests,
            "status": line.status,
        }
        for line in report.lines
    ]
    rows.append(
        {
            "source": "total",
            "account": "",
            "period": "",
            "rows": sum(line.rows for line in report.lines),
            "ce_requests": report.ce_requests,
            "status": f"{status}; Cost Explorer requests: {report.ce_requests} "
            f"(USD {report.ce_requests * USD_PER_REQUEST:.2f})",
        }
    )
    return rows


# Daemon ----------------------------------------------------------------------------------------
def daemon_job(cfg: Config, *, check_every_s: float = 60.0) -> Callable[[], None]:
    """The daemon's AWS job: every `check_every_s` it starts a pull in a background thread when
    one is due ([aws] pull_interval_h; Cost Explorer only every ce_interval_h), so a long export
    download never stalls ingest and publish. Validates the options now (a conflict stops the
    daemon at start with exit status 2)."""
    opts = pull_options(cfg)
    running = threading.Lock()

    def due() -> tuple[bool, bool]:
        now = datetime.now(UTC)
        with BillingState(cfg.billing_state_path) as state:
            last, last_ce = state.marked("last_pull_at"), state.marked("last_ce_pull_at")
        pull = last is None or now - last >= timedelta(hours=cfg.aws.pull_interval_h)
        ce = last_ce is None or now - last_ce >= timedelta(hours=cfg.aws.ce_interval_h)
        return pull or (ce and opts.cost_explorer), ce

    def work(ce: bool) -> None:
        try:
            report = run_pull(cfg, opts, cost_explorer=ce)
            for line in report.lines:
                log.info(
                    "aws %s %s %s: %s rows, %s Cost Explorer requests, %s",
                    line.source,
                    line.account,
                    line.period,
                    line.rows,
                    line.ce_requests,
                    line.status,
                )
        except LockHeld:
            log.info("an AWS pull is already running elsewhere; next check in %.0fs", check_every_s)
        except Exception:
            log.exception("AWS billing pull failed; it is tried again at the next check")
        finally:
            running.release()

    def job() -> None:
        if not running.acquire(blocking=False):
            return  # the previous pull is still going
        try:
            pull, ce = due()
        except LockHeld:
            running.release()
            return
        except BaseException:
            running.release()
            raise
        if not pull:
            running.release()
            return
        threading.Thread(target=work, args=(ce,), name="aws-billing", daemon=True).start()

    return job
