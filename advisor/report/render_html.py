"""The report as one HTML page (`<week>.html`; also the e-mail's HTML part), styled inline."""

from __future__ import annotations

from html import escape as e

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

CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2933;
margin:0;background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px;border-bottom:1px solid
#d9e2ec;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.period{color:#52606d;margin-bottom:18px}
.kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:14px;margin:8px 0 8px}
.kpi{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:12px 14px}
.kpi .label{font-size:13px;color:#52606d}.kpi .value{font-size:26px;font-weight:600;margin:2px 0}
.kpi .sub{font-size:12px;color:#616e7c}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:20px}
.card{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:12px 16px}
table{border-collapse:collapse;width:100%;font-size:13.5px;background:#fff}
th,td{padding:5px 8px;border-bottom:1px solid #e4e7eb;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f0f4f8;font-weight:600}
tr.total td{font-weight:600;border-top:2px solid #9aa5b1}
td.action,td.what{text-align:left}td.action{font-weight:600}
.recs th:nth-child(2),.recs th:nth-child(3){text-align:left}
.a-keep{color:#52606d}.a-buy_local,.a-move_to_local,.a-downsize,.a-move_to_cloud,.a-hybrid,
.a-schedule{color:#0b6e4f}
ul{margin:6px 0 6px 18px;padding:0}li{margin:3px 0}
.reasons li{font-size:13.5px;line-height:1.45}
.charts img{width:100%;height:auto}
.note{font-size:12.5px;color:#616e7c}
"""


def render_html(rep: Report, images: dict[str, str]) -> str:
    body = f"""<main>
<h1>GPU spend and use, week {e(rep.week)}</h1>
<div class="period">{e(period(rep))}</div>
<div class="kpis">{_kpi_cards(rep)}</div>
<h2>Recommended actions</h2>{_rec_table(rep) if rep.recs.height else "<p>None.</p>"}
<h2>What changed since last week</h2><ul>{"".join(f"<li>{e(c)}</li>" for c in rep.changes)}</ul>
<h2>Spend and GPU-hours per workload</h2>
<div class="cols charts">{_charts(images)}</div>
<p></p>
{_table(TABLE_HEAD, table_rows(rep), total=True)}
<p class="note">Local cost is amortized purchase + operations + measured energy; cloud cost is the
bill's EffectiveCost. <code>__idle__</code> is local GPU time with no process.</p>
{_unpriced(rep)}
<h2>Wasted high-end GPU time</h2>
{_waste(rep)}
<p class="note">{e(rep.waste_note)}.</p>
<h2>Recommendations with their arithmetic</h2>
{_reasons(rep, images)}
<p class="note">{e(footer(rep))}</p>
</main>"""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>gpuledger {e(rep.week)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _table(head: list[str], rows: list[list[str]], *, total: bool = False) -> str:
    """A table of `rows` under `head`; with `total`, its last row is the total."""
    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = ' class="total"' if total and i == len(rows) - 1 else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _rec_table(rep: Report) -> str:
    """The recommended actions, the action coloured by kind."""
    out = ["<table class='recs'><thead><tr>", *(f"<th>{e(h)}</th>" for h in REC_HEAD)]
    out.append("</tr></thead>")
    out.append("<tbody>")
    for row in rec_rows(rep):
        out.append(
            f"<tr><td>{e(row[0])}</td><td class='action a-{e(row[1])}'>{e(row[1])}</td>"
            f"<td class='what'>{e(row[2])}</td>"
            + "".join(f"<td>{e(c)}</td>" for c in row[3:])
            + "</tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def _kpi_cards(rep: Report) -> str:
    return "".join(
        f"<div class='kpi'><div class='label'>{e(label)}</div><div class='value'>{e(value)}"
        f"</div><div class='sub'>{e(sub)}</div></div>"
        for label, value, sub in kpis(rep)
    )


def _charts(images: dict[str, str]) -> str:
    return "".join(
        f"<div class='card'><img src='{e(images[n])}' alt='{n} chart'></div>"
        for n in ("spend", "hours")
        if n in images
    )


def _reasons(rep: Report, images: dict[str, str]) -> str:
    """Each recommendation's heading and its reasons, the arithmetic in words (a hybrid with
    its demand chart)."""
    detail = []
    for r in rep.recs.iter_rows(named=True):
        chart = images.get(hybrid_image(r["workload"])) if r["action"] == "hybrid" else None
        detail.append(
            f"<h3>{e(r['workload'])}: <span class='a-{e(r['action'])}'>{e(r['action'])}</span>"
            f" <span class='note'>({e(ACTION_WORDS.get(r['action'], ''))})</span></h3>"
            "<ul class='reasons'>"
            + "".join(f"<li>{e(x)}</li>" for x in r["reasons"] or [])
            + "</ul>"
            + (
                f"<div class='card charts'><img src='{e(chart)}' alt='demand and local base'></div>"
                if chart
                else ""
            )
        )
    return "".join(detail)


def _waste(rep: Report) -> str:
    """The wasted high-end GPU time table and the spare high-end GPUs under it."""
    waste = _table(WASTE_HEAD, waste_rows(rep)) if rep.waste.height else "<p>None this week.</p>"
    spare = "".join(f"<p class='note'>{e(x)}</p>" for x in spare_lines(rep) if x)
    return waste + spare


def _unpriced(rep: Report) -> str:
    if not rep.unpriced:
        return ""
    return (
        "<h2>Unpriced GPUs</h2><ul>" + "".join(f"<li>{e(x)}</li>" for x in rep.unpriced) + "</ul>"
    )
