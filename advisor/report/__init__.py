"""The weekly report: `reports/<ISO week>.html` and `.md` (with their chart images) for a team lead.

For one ISO week (Monday 00:00 to Monday 00:00 UTC) it shows spend and GPU-hours per workload,
cloud and local side by side; wasted high-end GPU time (as the ledger job stores it, every day);
the recommendations as of the week's end with their arithmetic; and what changed since the week
before. Everything comes from the published snapshot (read-only); the recommendations are
recomputed for the window ending with the week, with the same pure functions as the daemon's.
Charts are static PNG images (Altair through vl-convert), so the files read anywhere, e-mail too.

The steps, one module each:

- `schedule`: ISO weeks, when a week's report is due, which are written;
- `figures`: a week's spend and GPU-hours, wasted high-end time, and the Report;
- `changes`: what changed since the week before, in sentences;
- `build`: `build_report`, everything one week shows, from the snapshot;
- `render` (what both renderings show), `render_md`, `render_html` and `charts` (PNG images);
- `files`: writing the files; `send`: e-mailing them.
"""

from __future__ import annotations

from advisor.report.build import build_report
from advisor.report.changes import what_changed
from advisor.report.charts import chart_images
from advisor.report.figures import (
    Report,
    WeekFigures,
    busy_pct,
    waste_note,
    week_figures,
)
from advisor.report.files import ReportFiles, reports_dir, write_report
from advisor.report.render_html import render_html
from advisor.report.render_md import render_markdown
from advisor.report.schedule import (
    ReportError,
    due_at,
    due_weeks,
    last_complete_week,
    week_bounds,
    week_of,
    written_weeks,
)
from advisor.report.send import email_report

__all__ = [
    "Report",
    "ReportError",
    "ReportFiles",
    "WeekFigures",
    "build_report",
    "busy_pct",
    "chart_images",
    "due_at",
    "due_weeks",
    "email_report",
    "last_complete_week",
    "render_html",
    "render_markdown",
    "reports_dir",
    "waste_note",
    "week_bounds",
    "week_figures",
    "week_of",
    "what_changed",
    "write_report",
    "written_weeks",
]
