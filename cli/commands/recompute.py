"""`gpuledger recompute --since D [--until D]`: the days' minute rollups, hourly attribution and
ledger computed again from the raw samples in the Iceberg lake ([lake] enabled), one task per day
and host on `[engine]` (in this process, or Ray tasks on a cluster), and stored in one transaction
once every task has finished; then the days' wasted time and the recommendations, and the
snapshot. For a backfill, or after the rollup rules changed. docs/engine.md.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

import polars as pl

from advisor.engine import EngineError, engine_for
from advisor.lake_jobs import LakeSource, lake_ledger
from cli import app
from cli.commands.costs import CommandError, parse_day
from cli.output import emit_mapping
from config.settings import Config
from warehouse import results

EXIT_OK = 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "recompute",
        parents=[common],
        help="rollups, attribution and ledger of some days again from the lake, on [engine]",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--since", required=True, help="first day, YYYY-MM-DD")
    p.add_argument(
        "--until", help="day after the last, YYYY-MM-DD (default: the day after --since)"
    )
    p.set_defaults(func=cmd_recompute)


def cmd_recompute(args: argparse.Namespace, cfg: Config) -> int:
    try:
        out = recompute(args, cfg)
    except (CommandError, EngineError) as exc:
        print(f"gpuledger recompute: {exc}", file=sys.stderr)
        return getattr(exc, "status", 2)
    emit_mapping(out, args.format)
    return EXIT_OK


def recompute(args: argparse.Namespace, cfg: Config) -> dict[str, object]:
    if not cfg.lake.enabled:
        raise CommandError(
            "the raw samples are read from the lake: set [lake] enabled = true (docs/multi-host.md)"
        )
    since = parse_day(args.since, "--since")
    until = parse_day(args.until, "--until") or (since and since + timedelta(days=1))
    if since is None or until is None or since >= until:
        raise CommandError(f"--since {since} must be before --until {until}")
    catalog = app.catalog_for(cfg)
    engine = engine_for(cfg)
    with app.open_warehouse(cfg) as wh:
        run = lake_ledger(engine, wh, cfg, catalog, LakeSource(cfg), since, until)
        days = pl.Series("day", [since + timedelta(days=i) for i in range((until - since).days)])
        # Re-costed from the attribution just stored: the days' wasted time (from the new
        # rollups) and the recommendations follow, then the snapshot.
        results.mark_days(wh, {"cost": days})
        app.refresh_and_publish(wh, cfg, catalog)
    return {
        "days": f"{since} to {until - timedelta(days=1)}",
        "engine": engine.name,
        "partitions": run.partitions,
        "minute rows": run.minutes.height,
        "hourly rows": run.usage.height,
        "ledger rows": run.ledger.height,
        "snapshot": str(cfg.snapshot_path),
    }
