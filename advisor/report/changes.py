"""What changed since the week before, in sentences: spend, GPU-hours and busy, workloads new and
gone, the biggest movers, wasted time and recommendations (per day where the weeks' data
coverage differs, e.g. a week in progress or a first week that began mid-week)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from advisor.costs import usd
from advisor.report.figures import Report, busy_pct


def delta(now: float, before: float) -> str:
    """A change in money in words: `+$1,200, +15%`, `−$80`, `no change`."""
    diff = now - before
    if abs(diff) < 0.5:
        return "no change"
    sign = "+" if diff >= 0 else "−"
    rel = f", {sign}{abs(diff) / before:.0%}" if before else ""
    return f"{sign}{usd(abs(diff), cents=False)}{rel}"


def what_changed(rep: Report) -> list[str]:
    """Sentences on what moved since the week before (per day where the weeks' data coverage
    differs, e.g. a week in progress or a first week that began mid-week)."""
    t, p = rep.this, rep.prev
    if p.gpu_hours == 0:
        return ["No data for the week before: nothing to compare with."]
    if not rep.comparable:
        before_h = rep.covered_hours(rep.start - timedelta(days=7), rep.start)
        now_h = rep.covered_hours(rep.start, rep.end)
        return _changes_per_day(rep, before_h, now_h)
    out = [
        f"Spend {usd(p.total_usd, cents=False)} → {usd(t.total_usd, cents=False)} "
        f"({delta(t.total_usd, p.total_usd)}); cloud {usd(p.cloud_usd, cents=False)} → "
        f"{usd(t.cloud_usd, cents=False)}, local {usd(p.local_usd, cents=False)} → "
        f"{usd(t.local_usd, cents=False)}.",
        f"GPU-hours {p.gpu_hours:,.0f} → {t.gpu_hours:,.0f}; busy "
        f"{busy_pct(p.busy_fraction)} → {busy_pct(t.busy_fraction)}.",
    ]
    out += _workload_changes(rep)
    out.append(
        f"Wasted high-end GPU time {usd(rep.prev_waste_usd, cents=False)} → "
        f"{usd(rep.waste_usd, cents=False)}."
    )
    out += _recommendation_changes(rep)
    return out


def _workload_changes(rep: Report) -> list[str]:
    """Workloads new this week, not seen this week, and the four whose spend moved the most
    (by at least $50 and 10 %)."""
    out = []
    joined = rep.this.by_workload.join(
        rep.prev.by_workload.select("workload", prev_usd="total_usd"), on="workload", how="full"
    ).with_columns(
        workload=pl.coalesce("workload", "workload_right"),
        total_usd=pl.col("total_usd").fill_null(0.0),
        prev_usd=pl.col("prev_usd").fill_null(0.0),
    )
    new = joined.filter((pl.col("prev_usd") == 0) & (pl.col("total_usd") > 0))["workload"]
    gone = joined.filter((pl.col("prev_usd") > 0) & (pl.col("total_usd") == 0))["workload"]
    if new.len():
        out.append(f"New this week: {', '.join(sorted(new.to_list()))}.")
    if gone.len():
        out.append(f"Not seen this week: {', '.join(sorted(gone.to_list()))}.")
    movers = (
        joined.filter((pl.col("prev_usd") > 0) & (pl.col("total_usd") > 0))
        .with_columns(diff=pl.col("total_usd") - pl.col("prev_usd"))
        .filter((pl.col("diff").abs() >= 50) & (pl.col("diff").abs() >= 0.1 * pl.col("prev_usd")))
        .sort(pl.col("diff").abs(), descending=True)
        .head(4)
    )
    for w, now_usd, before in movers.select("workload", "total_usd", "prev_usd").iter_rows():
        out.append(
            f"{w}: {usd(before, cents=False)} → {usd(now_usd, cents=False)} "
            f"({delta(now_usd, before)})."
        )
    return out


def _changes_per_day(rep: Report, before_h: float, now_h: float) -> list[str]:
    t, p = rep.this, rep.prev
    d = rep.per_day
    out = [
        f"The weeks are covered differently ({before_h / 24:.1f} days of data last week,"
        f" {now_h / 24:.1f} this week), so they are compared per day.",
        f"Spend per day {usd(d(p.total_usd, prev=True), cents=False)} → "
        f"{usd(d(t.total_usd), cents=False)} "
        f"({delta(d(t.total_usd), d(p.total_usd, prev=True))}).",
        f"GPU-hours per day {d(p.gpu_hours, prev=True):,.0f} → {d(t.gpu_hours):,.0f}; busy "
        f"{busy_pct(p.busy_fraction)} → {busy_pct(t.busy_fraction)}.",
    ]
    out.append(
        f"Wasted high-end GPU time per day {usd(d(rep.prev_waste_usd, prev=True), cents=False)}"
        f" → {usd(d(rep.waste_usd), cents=False)}."
    )
    out += _recommendation_changes(rep)
    return out


def _recommendation_changes(rep: Report) -> list[str]:
    out = []
    before = dict(rep.prev_recs.select("workload", "action").iter_rows())
    for w, action in rep.recs.select("workload", "action").iter_rows():
        if w in before and before[w] != action:
            out.append(f"Recommendation for {w} changed: {before[w]} → {action}.")
        elif w not in before and action != "keep":
            out.append(f"New recommendation: {w} → {action}.")
    return out
