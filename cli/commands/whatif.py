"""`gpuledger whatif`: where a described workload should run, priced with the catalog and the
team's own local costs and spare capacity, e.g.

    gpuledger whatif --gpu H100 --count 1 --hours-per-day 20 --busy 0.7 --memory-gib 60 \
        --sensitive no
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from advisor.recommend import Params
from advisor.whatif import Question, WhatIfError, measured_watts, team_capacity, what_if
from cli import app
from cli.commands.costs import EXIT_OK, CommandError, run
from cli.output import dump_json, emit
from config.settings import Config
from warehouse import advisor_reads
from warehouse.snapshot import Snapshot


def _yes_no(value: str) -> bool:
    v = value.strip().lower()
    if v in ("yes", "y", "true", "1"):
        return True
    if v in ("no", "n", "false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {value!r}")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "whatif",
        parents=[common],
        help="where a described workload should run, and what it would cost",
        description="Compare cloud instances, buying local GPUs and the team's spare local"
        " capacity for a described workload (monthly = 730 h).",
    )
    p.add_argument("--gpu", required=True, help="GPU class it runs on now, e.g. H100")
    p.add_argument("--count", type=int, default=1, help="GPUs it uses at once (1)")
    p.add_argument("--hours-per-day", type=float, default=24.0, help="hours a day it runs (24)")
    p.add_argument("--busy", type=float, default=0.5, help="busy fraction while it runs (0.5)")
    p.add_argument("--memory-gib", type=float, default=16.0, help="peak GPU memory, GiB (16)")
    p.add_argument("--sensitive", type=_yes_no, default=False, help="yes: never the cloud (no)")
    p.add_argument(
        "--current",
        choices=("cloud", "local"),
        default="cloud",
        help="where it runs now: cloud (cheapest instance of that class) or local (owned GPUs)",
    )
    p.set_defaults(func=cmd_whatif)


def cmd_whatif(args: argparse.Namespace, cfg: Config) -> int:
    return run("whatif", _whatif, args, cfg)


def question_of(args: argparse.Namespace) -> Question:
    return Question(
        gpu=args.gpu,
        count=args.count,
        hours_per_day=args.hours_per_day,
        busy=args.busy,
        memory_gib=args.memory_gib,
        sensitive=args.sensitive,
        current=args.current,
    )


def _team_data(cfg: Config, catalog, busy: float):
    """Spare capacity, measured power and the instance types the workloads run on (they settle
    the clouds that may be proposed) from the snapshot, where one exists (read-only)."""
    snap = Snapshot(cfg.snapshot_path)
    if not snap.exists():
        return None, {}, []
    try:
        if not advisor_reads.has_advisor_tables(snap):
            return None, {}, []
        usage = advisor_reads.usage_hourly(snap)
        instances = advisor_reads.recommendations(snap)["instance_type"].drop_nulls().to_list()
    finally:
        snap.close()
    capacity = team_capacity(usage, catalog, datetime.now(UTC), cfg.advisor.window_days)
    return capacity, measured_watts(usage, catalog, busy), instances


def _whatif(args: argparse.Namespace, cfg: Config) -> int:
    catalog = app.catalog_for(cfg)
    capacity, watts, instances = _team_data(cfg, catalog, args.busy)
    try:
        rec = what_if(
            question_of(args),
            catalog,
            Params.from_config(cfg),
            capacity=capacity,
            watts=watts,
            instance_types=instances,
        )
    except WhatIfError as exc:
        raise CommandError(str(exc)) from None
    result = whatif_result(rec)
    if args.format == "json":
        dump_json(result, sys.stdout)
    elif args.format == "csv":
        emit(result["alternatives"], "csv")
    else:
        emit(
            [{k: v for k, v in result.items() if k not in ("reasons", "alternatives")}],
            "table",
        )
        print()
        for reason in result["reasons"]:
            print(f"  - {reason}")
        print()
        emit(result["alternatives"], "table")
    return EXIT_OK


def whatif_result(rec) -> dict:
    """The recommendation for a described workload as plain data (CLI and dashboard)."""
    p, c = rec.profile, rec.chosen
    return {
        "action": rec.action,
        "current_monthly_cost_usd": round(p.current_monthly_cost, 2),
        "alternative": c.option if c else None,
        "alternative_monthly_cost_usd": round(c.monthly_cost, 2) if c else None,
        "monthly_savings_usd": round(c.monthly_savings, 2) if c else 0.0,
        "break_even_months": round(c.break_even_months, 1)
        if c and c.break_even_months is not None
        else None,
        "reasons": rec.reasons,
        "alternatives": [
            {
                "option": a.option,
                "kind": a.kind,
                "monthly_cost_usd": round(a.monthly_cost, 2),
                "monthly_savings_usd": round(a.monthly_savings, 2),
                "break_even_months": None
                if a.break_even_months is None
                else round(a.break_even_months, 1),
                "feasible": a.feasible,
                "note": a.note,
                "cloud": a.provider,
            }
            for a in sorted(rec.alternatives, key=lambda a: (not a.feasible, a.monthly_cost))
        ],
    }
