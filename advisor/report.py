"""The weekly report: `reports/<ISO week>.html` and `.md` (with their chart images) for a team lead.

For one ISO week (Monday 00:00 to Monday 00:00 UTC) it shows spend and GPU-hours per workload,
cloud and local side by side; wasted high-end GPU time (advisor/waste.py's runs); the
recommendations as of the week's end with their arithmetic; and what changed since the week
before. Everything comes from the published snapshot (read-only); the recommendations are
recomputed for the window ending with the week, with the same pure functions as the daemon's.
Charts are static PNG images (Altair through vl-convert), so the files read anywhere, e-mail too.
"""

from __future__ import annotations

import html
import logging
import os
import re
import smtplib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import altair as alt
import polars as pl

from advisor.attribution import IDLE
from advisor.costs import pct, usd
from advisor.ledger import cloud_hosts
from advisor.recommend import Params, recommendations
from config.catalog import catalog_as_of
from config.gpu_class import GpuClasses, unpriced_warnings
from config.settings import Config
from warehouse import advisor_reads
from warehouse.snapshot import Snapshot

log = logging.getLogger(__name__)

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
CLOUD, LOCAL = "#4C78A8", "#F58518"
ACTION_WORDS = {
    "keep": "keep as is",
    "move_to_local": "move to local GPUs",
    "buy_local": "buy local GPUs",
    "move_to_cloud": "move to the cloud",
    "downsize": "move to a smaller GPU",
}


class ReportError(ValueError):
    """A report that cannot be written as asked (bad week, no data); the message says why."""


# Weeks --------------------------------------------------------------------------------------------
def week_bounds(week: str) -> tuple[datetime, datetime]:
    """`2026-W48` -> (Monday 23 Nov 2026 00:00 UTC, Monday 30 Nov 2026 00:00 UTC)."""
    m = WEEK.match(week.strip())
    if not m:
        raise ReportError(f"--week must look like 2026-W48, got {week!r}")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise ReportError(f"{week} is not a week of {m.group(1)}") from None
    start = datetime.combine(monday, time(0), tzinfo=UTC)
    return start, start + timedelta(days=7)


def week_of(moment: datetime | date) -> str:
    year, number, _ = moment.isocalendar()
    return f"{year}-W{number:02d}"


def last_complete_week(now: datetime) -> str:
    return week_of(now.astimezone(UTC) - timedelta(days=7))


def due_at(week: str, tz=None) -> datetime:
    """When the daemon writes `week`: the Monday 08:00 local time that follows the week's end;
    east of UTC, where that Monday morning comes before the UTC week is over, at its end."""
    end = week_bounds(week)[1]
    local_end = end.astimezone(tz) if tz else end.astimezone()
    monday = local_end.date() + timedelta(days=(7 - local_end.weekday()) % 7)
    at = datetime.combine(monday, time(8), tzinfo=local_end.tzinfo)
    return max(at, end)


def due_weeks(
    now: datetime,
    written: set[str],
    data_from: datetime | None,
    data_to: datetime | None,
    *,
    catch_up: int,
    tz=None,
) -> list[str]:
    """Weeks whose report is due and not yet written, oldest first: the newest complete weeks
    (up to `catch_up`, and always the last one) that hold data."""
    if data_from is None or data_to is None:
        return []
    out = []
    week = last_complete_week(now)
    for _ in range(max(1, catch_up)):
        start, end = week_bounds(week)
        if end <= data_from:
            break
        if start < data_to and week not in written and due_at(week, tz) <= now:
            out.append(week)
        week = week_of(start - timedelta(days=1))
    return sorted(out)


# Figures ------------------------------------------------------------------------------------------
@dataclass
class WeekFigures:
    by_workload: pl.DataFrame
    cloud_usd: float = 0.0
    local_usd: float = 0.0
    gpu_hours: float = 0.0
    busy_gpu_hours: float = 0.0
    idle_usd: float = 0.0
    activity_gpu_hours: float = 0.0  # GPU-hours with an activity signal

    @property
    def total_usd(self) -> float:
        return self.cloud_usd + self.local_usd

    @property
    def busy_fraction(self) -> float | None:
        """Busy over the GPU-hours with an activity signal; None (unknown) without any."""
        if self.activity_gpu_hours <= 0:
            return None
        return self.busy_gpu_hours / self.activity_gpu_hours


def busy_pct(value: float | None) -> str:
    """A busy fraction in words: "unknown" where no activity signal existed, never 0 %."""
    return "unknown" if value is None else pct(value)


def week_figures(ledger: pl.DataFrame, start: date, end: date) -> WeekFigures:
    """Spend and GPU-hours per workload, cloud and local side by side, for days [start, end).
    Busy fraction = busy GPU-hours / GPU-hours with an activity signal (null: unknown)."""
    rows = ledger.filter((pl.col("day") >= start) & (pl.col("day") < end))
    if "activity_gpu_hours" not in rows.columns:  # ledgers from before it: all had a signal
        rows = rows.with_columns(activity_gpu_hours=pl.col("gpu_hours"))
    cloud, local = pl.col("placement") == "cloud", pl.col("placement") == "local"
    by = (
        rows.group_by("workload")
        .agg(
            cloud_usd=pl.col("cost_usd").filter(cloud).sum(),
            local_usd=pl.col("cost_usd").filter(local).sum(),
            cloud_gpu_hours=pl.col("gpu_hours").filter(cloud).sum(),
            local_gpu_hours=pl.col("gpu_hours").filter(local).sum(),
            busy_gpu_hours=pl.col("busy_gpu_hours").fill_null(0.0).sum(),
            activity_gpu_hours=pl.col("activity_gpu_hours").fill_null(pl.col("gpu_hours")).sum(),
            idle_usd=pl.col("idle_cost_usd").fill_null(0.0).sum(),
        )
        .with_columns(
            total_usd=pl.col("cloud_usd") + pl.col("local_usd"),
            gpu_hours=pl.col("cloud_gpu_hours") + pl.col("local_gpu_hours"),
        )
        .with_columns(
            busy_fraction=pl.when(pl.col("activity_gpu_hours") > 0)
            .then(pl.col("busy_gpu_hours") / pl.col("activity_gpu_hours"))
            .otherwise(None)
        )
        .sort(["total_usd", "workload"], descending=[True, False])
    )
    return WeekFigures(
        by_workload=by,
        cloud_usd=float(rows.filter(cloud)["cost_usd"].sum()),
        local_usd=float(rows.filter(local)["cost_usd"].sum()),
        gpu_hours=float(rows["gpu_hours"].sum()),
        busy_gpu_hours=float(rows["busy_gpu_hours"].fill_null(0.0).sum()),
        idle_usd=float(rows["idle_cost_usd"].fill_null(0.0).sum()),
        activity_gpu_hours=float(
            rows.select(pl.col("activity_gpu_hours").fill_null(pl.col("gpu_hours")).sum()).item()
        ),
    )


def idle_high_end_hours(
    usage: pl.DataFrame, ledger: pl.DataFrame, catalog: pl.DataFrame, threshold_pct: float
) -> pl.DataFrame:
    """Fallback for advisor/waste.py: hours in which a workload held a high-end GPU that was busy
    under `threshold_pct`, valued at that workload's ledger cost per GPU-hour on the host. Hours
    without an activity signal are no evidence of idleness and are left out."""
    resolver = GpuClasses(catalog)
    if "activity_seconds" not in usage.columns:  # usage from before it: all had a signal
        usage = usage.with_columns(activity_seconds=pl.col("seconds"))
    usage = resolver.resolve_frame(usage, "gpu_model", "mem_total_mib", "_class")
    rate = (
        ledger.group_by("workload", "host")
        .agg(r=pl.col("cost_usd").sum() / pl.col("gpu_hours").sum())
        .filter(pl.col("r").is_finite())
    )
    wasted = (
        usage.filter(
            pl.col("_class").is_in(list(resolver.high_end))
            & (pl.col("workload") != IDLE)
            & (pl.col("activity_seconds") > 0)
            & (pl.col("busy_seconds") < pl.col("activity_seconds") * threshold_pct / 100.0)
        )
        .join(rate, on=["workload", "host"], how="left")
        .group_by("workload", "gpu_model")
        .agg(
            hours=pl.col("seconds").sum() / 3600.0,
            usd=(pl.col("seconds") / 3600.0 * pl.col("r").fill_null(0.0)).sum(),
        )
        .with_columns(kind=pl.lit("allocated_idle"), runs=pl.lit(None, pl.Int64))
    )
    return wasted.select("workload", "gpu_model", "kind", "runs", "hours", "usd").sort(
        "usd", descending=True
    )


def wasted_time(
    minutes: pl.DataFrame,
    usage: pl.DataFrame,
    ledger: pl.DataFrame,
    bills: pl.DataFrame,
    instances: pl.DataFrame,
    catalog: pl.DataFrame,
    cfg: Config,
    *,
    now: datetime,
) -> tuple[pl.DataFrame, str]:
    """Wasted high-end GPU time per workload, GPU model and kind, and where it comes from."""
    empty = pl.DataFrame(
        schema={
            "workload": pl.String,
            "gpu_model": pl.String,
            "kind": pl.String,
            "runs": pl.Int64,
            "hours": pl.Float64,
            "usd": pl.Float64,
        }
    )
    try:
        from advisor.waste import wasted_runs

        cloud = cloud_hosts(bills).join(instances, on="host", how="left")
        runs = wasted_runs(minutes, cloud, catalog, cfg, now=now) if minutes.height else None
        if runs is None or runs.height == 0:
            return empty, "advisor/waste.py"
        table = (
            runs.group_by("workload", "gpu_model", "kind")
            .agg(
                runs=pl.len().cast(pl.Int64),
                hours=pl.col("wasted_s").sum() / 3600.0,
                usd=pl.col("wasted_usd").sum(),
            )
            .sort("usd", descending=True)
        )
        return table, "advisor/waste.py"
    except Exception:  # waste detection is another feature's: the report still goes out
        log.exception("advisor.waste failed; the report uses the hourly fallback")
        threshold = getattr(getattr(cfg, "thresholds", None), "idle_activity_pct", 10.0)
        return (
            idle_high_end_hours(usage, ledger, catalog, threshold),
            "hourly ledger (allocated high-end GPU-hours busy under the idle threshold)",
        )


# The report ---------------------------------------------------------------------------------------
@dataclass
class Report:
    week: str
    start: datetime
    end: datetime
    generated_at: datetime
    data_from: datetime | None
    data_to: datetime | None
    this: WeekFigures
    prev: WeekFigures
    recs: pl.DataFrame
    prev_recs: pl.DataFrame
    waste: pl.DataFrame
    prev_waste_usd: float
    waste_source: str
    spare_high_end: pl.DataFrame
    catalog_as_of: date | None
    changes: list[str] = field(default_factory=list)
    # one warning per local GPU model the week's ledger could not price (no purchase price)
    unpriced: list[str] = field(default_factory=list)

    def covered_hours(self, start: datetime, end: datetime) -> float:
        """Hours of [start, end) the snapshot's data covers."""
        if self.data_from is None or self.data_to is None:
            return 0.0
        lo, hi = max(start, self.data_from), min(end, self.data_to + timedelta(minutes=1))
        return max(0.0, (hi - lo).total_seconds() / 3600.0)

    @property
    def comparable(self) -> bool:
        """Whether this week and the one before are covered alike (else compare per day)."""
        now = self.covered_hours(self.start, self.end)
        before = self.covered_hours(self.start - timedelta(days=7), self.start)
        return before > 0 and abs(now - before) <= 0.1 * max(now, before)

    def per_day(self, figure: float, *, prev: bool = False) -> float:
        start = self.start - timedelta(days=7) if prev else self.start
        hours = self.covered_hours(start, start + timedelta(days=7))
        return figure / hours * 24.0 if hours else 0.0

    @property
    def complete(self) -> bool:
        return self.data_to is not None and self.data_to >= self.end - timedelta(minutes=2)

    @property
    def savings(self) -> float:
        acted = self.recs.filter(pl.col("action") != "keep")
        return float(acted["monthly_savings_usd"].sum()) if acted.height else 0.0


def build_report(
    snap: Snapshot, cfg: Config, catalog: pl.DataFrame, week: str, *, now: datetime | None = None
) -> Report:
    """Everything the report shows for `week`, from the snapshot."""
    now = now or datetime.now(UTC)
    start, end = week_bounds(week)
    if start >= now:
        raise ReportError(f"{week} has not started yet")
    if not advisor_reads.has_advisor_tables(snap):
        raise ReportError("the snapshot has no advisor results yet: run `gpuledger run` once")
    data_from, data_to = advisor_reads.data_span(snap)
    if data_to is None or data_to < start or data_from >= end:
        raise ReportError(
            f"no GPU data in {week} ({start:%d %b} – {end - timedelta(days=1):%d %b %Y}); the"
            f" snapshot holds {data_from:%d %b} – {data_to:%d %b %Y}"
            if data_to
            else f"no GPU data in the snapshot for {week}"
        )
    ledger = advisor_reads.ledger(snap)
    usage = advisor_reads.usage_hourly(snap)
    instances = advisor_reads.instances(snap)
    bills = advisor_reads.billing_daily(snap)
    params = Params.from_config(cfg)
    sensitive = set(cfg.workloads.sensitive)
    this = week_figures(ledger, start.date(), end.date())
    prev = week_figures(ledger, (start - timedelta(days=7)).date(), start.date())
    recs, _ = recommendations(
        usage, ledger, instances, catalog, params, sensitive, end=min(end, now), now=now
    )
    prev_recs, _ = recommendations(
        usage.filter(pl.col("hour") < start),
        ledger.filter(pl.col("day") < start.date()),
        instances,
        catalog,
        params,
        sensitive,
        end=start,
        now=now,
    )
    minutes = advisor_reads.gpu_minutes(snap, start - timedelta(days=7), end)
    week_minutes = minutes.filter(pl.col("minute") >= start)
    week_usage = usage.filter((pl.col("hour") >= start) & (pl.col("hour") < end))
    week_ledger = ledger.filter((pl.col("day") >= start.date()) & (pl.col("day") < end.date()))
    waste, source = wasted_time(
        week_minutes, week_usage, week_ledger, bills, instances, catalog, cfg, now=min(end, now)
    )
    prev_waste, _ = wasted_time(
        minutes.filter(pl.col("minute") < start),
        usage.filter((pl.col("hour") >= start - timedelta(days=7)) & (pl.col("hour") < start)),
        ledger.filter(
            (pl.col("day") >= (start - timedelta(days=7)).date()) & (pl.col("day") < start.date())
        ),
        bills,
        instances,
        catalog,
        cfg,
        now=start,
    )
    resolver = GpuClasses(catalog)
    spare = (
        resolver.resolve_frame(week_ledger.filter(pl.col("workload") == IDLE), memory=None)
        .filter(pl.col("gpu_class").is_in(list(resolver.high_end)))
        .group_by("host", "gpu_model")
        .agg(hours=pl.col("gpu_hours").sum(), usd=pl.col("cost_usd").sum())
        .sort("usd", descending=True)
    )
    rep = Report(
        week=week,
        start=start,
        end=end,
        generated_at=now,
        data_from=data_from,
        data_to=data_to,
        this=this,
        prev=prev,
        recs=recs,
        prev_recs=prev_recs,
        waste=waste,
        prev_waste_usd=float(prev_waste["usd"].sum()) if prev_waste.height else 0.0,
        waste_source=source,
        spare_high_end=spare,
        catalog_as_of=catalog_as_of(catalog) if catalog.height else None,
    )
    rep.changes = what_changed(rep)
    rep.unpriced = unpriced_warnings(advisor_reads.unpriced_models(week_ledger), catalog)
    return rep


def _changes_per_day(rep: Report, before_h: float, now_h: float) -> list[str]:
    t, p = rep.this, rep.prev
    d = rep.per_day
    out = [
        f"The weeks are covered differently ({before_h / 24:.1f} days of data last week,"
        f" {now_h / 24:.1f} this week), so they are compared per day.",
        f"Spend per day {usd(d(p.total_usd, prev=True), cents=False)} → "
        f"{usd(d(t.total_usd), cents=False)} "
        f"({_delta(d(t.total_usd), d(p.total_usd, prev=True))}).",
        f"GPU-hours per day {d(p.gpu_hours, prev=True):,.0f} → {d(t.gpu_hours):,.0f}; busy "
        f"{busy_pct(p.busy_fraction)} → {busy_pct(t.busy_fraction)}.",
    ]
    waste_now = float(rep.waste["usd"].sum()) if rep.waste.height else 0.0
    out.append(
        f"Wasted high-end GPU time per day {usd(d(rep.prev_waste_usd, prev=True), cents=False)}"
        f" → {usd(d(waste_now), cents=False)}."
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


def _delta(now: float, before: float) -> str:
    diff = now - before
    if abs(diff) < 0.5:
        return "no change"
    sign = "+" if diff >= 0 else "−"
    rel = f", {sign}{abs(diff) / before:.0%}" if before else ""
    return f"{sign}{usd(abs(diff), cents=False)}{rel}"


def what_changed(rep: Report) -> list[str]:
    """Sentences on what moved since the week before (per day where the weeks' data coverage
    differs, e.g. a week in progress or a first week that began mid-week)."""
    out = []
    t, p = rep.this, rep.prev
    if p.gpu_hours == 0:
        return ["No data for the week before: nothing to compare with."]
    if not rep.comparable:
        before_h = rep.covered_hours(rep.start - timedelta(days=7), rep.start)
        now_h = rep.covered_hours(rep.start, rep.end)
        return _changes_per_day(rep, before_h, now_h)
    out.append(
        f"Spend {usd(p.total_usd, cents=False)} → {usd(t.total_usd, cents=False)} "
        f"({_delta(t.total_usd, p.total_usd)}); cloud {usd(p.cloud_usd, cents=False)} → "
        f"{usd(t.cloud_usd, cents=False)}, local {usd(p.local_usd, cents=False)} → "
        f"{usd(t.local_usd, cents=False)}."
    )
    out.append(
        f"GPU-hours {p.gpu_hours:,.0f} → {t.gpu_hours:,.0f}; busy "
        f"{busy_pct(p.busy_fraction)} → {busy_pct(t.busy_fraction)}."
    )
    joined = t.by_workload.join(
        p.by_workload.select("workload", prev_usd="total_usd"), on="workload", how="full"
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
            f"({_delta(now_usd, before)})."
        )
    waste_now = float(rep.waste["usd"].sum()) if rep.waste.height else 0.0
    out.append(
        f"Wasted high-end GPU time {usd(rep.prev_waste_usd, cents=False)} → "
        f"{usd(waste_now, cents=False)}."
    )
    out += _recommendation_changes(rep)
    return out


# Rendering ----------------------------------------------------------------------------------------
def chart_images(rep: Report) -> dict[str, bytes]:
    """PNG charts: spend per workload and GPU-hours per workload (busy, not busy, and activity
    unknown: time without an activity signal is neither)."""
    by = rep.this.by_workload
    if by.height == 0:
        return {}
    order = by["workload"].to_list()
    spend = by.select("workload", cloud=pl.col("cloud_usd"), local=pl.col("local_usd")).unpivot(
        index="workload", variable_name="placement", value_name="usd"
    )
    spend_chart = (
        alt.Chart(spend.to_pandas(), title=f"Spend per workload, {rep.week} (USD)")
        .mark_bar()
        .encode(
            y=alt.Y("workload:N", sort=order, title=None),
            x=alt.X("usd:Q", title="USD", stack=True, axis=alt.Axis(format="$,.0f")),
            color=alt.Color(
                "placement:N",
                scale=alt.Scale(domain=["cloud", "local"], range=[CLOUD, LOCAL]),
                legend=alt.Legend(orient="bottom", title=None),
            ),
        )
        .properties(width=420, height=22 * len(order))
    )
    hours = by.select(
        "workload",
        busy=pl.col("busy_gpu_hours"),
        **{
            "not busy": pl.col("activity_gpu_hours") - pl.col("busy_gpu_hours"),
            "unknown": pl.col("gpu_hours") - pl.col("activity_gpu_hours"),
        },
    ).unpivot(index="workload", variable_name="time", value_name="hours")
    hours_chart = (
        alt.Chart(hours.to_pandas(), title=f"GPU-hours per workload, {rep.week}")
        .mark_bar()
        .encode(
            y=alt.Y("workload:N", sort=order, title=None),
            x=alt.X("hours:Q", title="GPU-hours", stack=True),
            color=alt.Color(
                "time:N",
                scale=alt.Scale(
                    domain=["busy", "not busy", "unknown"],
                    range=["#54A24B", "#D3D3D3", "#9ECAE9"],
                ),
                legend=alt.Legend(orient="bottom", title=None),
            ),
        )
        .properties(width=420, height=22 * len(order))
    )
    out = {}
    for name, chart in (("spend", spend_chart), ("hours", hours_chart)):
        import vl_convert as vlc

        out[name] = vlc.vegalite_to_png(chart.to_json(), scale=2)
    return out


def _kpis(rep: Report) -> list[tuple[str, str, str]]:
    t, p = rep.this, rep.prev
    waste = float(rep.waste["usd"].sum()) if rep.waste.height else 0.0
    waste_h = float(rep.waste["hours"].sum()) if rep.waste.height else 0.0
    acted = rep.recs.filter(pl.col("action") != "keep").height
    return [
        (
            "Spend this week",
            usd(t.total_usd, cents=False),
            f"cloud {usd(t.cloud_usd, cents=False)} · local {usd(t.local_usd, cents=False)}"
            + (
                f" · {_delta(t.total_usd, p.total_usd)} on last week"
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
            usd(waste, cents=False),
            f"{waste_h:,.0f} GPU-hours held but idle or underused",
        ),
        (
            "Savings found",
            f"{usd(rep.savings, cents=False)}/month",
            f"{acted} recommendation{'s' if acted != 1 else ''} to act on",
        ),
    ]


def _period(rep: Report) -> str:
    last = rep.end - timedelta(days=1)
    text = f"{rep.start:%a %d %b} – {last:%a %d %b %Y} (UTC)"
    if not rep.complete and rep.data_to is not None:
        text += f"; week in progress, data until {rep.data_to:%a %d %b %H:%M} UTC"
    return text


def _table_rows(rep: Report) -> list[list[str]]:
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


TABLE_HEAD = ["workload", "cloud", "local", "total", "cloud GPU-h", "local GPU-h", "busy"]
REC_HEAD = [
    "workload",
    "action",
    "what to do",
    "now / month",
    "saves / month",
    "break-even",
    "confidence",
]


def _rec_rows(rep: Report) -> list[list[str]]:
    rows = []
    for r in rep.recs.iter_rows(named=True):
        rows.append(
            [
                r["workload"],
                r["action"],
                r["alternative"] or "—",
                usd(r["current_monthly_cost_usd"], cents=False),
                usd(r["monthly_savings_usd"], cents=False) if r["action"] != "keep" else "—",
                f"{r['break_even_months']:.1f} mo" if r["break_even_months"] else "—",
                f"{r['confidence']:.2f}",
            ]
        )
    return rows


def _waste_rows(rep: Report) -> list[list[str]]:
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


def render_markdown(rep: Report, images: dict[str, str]) -> str:
    def table(head: list[str], rows: list[list[str]]) -> list[str]:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        return lines

    md = [f"# GPU spend and use, week {rep.week}", "", _period(rep), ""]
    for label, value, sub in _kpis(rep):
        md.append(f"- **{label}: {value}** — {sub}")
    md += ["", "## What changed since last week", ""]
    md += [f"- {c}" for c in rep.changes]
    md += ["", "## Recommended actions", ""]
    md += table(REC_HEAD, _rec_rows(rep)) if rep.recs.height else ["No workloads to assess."]
    md += ["", "## Spend and GPU-hours per workload", ""]
    for name in ("spend", "hours"):
        if name in images:
            md.append(f"![{name}]({images[name]})")
    md += [""] + table(TABLE_HEAD, _table_rows(rep))
    md += [
        "",
        "Local cost is amortized purchase + operations + measured energy; cloud cost is the"
        " bill's EffectiveCost. `__idle__` is local GPU time with no process.",
        "",
    ]
    if rep.unpriced:
        md += ["## Unpriced GPUs", "", *(f"- {line}" for line in rep.unpriced), ""]
    md += [
        "## Wasted high-end GPU time",
        "",
    ]
    md += (
        table(["workload", "GPU", "kind", "GPU-hours", "wasted"], _waste_rows(rep))
        if (rep.waste.height)
        else ["None this week."]
    )
    md += _spare_lines(rep)
    md += ["", f"Source: {rep.waste_source}.", "", "## Recommendations with their arithmetic", ""]
    for r in rep.recs.iter_rows(named=True):
        md.append(f"### {r['workload']}: {r['action']} ({ACTION_WORDS.get(r['action'], '')})")
        md.append("")
        md += [f"- {reason}" for reason in r["reasons"] or []]
        md.append("")
    md += [_footer(rep)]
    return "\n".join(md) + "\n"


def _spare_lines(rep: Report) -> list[str]:
    if rep.spare_high_end.height == 0:
        return []
    parts = [
        f"{h:,.0f} GPU-hours of {m} on {host} ({usd(c, cents=False)})"
        for host, m, h, c in rep.spare_high_end.iter_rows()
    ]
    return ["", "Unallocated high-end GPUs (no process, shown as `__idle__`): " + "; ".join(parts)]


def _footer(rep: Report) -> str:
    span = (
        f"{rep.data_from:%d %b %Y} – {rep.data_to:%d %b %Y %H:%M} UTC"
        if rep.data_from and rep.data_to
        else "none"
    )
    return (
        f"Generated {rep.generated_at:%Y-%m-%d %H:%M} UTC by gpuledger from the published snapshot"
        f" (data {span}); prices from the catalog of {rep.catalog_as_of}. Monthly = 730 h."
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
.a-keep{color:#52606d}.a-buy_local,.a-move_to_local,.a-downsize,.a-move_to_cloud{color:#0b6e4f}
ul{margin:6px 0 6px 18px;padding:0}li{margin:3px 0}
.reasons li{font-size:13.5px;line-height:1.45}
.charts img{width:100%;height:auto}
.note{font-size:12.5px;color:#616e7c}
"""


def render_html(rep: Report, images: dict[str, str]) -> str:
    e = html.escape

    def table(head: list[str], rows: list[list[str]], *, total: bool = False) -> str:
        out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr></thead><tbody>"]
        for i, row in enumerate(rows):
            cls = ' class="total"' if total and i == len(rows) - 1 else ""
            out.append(f"<tr{cls}>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
        out.append("</tbody></table>")
        return "".join(out)

    def rec_table() -> str:
        out = ["<table class='recs'><thead><tr>", *(f"<th>{e(h)}</th>" for h in REC_HEAD)]
        out.append("</tr></thead>")
        out.append("<tbody>")
        for row in _rec_rows(rep):
            out.append(
                f"<tr><td>{e(row[0])}</td><td class='action a-{e(row[1])}'>{e(row[1])}</td>"
                f"<td class='what'>{e(row[2])}</td>"
                + "".join(f"<td>{e(c)}</td>" for c in row[3:])
                + "</tr>"
            )
        out.append("</tbody></table>")
        return "".join(out)

    kpis = "".join(
        f"<div class='kpi'><div class='label'>{e(label)}</div><div class='value'>{e(value)}"
        f"</div><div class='sub'>{e(sub)}</div></div>"
        for label, value, sub in _kpis(rep)
    )
    charts = "".join(
        f"<div class='card'><img src='{e(images[n])}' alt='{n} chart'></div>"
        for n in ("spend", "hours")
        if n in images
    )
    detail = []
    for r in rep.recs.iter_rows(named=True):
        detail.append(
            f"<h3>{e(r['workload'])}: <span class='a-{e(r['action'])}'>{e(r['action'])}</span>"
            f" <span class='note'>({e(ACTION_WORDS.get(r['action'], ''))})</span></h3>"
            "<ul class='reasons'>"
            + "".join(f"<li>{e(x)}</li>" for x in r["reasons"] or [])
            + "</ul>"
        )
    waste = (
        table(["workload", "GPU", "kind", "GPU-hours", "wasted"], _waste_rows(rep))
        if rep.waste.height
        else "<p>None this week.</p>"
    )
    spare = "".join(f"<p class='note'>{e(x)}</p>" for x in _spare_lines(rep) if x)
    unpriced = (
        "<h2>Unpriced GPUs</h2><ul>" + "".join(f"<li>{e(x)}</li>" for x in rep.unpriced) + "</ul>"
        if rep.unpriced
        else ""
    )
    body = f"""<main>
<h1>GPU spend and use, week {e(rep.week)}</h1>
<div class="period">{e(_period(rep))}</div>
<div class="kpis">{kpis}</div>
<h2>Recommended actions</h2>{rec_table() if rep.recs.height else "<p>None.</p>"}
<h2>What changed since last week</h2><ul>{"".join(f"<li>{e(c)}</li>" for c in rep.changes)}</ul>
<h2>Spend and GPU-hours per workload</h2>
<div class="cols charts">{charts}</div>
<p></p>
{table(TABLE_HEAD, _table_rows(rep), total=True)}
<p class="note">Local cost is amortized purchase + operations + measured energy; cloud cost is the
bill's EffectiveCost. <code>__idle__</code> is local GPU time with no process.</p>
{unpriced}
<h2>Wasted high-end GPU time</h2>
{waste}{spare}
<p class="note">Source: {e(rep.waste_source)}.</p>
<h2>Recommendations with their arithmetic</h2>
{"".join(detail)}
<p class="note">{e(_footer(rep))}</p>
</main>"""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>gpuledger {e(rep.week)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


# Writing and delivery -----------------------------------------------------------------------------
@dataclass
class ReportFiles:
    week: str
    html: Path
    markdown: Path
    images: dict[str, Path]
    summary: str


def reports_dir(cfg: Config) -> Path:
    return cfg.resolve(cfg.report.dir)


def written_weeks(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {p.stem for p in directory.glob("*.html") if WEEK.match(p.stem)}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_report(
    cfg: Config,
    catalog: pl.DataFrame,
    week: str,
    *,
    snap: Snapshot | None = None,
    now: datetime | None = None,
    directory: Path | None = None,
) -> ReportFiles:
    """Build and write `<week>.html`, `<week>.md` and their chart images."""
    directory = Path(directory) if directory else reports_dir(cfg)
    own = snap is None
    snap = snap or Snapshot(cfg.snapshot_path)
    try:
        if not snap.exists():
            raise ReportError(f"no snapshot at {cfg.snapshot_path}: run `gpuledger run` first")
        rep = build_report(snap, cfg, catalog, week, now=now)
    finally:
        if own:
            snap.close()
    directory.mkdir(parents=True, exist_ok=True)
    pngs = chart_images(rep)
    images = {}
    for name, data in pngs.items():
        path = directory / f"{week}-{name}.png"
        _atomic_write(path, data)
        images[name] = path
    rel = {name: p.name for name, p in images.items()}
    md_path, html_path = directory / f"{week}.md", directory / f"{week}.html"
    _atomic_write(md_path, render_markdown(rep, rel).encode())
    _atomic_write(html_path, render_html(rep, rel).encode())
    summary = (
        f"{week}: spend {usd(rep.this.total_usd, cents=False)}, savings found "
        f"{usd(rep.savings, cents=False)}/month"
    )
    return ReportFiles(week, html_path, md_path, images, summary)


def email_report(cfg: Config, files: ReportFiles, environ=None) -> None:
    """Send the report by SMTP ([report] smtp_*; the password from the variable it names)."""
    r = cfg.report
    if not r.smtp_host or not r.email_to:
        raise ReportError("[report] smtp_host and email_to must be set to send the report")
    env = os.environ if environ is None else environ
    password = None
    if r.smtp_password_env:
        password = env.get(r.smtp_password_env)
        if password is None:
            raise ReportError(
                f"[report] smtp_password_env names {r.smtp_password_env}, which is not set"
            )
    msg = EmailMessage()
    msg["Subject"] = f"gpuledger report {files.summary}"
    msg["From"] = r.email_from
    msg["To"] = ", ".join(r.email_to)
    msg.set_content(files.markdown.read_text())
    page = files.html.read_text()
    cids = {}
    for name, path in files.images.items():
        cid = make_msgid(domain="gpuledger")
        cids[name] = cid
        page = page.replace(f"src='{path.name}'", f"src='cid:{cid[1:-1]}'")
    msg.add_alternative(page, subtype="html")
    html_part = msg.get_payload()[1]
    for name, path in files.images.items():
        html_part.add_related(path.read_bytes(), "image", "png", cid=cids[name])
    with smtplib.SMTP(r.smtp_host, r.smtp_port, timeout=r.timeout_s) as smtp:
        if r.smtp_starttls:
            smtp.starttls()
        if r.smtp_user:
            smtp.login(r.smtp_user, password or "")
        smtp.send_message(msg)


__all__ = [
    "Report",
    "ReportError",
    "ReportFiles",
    "build_report",
    "due_at",
    "due_weeks",
    "email_report",
    "last_complete_week",
    "render_html",
    "render_markdown",
    "week_bounds",
    "week_of",
    "write_report",
]
