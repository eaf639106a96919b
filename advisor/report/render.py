"""What both renderings (Markdown and HTML) show, as words and table rows: the headline figures,
the period, the tables' heads and rows, the spare high-end GPUs and the footer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from advisor.costs import usd
from advisor.report.changes import delta
from advisor.report.figures import Report, busy_pct

ACTION_WORDS = {
    "keep": "keep as is",
    "move_to_local": "move to local GPUs",
    "buy_local": "buy local GPUs",
    "move_to_cloud": "move to the cloud",
    "downsize": "move to a smaller GPU",
    "hybrid": "local base, cloud peaks",
    "schedule": "stop when idle",
}
TABLE_HEAD = ["workload", "cloud", "local", "total", "cloud GPU-h", "local GPU-h", "busy"]
REC_HEAD = [
    "workload",
    "action",
    "what to do",
    "now / month",
    "saves / month",
    "frees for others",
    "break-even",
    "confidence",
]
WASTE_HEAD = ["workload", "GPU", "kind", "GPU-hours", "wasted"]


def kpis(rep: Report) -> list[tuple[str, str, str]]:
    """The headline figures: (label, value, the line under it)."""
    t, p = rep.this, rep.prev
    waste_h = float(rep.waste["hours"].sum()) if rep.waste.height else 0.0
    acted = rep.acted.height
    return [
        (
            "Spend this week",
            usd(t.total_usd, cents=False),
            f"cloud {usd(t.cloud_usd, cents=False)} · local {usd(t.local_usd, cents=False)}"
            + (
                f" · {delta(t.total_usd, p.total_usd)} on last week"
                if p.gpu_hours and rep.comparable
                else ""
            ),
        ),
        (
            "GPU-hours",
            f"{t.gpu_hours:,.0f}",
            f"busy {busy_pct(t.busy_fraction)}"
            + (f" (last week {busy_pct(p.busy_fraction)})" if p.gpu_hours else ""),
        ),
        (
            "Wasted high-end GPU time",
            usd(rep.waste_usd, cents=False),
            f"{waste_h:,.0f} GPU-hours held but idle or underused",
        ),
        (
            "Savings found",
            f"{usd(rep.savings, cents=False)}/month",
            f"{acted} recommendation{'s' if acted != 1 else ''} to act on"
            + (
                f"; they free {usd(rep.freed, cents=False)}/month of GPUs for others"
                if rep.freed > 0
                else ""
            ),
        ),
    ]


def period(rep: Report) -> str:
    last = rep.end - timedelta(days=1)
    text = f"{rep.start:%a %d %b} – {last:%a %d %b %Y} (UTC)"
    if not rep.complete and rep.data_to is not None:
        text += f"; week in progress, data until {rep.data_to:%a %d %b %H:%M} UTC"
    return text


def table_rows(rep: Report) -> list[list[str]]:
    """Spend and GPU-hours per workload, and the total (TABLE_HEAD)."""
    rows = []
    for r in rep.this.by_workload.iter_rows(named=True):
        rows.append(
            [
                r["workload"],
                usd(r["cloud_usd"]) if r["cloud_gpu_hours"] or r["cloud_usd"] else "",
                usd(r["local_usd"]) if r["local_gpu_hours"] or r["local_usd"] else "",
                usd(r["total_usd"]),
                f"{r['cloud_gpu_hours']:,.1f}" if r["cloud_gpu_hours"] else "",
                f"{r['local_gpu_hours']:,.1f}" if r["local_gpu_hours"] else "",
                busy_pct(r["busy_fraction"]),
            ]
        )
    t = rep.this
    rows.append(
        [
            "total",
            usd(t.cloud_usd),
            usd(t.local_usd),
            usd(t.total_usd),
            f"{t.by_workload['cloud_gpu_hours'].sum():,.1f}",
            f"{t.by_workload['local_gpu_hours'].sum():,.1f}",
            busy_pct(t.busy_fraction),
        ]
    )
    return rows


def rec_rows(rep: Report) -> list[list[str]]:
    """One row per recommendation (REC_HEAD)."""
    rows = []
    for r in rep.recs.iter_rows(named=True):
        acted = r["action"] != "keep" or r["alternative"] is not None
        freed = r.get("freed_capacity_usd") or 0.0
        rows.append(
            [
                r["workload"],
                r["action"],
                what_to_do(r),
                usd(r["current_monthly_cost_usd"], cents=False),
                usd(r["monthly_savings_usd"], cents=False) if acted else "—",
                usd(freed, cents=False) if freed else "—",
                f"{r['break_even_months']:.1f} mo" if r["break_even_months"] else "—",
                f"{r['confidence']:.2f} {r.get('confidence_level') or ''}".strip(),
            ]
        )
    return rows


def what_to_do(r: dict) -> str:
    """The chosen option, its GPUs where the count changes, and a schedule beside it."""
    words = r["alternative"] or "—"
    after = r.get("gpus_after")
    if after is not None and after != r["gpus"] and r["action"] not in ("hybrid", "schedule"):
        words += f" ({r['gpus']} → {after} GPUs)"
    if r.get("schedule") and r["action"] != "schedule":
        words += f"; stop when idle: run {r['schedule']}"
    return words


def waste_rows(rep: Report) -> list[list[str]]:
    """One row per wasted (workload, GPU, kind) (WASTE_HEAD)."""
    return [
        [
            r["workload"],
            r["gpu_model"] or "",
            r["kind"].replace("_", " "),
            f"{r['hours']:,.1f}",
            usd(r["usd"]),
        ]
        for r in rep.waste.iter_rows(named=True)
    ]


def spare_lines(rep: Report, name: Callable[[str], str] = str) -> list[str]:
    """The unallocated high-end GPUs in words; `name` shows a model or host name (the Markdown
    report escapes them)."""
    if rep.spare_high_end.height == 0:
        return []
    parts = [
        f"{h:,.0f} GPU-hours of {name(m)} on {name(host)} ({usd(c, cents=False)})"
        for host, m, h, c in rep.spare_high_end.iter_rows()
    ]
    return ["", "Unallocated high-end GPUs (no process, shown as `__idle__`): " + "; ".join(parts)]


def footer(rep: Report) -> str:
    span = (
        f"{rep.data_from:%d %b %Y} – {rep.data_to:%d %b %Y %H:%M} UTC"
        if rep.data_from and rep.data_to
        else "none"
    )
    return (
        f"Generated {rep.generated_at:%Y-%m-%d %H:%M} UTC by gpuledger from the published snapshot"
        f" (data {span}); prices from the catalog of {rep.catalog_as_of}. Monthly = 730 h."
    )
