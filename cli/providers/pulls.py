"""What every billing pull provider's command and daemon job share: one pull under the state
lock, its status for Data health, the report rows, and the daemon's tick that starts a pull in
a background thread when one is due. (The AWS provider, older, keeps its own Cost Explorer
cadence in cli/providers/aws.py and records its status here too.)"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cli import app
from cli.output import emit
from collectors.billing.provider import PullReport
from config.settings import Config
from warehouse.billing_state import BillingState, record_pull_status
from warehouse.lock import LockHeld

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
Pull = Callable[[BillingState], PullReport]


def line_rows(report: PullReport) -> list[dict[str, Any]]:
    """A row per source line of the pull: what it read, from where, for which period."""
    return [
        {
            "source": ln.source,
            "account": ln.account,
            "period": ln.period,
            "rows": ln.rows,
            "requests": ln.requests,
            "status": ln.status,
        }
        for ln in report.lines
    ]


def record_status(cfg: Config, provider: str, report: PullReport, now: datetime) -> None:
    """The pull's lines as `provider`'s entry of the status file Data health shows."""
    lines = line_rows(report) or [{"source": "", "status": "nothing to pull"}]
    try:
        record_pull_status(cfg.billing_state_path, provider, lines, now=now)
    except OSError as exc:  # the status is for people; the pull itself went through
        log.warning("could not write the billing pull status: %s", exc)


def locked_pull(
    cfg: Config, provider: str, pull: Pull, *, now: datetime | None = None
) -> PullReport:
    """One pull under the state lock (raises LockHeld while another pull runs), its time
    marked (`<provider>_last_pull_at`) and its status recorded."""
    now = now or datetime.now(UTC)
    with BillingState(cfg.billing_state_path) as state:
        report = pull(state)
        state.mark(f"{provider}_last_pull_at", now.isoformat())
    record_status(cfg, provider, report, now)
    return report


def report_rows(report: PullReport, status: str) -> list[dict[str, Any]]:
    """A row per source line, then the total with the ingest status and the paid requests."""
    rows = line_rows(report)
    rows.append(
        {
            "source": "total",
            "account": "",
            "period": "",
            "rows": sum(ln.rows for ln in report.lines),
            "requests": report.requests,
            "status": status,
        }
    )
    return rows


def run_command(cfg: Config, provider: str, title: str, pull: Pull, fmt: str) -> int:
    """`gpuledger billing <provider>`: one pull now, ingested (or queued for the daemon)."""
    try:
        report = locked_pull(cfg, provider, pull)
    except LockHeld as exc:
        print(f"gpuledger: another billing pull is running ({exc.holder})", file=sys.stderr)
        return EXIT_FAIL
    status = app.ingest_now(cfg) if report.batches else "nothing new"
    emit(report_rows(report, status), fmt)
    if report.bad_input:
        return EXIT_USAGE
    return EXIT_FAIL if report.failed else EXIT_OK


def daemon_job(
    cfg: Config, provider: str, interval_h: float, pull: Pull, *, check_every_s: float
) -> Callable[[], None]:
    """Every `check_every_s` the tick starts a pull in a background thread when the last one is
    `interval_h` old, so a long download never stalls ingest and publish."""
    running = threading.Lock()

    def due() -> bool:
        with BillingState(cfg.billing_state_path) as state:
            last = state.marked(f"{provider}_last_pull_at")
        return last is None or datetime.now(UTC) - last >= timedelta(hours=interval_h)

    def work() -> None:
        try:
            for ln in locked_pull(cfg, provider, pull).lines:
                log.info(
                    "%s %s %s %s: %s rows, %s",
                    provider,
                    ln.source,
                    ln.account,
                    ln.period,
                    ln.rows,
                    ln.status,
                )
        except LockHeld:
            log.info("a %s pull is already running elsewhere", provider)
        except Exception:
            log.exception("%s billing pull failed; it is tried again at the next check", provider)
        finally:
            running.release()

    def job() -> None:
        if not running.acquire(blocking=False):
            return  # the previous pull is still going
        try:
            start = due()
        except BaseException:
            running.release()
            if sys.exc_info()[0] is LockHeld:
                return
            raise
        if not start:
            running.release()
            return
        threading.Thread(target=work, name=f"{provider}-billing", daemon=True).start()

    return job
