"""One AWS billing pull: Cost Explorer for each account, then the S3 exports, into the spool.

Each account's Cost Explorer rows become one spool batch (its days' scopes travel together), each
export billing period another; the state (collectors see it only through the `PullState`
protocol; warehouse/billing_state.py keeps it) is updated only after a batch is in the spool, so
a crash costs at most a repeated download or request, never a lost or doubled dollar.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from collectors.billing import aws_accounts, aws_ce, aws_exports
from collectors.billing.provider import (
    PullLine,
    PullReport,
    PullState,
    Window,
    WindowPlan,
    export_lines,
    pull_window,
    window_period,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AwsPullOptions:
    """What to pull (built from the [aws] configuration by the CLI)."""

    region: str = "us-east-1"
    profile: str = ""
    accounts: tuple[tuple[str, str, str], ...] = ()  # (id, name, role_arn)
    use_organizations: bool = False
    organizations_role_name: str = ""
    cost_explorer: bool = True
    ce_trailing_days: int = 3
    ce_rebuild_days: int = 7
    ce_with_resources: bool = False
    export_bucket: str = ""
    export_prefix: str = ""
    tag_key: str = "workload"


__all__ = ["AwsPullOptions", "PullLine", "PullReport", "PullState", "describe_error", "pull_aws"]


def describe_error(exc: Exception) -> str:
    """A botocore error in words, with the permission to grant where AWS denied one."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code, message = err.get("Code", ""), err.get("Message", "")
        op = exc.operation_name
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return f"{op} denied ({message}): grant it as in docs/aws.md"
        return f"{op}: {code}: {message}"
    return f"{type(exc).__name__}: {exc}"


def pull_aws(
    opts: AwsPullOptions,
    state: PullState,
    spool_dir: Path,
    work_dir: Path,
    *,
    since: date | None = None,
    until: date | None = None,
    cost_explorer: bool = True,
    exports: bool = True,
    now: datetime | None = None,
    session: boto3.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PullReport:
    """Pull what `opts` enables; `since`/`until` (end-exclusive) override Cost Explorer's window."""
    now = now or datetime.now(UTC)
    base = session or aws_accounts.base_session(opts.profile, opts.region)
    report = PullReport()
    if cost_explorer and opts.cost_explorer:
        for target in aws_accounts.targets(
            base,
            list(opts.accounts),
            use_organizations=opts.use_organizations,
            organizations_role_name=opts.organizations_role_name,
        ):
            report.lines.append(
                _pull_ce_account(
                    opts, state, spool_dir, base, target, now, since, until, sleep, report
                )
            )
    if exports and opts.export_bucket:
        s3 = base.client("s3")
        try:
            results = aws_exports.pull_exports(
                s3,
                opts.export_bucket,
                opts.export_prefix,
                state,
                spool_dir,
                work_dir,
                tag_key=opts.tag_key,
            )
        except (ClientError, BotoCoreError) as exc:
            report.lines.append(PullLine("export", "", "", 0, 0, f"error: {describe_error(exc)}"))
        else:
            export_lines(results, f"s3://{opts.export_bucket}", report)
    return report


@dataclass
class CeAccountSource:
    """One account's Cost Explorer as the interface's `WindowSource`."""

    ce: aws_ce.CostExplorer
    account_id: str
    label: str
    tag_key: str
    name: str = "aws_ce"

    @property
    def key(self) -> str:
        return self.label

    def fetch(self, window: Window) -> aws_ce.CePull:
        return aws_ce.pull_account(self.ce, self.account_id, window, self.tag_key, label=self.label)


def _pull_ce_account(
    opts: AwsPullOptions,
    state: PullState,
    spool_dir: Path,
    base: boto3.Session,
    target: aws_accounts.AccountTarget,
    now: datetime,
    since: date | None,
    until: date | None,
    sleep: Callable[[float], None],
    report: PullReport,
) -> PullLine:
    ce: aws_ce.CostExplorer | None = None
    label = target.label
    try:
        session = aws_accounts.session_for(target, base)
        account_id = target.account_id
        if account_id is None:  # the caller's own account, by its id (never unfiltered)
            account_id = session.client("sts").get_caller_identity()["Account"]
        label = account_id
        ce = aws_ce.CostExplorer(aws_ce.ce_client(session), sleep=sleep)
        window, pull = pull_window(
            CeAccountSource(ce, account_id, label, opts.tag_key),
            state,
            spool_dir,
            WindowPlan(
                opts.ce_trailing_days,
                opts.ce_rebuild_days,
                opts.ce_with_resources,
                aws_ce.RESOURCE_DAYS,
            ),
            now=now,
            since=since,
            until=until,
            metadata={"source": "aws_ce", "account": label},
            on_batch=report.batches.append,
        )
    except (ClientError, BotoCoreError) as exc:
        requests = ce.requests if ce else 0
        log.error("Cost Explorer pull for %s failed: %s", label, describe_error(exc))
        return PullLine("cost_explorer", label, "", 0, requests, f"error: {describe_error(exc)}")
    except aws_ce.CeAnswerError as exc:  # nothing spooled, the state untouched: asked again
        log.error("%s", exc)
        requests = ce.requests if ce else 0
        return PullLine("cost_explorer", label, "", 0, requests, f"refused: {exc}")
    status = "pulled: " + ", ".join(window.reasons)
    return PullLine(
        "cost_explorer", label, window_period(window), pull.frame.height, pull.requests, status
    )
