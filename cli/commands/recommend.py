"""`gpuledger recommend`: for each workload over the window, its action (`keep`, `move_to_local`,
`buy_local`, `move_to_cloud`, `downsize`, `hybrid`, `schedule`) with the monthly savings (its
own cash; capacity it frees for others apart), break-even months where hardware is bought, a
confidence (a number and a named level with its reasons) and the arithmetic in words (DESIGN.md
§3 contract: `--format json` prints an array whose elements have at least workload, action,
current_monthly_cost_usd, monthly_savings_usd, break_even_months, confidence, reasons)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

import polars as pl

from cli.commands.costs import EXIT_OK, CommandError, fresh_snapshot, run, warn_unpriced
from cli.output import emit
from config.settings import Config
from tables.published import ALTERNATIVE, RECOMMENDATION
from warehouse import advisor_reads

# The JSON record (tables/published.py RECOMMENDATION): the contract's fields, then the detail.
CONTRACT = RECOMMENDATION.required
DETAIL = tuple(n for n in RECOMMENDATION.names if n not in CONTRACT)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "recommend",
        parents=[common],
        help="where each workload should run, with the arithmetic",
        description="For each workload over [advisor] window_days (scaled to a month of 730 h):"
        " its action, monthly savings, break-even months where hardware is bought, confidence"
        " and reasons with the numbers.",
    )
    p.add_argument("--workload", action="append", help="only this workload (repeatable)")
    p.add_argument(
        "--alternatives",
        action="store_true",
        help="list every alternative considered (feasible or not, and why) instead",
    )
    p.set_defaults(func=cmd_recommend)


def cmd_recommend(args: argparse.Namespace, cfg: Config) -> int:
    return run("recommend", _recommend, args, cfg)


def _round(value, digits: int = 2):
    return None if value is None else round(float(value), digits)


def contract_rows(frame: pl.DataFrame) -> list[dict]:
    """Recommendation rows as the JSON contract prints them (money to the cent)."""
    rows = []
    for r in frame.to_dicts():
        row = {k: r[k] for k in CONTRACT}
        row.update({k: r[k] for k in DETAIL})
        for k in (
            "current_monthly_cost_usd",
            "monthly_savings_usd",
            "alternative_monthly_cost_usd",
            "upfront_usd",
            "gpu_hours_per_month",
            "peak_memory_gib",
            "busy_gpus_p95",
            "memory_total_gib",
            "freed_capacity_usd",
            "schedule_hours_per_month",
            "schedule_savings_usd",
        ):
            row[k] = _round(row[k])
        row["break_even_months"] = _round(row["break_even_months"], 1)
        for k in ("busy_fraction", "duty_cycle"):
            row[k] = _round(row[k], 4)
        row["reasons"] = list(r["reasons"] or [])
        row["confidence_reasons"] = list(r["confidence_reasons"] or [])
        rows.append(row)
    return rows


def _recommend(args: argparse.Namespace, cfg: Config) -> int:
    snap = fresh_snapshot(cfg)
    try:
        recs = advisor_reads.recommendations(snap)
        alts = advisor_reads.alternatives(snap) if args.alternatives else None
        since = datetime.now(UTC).date() - timedelta(days=cfg.advisor.window_days + 1)
        ledger = advisor_reads.ledger(snap, since)
    finally:
        snap.close()
    code = _emit_recommendations(args, recs, alts)
    warn_unpriced("recommend", ledger, cfg)
    return code


def _emit_recommendations(
    args: argparse.Namespace, recs: pl.DataFrame, alts: pl.DataFrame | None
) -> int:
    if args.workload:
        unknown = sorted(set(args.workload) - set(recs["workload"].to_list()))
        if unknown:
            raise CommandError(
                f"no recommendation for workload {unknown[0]!r} (known: "
                f"{', '.join(sorted(recs['workload'].to_list())) or 'none yet'})"
            )
        recs = recs.filter(pl.col("workload").is_in(args.workload))
    if alts is not None:
        if args.workload:
            alts = alts.filter(pl.col("workload").is_in(args.workload))
        emit(_alternative_rows(alts, args.format), args.format)
        return EXIT_OK
    rows = contract_rows(recs)
    if args.format == "json":
        emit(rows, "json")
    elif args.format == "csv":
        emit(
            [
                {
                    **r,
                    "reasons": " | ".join(r["reasons"]),
                    "confidence_reasons": " | ".join(r["confidence_reasons"]),
                }
                for r in rows
            ],
            "csv",
        )
    else:
        _table(rows)
    return EXIT_OK


def _alternative_rows(alts: pl.DataFrame, fmt: str) -> list[dict]:
    rows = [{k: r[k] for k in ALTERNATIVE.names} for r in alts.to_dicts()]
    for r in rows:
        r["monthly_cost_usd"] = _round(r["monthly_cost_usd"])
        r["monthly_savings_usd"] = _round(r["monthly_savings_usd"])
        r["break_even_months"] = _round(r["break_even_months"], 1)
    return rows


def _table(rows: list[dict], out=None) -> None:
    out = out or sys.stdout
    emit(
        [
            {
                "workload": r["workload"],
                "action": r["action"],
                "now USD/mo": f"{r['current_monthly_cost_usd']:,.2f}",
                "saves USD/mo": f"{r['monthly_savings_usd']:,.2f}" if r["action"] != "keep" else "",
                "break-even": ""
                if r["break_even_months"] is None
                else f"{r['break_even_months']} mo",
                "confidence": f"{r['confidence']:.2f} {r['confidence_level'] or ''}".strip(),
                "alternative": r["alternative"] or "",
            }
            for r in rows
        ],
        "table",
        out=out,
    )
    for r in rows:
        out.write(f"\n{r['workload']}: {r['action']}\n")
        for reason in r["reasons"]:
            out.write(f"  - {reason}\n")
