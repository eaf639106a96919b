"""`gpuledger costs`: GPU-hours, busy GPU-hours and money per workload (or host, GPU model,
placement), cloud and local side by side, from the daily ledger (DESIGN.md §3 contract:
`--format json` rows have at least workload, placement, gpu_hours, busy_gpu_hours, cost_usd;
`__idle__` is its own workload). busy_gpu_hours and busy_fraction are null where no GPU-hour had
an activity signal (a MIG instance without DCGM profiling): unknown, never 0.

Like every read-only command it reads the published snapshot. Where no daemon owns the
warehouse it first runs one cycle itself (ingest what is queued, refresh, publish), so a
one-shot command shows current figures; with a daemon running, the daemon's snapshot is current.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta

import polars as pl

from cli import app
from cli.output import emit
from config.gpu_class import unpriced_warnings
from config.settings import Config
from warehouse import advisor_reads
from warehouse.errors import StorageError, explain
from warehouse.lock import LockHeld
from warehouse.snapshot import Snapshot

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A problem a command reports on stderr with its exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "costs",
        parents=[common],
        help="GPU-hours and money per workload, cloud and local",
        description="GPU-hours, busy GPU-hours and cost per workload (or --by host, gpu_model,"
        " placement) over [--since, --until), from the daily ledger. Local cost is amortized"
        " purchase + operations + measured energy; cloud cost is the bill's EffectiveCost"
        " (BilledCost and ListCost beside it). __idle__ is local GPU time with no process.",
    )
    p.add_argument("--since", help="first day, YYYY-MM-DD (default: 30 days ago)")
    p.add_argument("--until", help="day after the last, YYYY-MM-DD (default: tomorrow)")
    p.add_argument(
        "--by", choices=advisor_reads.GROUP_BY, default="workload", help="group by (workload)"
    )
    p.add_argument(
        "--recompute",
        action="store_true",
        help="attribute and re-cost every day from the stored data first (normally only the days"
        " an ingest touched are; needs the warehouse, so not while `gpuledger run` runs)",
    )
    p.set_defaults(func=cmd_costs)


def parse_day(value: str | None, flag: str) -> date | None:
    """YYYY-MM-DD, or an ISO 8601 time (its UTC day)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).date()
    except ValueError:
        raise CommandError(f"{flag} must be a date like 2026-11-23, got {value!r}") from None


def fresh_snapshot(cfg: Config, *, recompute: bool = False) -> Snapshot:
    """The snapshot; where no daemon owns the warehouse, first ingest, recompute and publish
    (the figures then reflect the newest data and today's window). `recompute` re-costs every
    day, which needs the warehouse. Where the warehouse cannot be written or read (a read-only
    folder, a full disk, a damaged file) the last published snapshot is shown, with a warning
    that says why and what to do."""
    snap = Snapshot(cfg.snapshot_path)
    try:
        wh = app.open_warehouse(cfg)
    except StorageError as exc:
        return last_snapshot(snap, exc, recompute=recompute)
    except LockHeld:
        if recompute:
            raise CommandError(
                "--recompute needs the warehouse, which another process (`gpuledger run`?)"
                " holds: stop it, or restart it to re-cost what a changed configuration affects",
                EXIT_FAIL,
            ) from None
        if not snap.exists():
            raise CommandError(
                f"no snapshot at {cfg.snapshot_path} yet; the running daemon publishes one"
                " within seconds",
                EXIT_FAIL,
            ) from None
        return snap
    try:
        app.cycle(wh, cfg, app.catalog_for(cfg), force=True, recompute=recompute)
    except Exception as exc:
        found = explain(exc, cfg.db_path)
        if found is None:
            raise
        return last_snapshot(snap, found, recompute=recompute)
    finally:
        wh.close()
    return snap


def last_snapshot(snap: Snapshot, problem: StorageError, *, recompute: bool) -> Snapshot:
    """The snapshot as last published, with a warning saying why it is not refreshed; the
    problem itself where there is none (or `--recompute` needs the warehouse)."""
    if recompute or not snap.exists():
        raise problem
    published = datetime.fromtimestamp(snap.path.stat().st_mtime, UTC)
    print(
        f"gpuledger: warning: {problem}. Showing the last snapshot, published"
        f" {published:%Y-%m-%d %H:%M} UTC",
        file=sys.stderr,
    )
    return snap


def run(name: str, body, args: argparse.Namespace, cfg: Config) -> int:
    """Run a command body, turning CommandError into its message and exit status."""
    try:
        return body(args, cfg)
    except CommandError as exc:
        print(f"gpuledger {name}: {exc}", file=sys.stderr)
        return exc.status


def cmd_costs(args: argparse.Namespace, cfg: Config) -> int:
    return run("costs", _costs, args, cfg)


def _costs(args: argparse.Namespace, cfg: Config) -> int:
    today = datetime.now(UTC).date()
    since = parse_day(args.since, "--since") or today - timedelta(days=cfg.advisor.window_days)
    until = parse_day(args.until, "--until") or today + timedelta(days=1)
    if since >= until:
        raise CommandError(f"--since {since} must be before --until {until}")
    snap = fresh_snapshot(cfg, recompute=args.recompute)
    try:
        ledger = advisor_reads.ledger(snap, since, until)
        frame = advisor_reads.summarize_ledger(ledger, args.by)
        if frame.height == 0:
            print(f"gpuledger costs: {why_empty(snap, since, until)}", file=sys.stderr)
    finally:
        snap.close()
    rows = frame.to_dicts()
    if args.format == "table":
        rows = [_table_row(r, args.by) for r in rows]
    emit(rows, args.format)
    warn_unpriced("costs", ledger, cfg)
    return EXIT_OK


def warn_unpriced(command: str, ledger: pl.DataFrame, cfg: Config) -> None:
    """Name on stderr each local GPU model whose hours `ledger` could not price, and the
    catalog row that would price them (stdout stays the data)."""
    unpriced = advisor_reads.unpriced_models(ledger)
    if unpriced.height == 0:
        return
    for line in unpriced_warnings(unpriced, app.catalog_for(cfg)):
        print(f"gpuledger {command}: warning: {line}", file=sys.stderr)


def why_empty(snap: Snapshot, since: date, until: date) -> str:
    """Why [since, until) has no ledger rows, in words."""
    first, last = advisor_reads.ledger_span(snap)
    if first is None:
        return "the warehouse is empty: import samples or bills first (`gpuledger import`)"
    return (
        f"no ledger rows between {since} and {until - timedelta(days=1)}: the warehouse holds"
        f" data from {first} to {last}"
    )


def _table_row(r: dict, by: str) -> dict:
    out = {by: r[by]} if by == "placement" else {by: r[by], "placement": r["placement"]}
    out.update(
        {
            "GPU-h": f"{r['gpu_hours']:,.1f}",
            "busy": "unknown" if r["busy_fraction"] is None else f"{r['busy_fraction']:.0%}",
            "cost USD": f"{r['cost_usd']:,.2f}",
            "idle USD": f"{r['idle_cost_usd']:,.2f}" if r["idle_cost_usd"] else "",
            "billed USD": "" if r["billed_cost_usd"] is None else f"{r['billed_cost_usd']:,.2f}",
            "list USD": "" if r["list_cost_usd"] is None else f"{r['list_cost_usd']:,.2f}",
        }
    )
    return out
