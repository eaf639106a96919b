"""`gpuledger alerts`: list open and recent alerts on wasted high-end GPU time; `--check` runs the
detection once (ingest, check, deliver, publish) where no daemon owns the warehouse."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from advisor.alerts import AlertService, contract_row
from cli import app
from cli.output import emit
from config.settings import Config
from warehouse import alerts as store
from warehouse.lock import LockHeld
from warehouse.snapshot import Snapshot

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
TABLE_COLUMNS = (
    "workload",
    "host",
    "gpu_model",
    "kind",
    "state",
    "started_at",
    "duration_s",
    "wasted_usd",
)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "alerts",
        parents=[common],
        help="open and recent alerts on wasted high-end GPU time",
        description="List open alerts and those that ended in the last --days days"
        " (from the published snapshot); --check runs the detection once and delivers.",
    )
    p.add_argument("--check", action="store_true", help="run the detection once, then list")
    p.add_argument(
        "--days", type=int, default=7, help="also list alerts that ended in this many days (7)"
    )
    p.set_defaults(func=cmd_alerts)


def _rows(frame, fmt: str) -> list[dict]:
    rows = [contract_row(r) for r in frame.to_dicts()]
    if fmt != "table":
        return rows
    return [
        {
            **{k: r[k] for k in TABLE_COLUMNS},
            "started_at": (r["started_at"] or "")[:16].replace("T", " "),
            "duration_s": round(r["duration_s"] or 0),
            "wasted_usd": f"{r['wasted_usd'] or 0:,.2f}",
        }
        for r in rows
    ]


def _delivery_wait_s(cfg: Config) -> float:
    """Long enough for every attempt of one message with its backoff."""
    a = cfg.alerts
    backoff = sum(a.retry_backoff_s * 2**i for i in range(a.attempts - 1))
    return backoff + a.attempts * a.timeout_s + 5.0


def cmd_alerts(args: argparse.Namespace, cfg: Config) -> int:
    if not 1 <= args.days <= 400:
        print("gpuledger alerts: --days must be between 1 and 400", file=sys.stderr)
        return EXIT_USAGE
    since = datetime.now(UTC) - timedelta(days=args.days)
    if args.check:
        return _check(args, cfg, since)
    snap = Snapshot(cfg.snapshot_path)
    if not snap.exists():
        print(
            f"gpuledger alerts: no snapshot at {cfg.snapshot_path} yet; start `gpuledger run`"
            " or run `gpuledger alerts --check`",
            file=sys.stderr,
        )
        return EXIT_FAIL
    try:
        emit(_rows(store.snapshot_alerts(snap, since), args.format), args.format)
    finally:
        snap.close()
    return EXIT_OK


def _check(args: argparse.Namespace, cfg: Config, since: datetime) -> int:
    catalog = app.catalog_for(cfg)
    try:
        wh = app.open_warehouse(cfg)
    except LockHeld as exc:
        print(
            f"gpuledger alerts --check: the warehouse is owned ({exc.holder}); the daemon checks"
            " every minute itself: run `gpuledger alerts` to list",
            file=sys.stderr,
        )
        return EXIT_FAIL
    service = AlertService(cfg, catalog)
    try:
        wh.ingest_spool()
        result = service.run_once(wh)
        delivered = service.flush(wh, _delivery_wait_s(cfg))
        app.cycle(wh, cfg, catalog, force=True)  # publish, so readers see the alerts
        for problem in service.problems:
            print(f"gpuledger alerts: channel left out: {problem}", file=sys.stderr)
        print(result.summary(), file=sys.stderr)
        failed = store.deliveries(wh, status="failed")
        failed = failed.filter(failed["created_at"] >= since)
        if not delivered or failed.height:
            print(
                f"gpuledger alerts: {failed.height} message(s) failed"
                + ("" if delivered else ", some still retrying (left pending for the next check)"),
                file=sys.stderr,
            )
        emit(_rows(store.list_alerts(wh, since), args.format), args.format)
    finally:
        service.close()
        wh.close()
    return EXIT_OK
