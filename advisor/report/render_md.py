"""The report as Markdown (`<week>.md`; also the plain-text part of the e-mail). Every text that
holds a name (workload, host, GPU model, tag) goes through `markdown_text`, so a name shows as its
letters: no HTML, link, emphasis or line break of its own (tables/escape.py)."""

from __future__ import annotations

from advisor.report.figures import Report, hybrid_image
from advisor.report.render import (
    ACTION_WORDS,
    REC_HEAD,
    TABLE_HEAD,
    WASTE_HEAD,
    footer,
    kpis,
    period,
    rec_rows,
    spare_lines,
    table_rows,
    waste_rows,
)
from tables.escape import markdown_text


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(markdown_text(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(rep: Report, images: dict[str, str]) -> str:
    md = [f"# GPU spend and use, week {rep.week}", "", period(rep), ""]
    for label, value, sub in kpis(rep):
        md.append(f"- **{label}: {value}** — {sub}")
    md += ["", "## What changed since last week", ""]
    md += [f"- {markdown_text(c)}" for c in rep.changes]
    md += ["", "## Recommended actions", ""]
    md += _table(REC_HEAD, rec_rows(rep)) if rep.recs.height else ["No workloads to assess."]
    md += ["", "## Spend and GPU-hours per workload", ""]
    for name in ("spend", "hours"):
        if name in images:
            md.append(f"![{name}]({images[name]})")
    md += [""] + _table(TABLE_HEAD, table_rows(rep))
    md += [
        "",
        "Local cost is amortized purchase + operations + measured energy; cloud cost is the"
        " bill's EffectiveCost. `__idle__` is local GPU time with no process.",
        "",
    ]
    if rep.unpriced:
        md += ["## Unpriced GPUs", "", *(f"- {markdown_text(line)}" for line in rep.unpriced), ""]
    md += ["## Wasted high-end GPU time", ""]
    md += _table(WASTE_HEAD, waste_rows(rep)) if rep.waste.height else ["None this week."]
    md += spare_lines(rep, markdown_text)
    md += ["", f"{rep.waste_note}.", "", "## Recommendations with their arithmetic", ""]
    md += _reasons(rep, images)
    md += [footer(rep)]
    return "\n".join(md) + "\n"


def _reasons(rep: Report, images: dict[str, str]) -> list[str]:
    """Each recommendation's heading and its reasons, the arithmetic in words."""
    md = []
    for r in rep.recs.iter_rows(named=True):
        name = markdown_text(r["workload"])
        md.append(f"### {name}: {r['action']} ({ACTION_WORDS.get(r['action'], '')})")
        md.append("")
        md += [f"- {markdown_text(reason)}" for reason in r["reasons"] or []]
        md.append("")
        chart = images.get(hybrid_image(r["workload"])) if r["action"] == "hybrid" else None
        if chart:
            md += [f"![demand and local base of {name}]({chart})", ""]
    return md
