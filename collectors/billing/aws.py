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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from collectors.billing import aws_accounts, aws_ce, aws_exports
from collectors.billing.stream import BillingBatch

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


class PullState(aws_exports.ExportState, Protocol):
    def ce_days(self, account: str) -> dict[date, tuple[bool, datetime]]: ...

    def last_ce_run(self, account: str, *, rebuild: bool = False) -> datetime | None: ...

    def record_ce_run(
        self,
        account: str,
        *,
        start: date,
        end: date,
        days: dict[date, bool],
        resources_from: date | None,
        requests: int,
        rebuild: bool,
        rows: int,
        now: datetime | None = None,
    ) -> None: ...


@dataclass
class PullLine:
    """One line of a pull's report."""

    source: str  # cost_explorer | export
    account: str
    period: str
    rows: int
    ce_requests: int
    status: str
    bad_input: bool = False


@dataclass
class PullReport:
    lines: list[PullLine] = field(default_factory=list)
    batches: list[Path] = field(default_factory=list)

    @property
    def ce_requests(self) -> int:
        return sum(line.ce_requests for line in self.lines)

    @property
    def failed(self) -> bool:
        return any(line.status.startswith(("error", "refused")) for line in self.lines)

    @property
    def bad_input(self) -> bool:
        return any(line.bad_input for line in self.lines)


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
            for r in results:
                report.lines.append(
                    PullLine(
                        "export",
                        f"s3://{opts.export_bucket}",
                        r.period,
                        r.rows,
                        0,
                        r.status,
                        r.bad_input,
                    )
                )
                if r.batch:
                    report.batches.append(r.batch)
    return report


def _spool_ce_pull(
    spool_dir: Path,
    label: str,
    window: aws_ce.CeWindow,
    pull: aws_ce.CePull,
    now: datetime,
    report: PullReport,
) -> None:
    """One account's Cost Explorer rows as one billing batch of the spool."""
    with BillingBatch(
        spool_dir,
        f"aws-ce-{label}",
        metadata={
            "source": "aws_ce",
            "account": label,
            "window": f"{window.start}/{window.end}",
        },
        now=now,
    ) as batch:
        batch.add(pull.frame)
    if batch.published:
        report.batches.append(batch.published)


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
        window = aws_ce.plan_window(
            now.date(),
            trailing_days=opts.ce_trailing_days,
            rebuild_days=opts.ce_rebuild_days,
            with_resources=opts.ce_with_resources,
            days_pulled=state.ce_days(label),
            last_rebuild=state.last_ce_run(label, rebuild=True),
            now=now,
            since=since,
            until=until,
        )
        ce = aws_ce.CostExplorer(aws_ce.ce_client(session), sleep=sleep)
        pull = aws_ce.pull_account(ce, account_id, window, opts.tag_key, label=label)
        _spool_ce_pull(spool_dir, label, window, pull, now, report)
        state.record_ce_run(
            label,
            start=window.start,
            end=window.end,
            days=pull.days,
            resources_from=window.resources_from,
            requests=pull.requests,
            rebuild=window.rebuild,
            rows=pull.frame.height,
            now=now,
        )
    except (ClientError, BotoCoreError) as exc:
        requests = ce.requests if ce else 0
        log.error("Cost Explorer pull for %s failed: %s", label, describe_error(exc))
        return PullLine("cost_explorer", label, "", 0, requests, f"error: {describe_error(exc)}")
    except aws_ce.CeAnswerError as exc:  # nothing spooled, the state untouched: asked again
        log.error("%s", exc)
        requests = ce.requests if ce else 0
        return PullLine("cost_explorer", label, "", 0, requests, f"refused: {exc}")
    last_day = window.end - timedelta(days=1)  # the window is end-exclusive; show the last day
    period = f"{window.start}..{last_day}" + (
        f" (resources from {window.resources_from})" if window.resources_from else ""
    )
    status = "pulled: " + ", ".join(window.reasons)
    return PullLine("cost_explorer", label, period, pull.frame.height, pull.requests, status)
