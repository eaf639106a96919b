"""`gpuledger report [--week 2026-W48]`: write the weekly report, `<week>.html` and `.md` with
their chart images, into [report] dir (default ../reports beside the configuration's directory,
like the warehouse); `--send` also emails it through [report.email]."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from advisor.report import ReportError, email_report, last_complete_week, write_report
from cli import app
from cli.commands.costs import EXIT_FAIL, EXIT_OK, CommandError, fresh_snapshot, run
from cli.output import emit_mapping
from config.settings import Config


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "report",
        parents=[common],
        help="write the weekly report (HTML and Markdown)",
        description="Write <week>.html and <week>.md (spend and GPU-hours per workload, cloud and"
        " local side by side; wasted high-end GPU time; recommendations with their arithmetic;"
        " what changed since the previous week) into [report] dir.",
    )
    p.add_argument("--week", help="ISO week, e.g. 2026-W48 (default: the last complete week)")
    p.add_argument("--out", type=Path, help="directory to write into (default: [report] dir)")
    p.add_argument("--send", action="store_true", help="also email it ([report.email])")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace, cfg: Config) -> int:
    return run("report", _report, args, cfg)


def _report(args: argparse.Namespace, cfg: Config) -> int:
    week = args.week or last_complete_week(datetime.now(UTC))
    if args.send and not cfg.report.email.enabled:
        raise CommandError("--send needs [report.email] host and recipients in the configuration")
    snap = fresh_snapshot(cfg)
    try:
        files = write_report(cfg, app.catalog_for(cfg), week, snap=snap, directory=args.out)
    except ReportError as exc:
        raise CommandError(str(exc)) from None
    finally:
        snap.close()
    out = {"week": week, "html": str(files.html), "markdown": str(files.markdown)}
    out.update({f"chart_{k}": str(v) for k, v in files.images.items()})
    if args.send:
        try:
            email_report(cfg, files)
        except (OSError, ReportError) as exc:
            raise CommandError(f"the report was written but not sent: {exc}", EXIT_FAIL) from None
        out["sent_to"] = ", ".join(cfg.report.email.recipients)
    out["summary"] = files.summary
    emit_mapping(out, args.format)
    return EXIT_OK
