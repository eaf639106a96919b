"""Schedules: stop when idle, run in the active hours (DESIGN.md §2, Recommendation `schedule`).

A workload that holds GPUs paid by the hour (cloud on-demand or spot) but is active in only a few
hours of the week (under [advisor] buy_min_duty_pct of its hours: the line under which work is
bursty rather than steady, as for buying) would pay only for those: the hours of the week (UTC)
in which it was active (busy at least [advisor] active_hour_busy_pct of the time it held its
GPUs) in at least one week of the window, × 730 ÷ 168 a month. The saving is the hourly price
of where it runs (today, or the alternative it moves to) × the hours it would no longer hold.
On its own (`schedule`) it is proposed where it saves at least [advisor] min_saving_usd and
min_saving_pct of today's cost; beside a change of size or place, where it saves at least
min_saving_usd and min_saving_pct of what that option costs.

Not proposed: for local GPUs (paid whoever uses them: stopping saves only idle energy), for an
instance under a commitment (paid every hour of its term), or where it was never active at all
(a workload busy under the threshold in every hour is sized down instead, not stopped).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from advisor.costs import pct, rate, usd
from advisor.recommend.capacity import LocalCapacity
from advisor.recommend.option import Alternative
from advisor.recommend.params import Params
from advisor.recommend.profiles import Profile
from tables.units import HOURS_PER_MONTH

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS_PER_WEEK = 168
# A schedule that keeps this share of the hours it holds now saves too little to propose.
MAX_KEPT_SHARE = 0.9


@dataclass(frozen=True)
class Schedule:
    """The hours a workload would hold its GPUs on a schedule."""

    hours_of_week: frozenset[int]
    held_hours_month: float  # what it holds now, a month

    @property
    def hours_month(self) -> float:
        return len(self.hours_of_week) * HOURS_PER_MONTH / HOURS_PER_WEEK

    @property
    def stopped_hours_month(self) -> float:
        return self.held_hours_month - self.hours_month

    def words(self) -> str:
        """The hours as days and times, e.g. `Mon–Fri 10:00–11:00, 14:00–16:00 UTC`."""
        return when_words(self.hours_of_week)

    def savings(self, usd_per_hour: float) -> float:
        return usd_per_hour * self.stopped_hours_month

    def savings_words(self, usd_per_hour: float) -> str:
        return (
            f"{rate(usd_per_hour)}/h × ({self.held_hours_month:,.0f} − {self.hours_month:,.0f}) h "
            f"= {usd(self.savings(usd_per_hour))} a month"
        )


def schedule_of(p: Profile, params: Params) -> Schedule | None:
    """Its schedule where one applies to its measured load (None: steady work, active in at
    least [advisor] buy_min_duty_pct of hours; no active hours; or active hours covering nearly
    all the hours it holds its GPUs)."""
    load = p.load
    if load is None or not load.active_how:
        return None
    if p.duty_cycle * 100.0 >= params.buy_min_duty_pct:
        return None
    s = Schedule(frozenset(load.active_how), p.held_hours_month)
    if s.hours_month >= MAX_KEPT_SHARE * p.held_hours_month:
        return None
    return s


def schedule_alternatives(
    p: Profile, capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Alternative]:
    """Stopping outside its active hours where it runs now (a cloud workload billed by the hour)."""
    s = schedule_of(p, params)
    if s is None or p.placement != "cloud" or p.held_hours_month <= 0:
        return []
    hourly = p.current_monthly_cost / p.held_hours_month
    cost = hourly * s.hours_month
    ok, note = True, f"active in {pct(p.duty_cycle)} of hours, all within these"
    if p.commitment:
        ok, note = False, f"its instance is committed ({p.commitment}): paid every hour anyway"
    return [
        Alternative(
            option=f"stop when idle: run {s.words()} ({s.hours_month:,.0f} h a month)",
            kind="schedule",
            placement=p.placement,
            gpu_model=p.gpu_model or "",
            gpus=p.gpus,
            monthly_cost=cost,
            feasible=ok,
            note=note,
            arithmetic=(
                f"holding its GPUs only in the {len(s.hours_of_week)} hours of the week it was "
                f"active in ({s.words()}): {len(s.hours_of_week)} × 730 ÷ 168 = "
                f"{s.hours_month:,.0f} h a month × {rate(hourly)}/h (today's bill per hour it "
                f"holds them) = {usd(cost)}"
            ),
            instance_type=p.instance_type,
            hourly_usd=None,
        )
    ]


def when_words(hours: frozenset[int]) -> str:
    """Hours of the week (Monday 00:00 = 0) as days and UTC times, days alike grouped."""
    per_day = [_ranges(sorted(h % 24 for h in hours if h // 24 == d)) for d in range(7)]
    parts: list[str] = []
    d = 0
    while d < 7:
        if not per_day[d]:
            d += 1
            continue
        end = d
        while end + 1 < 7 and per_day[end + 1] == per_day[d]:
            end += 1
        days = DAYS[d] if end == d else f"{DAYS[d]}–{DAYS[end]}"
        parts.append(f"{days} {per_day[d]}")
        d = end + 1
    return "; ".join(parts) + " UTC"


def _ranges(hours: list[int]) -> str:
    """`[10, 14, 15]` -> `10:00–11:00, 14:00–16:00`."""
    out: list[str] = []
    i = 0
    while i < len(hours):
        j = i
        while j + 1 < len(hours) and hours[j + 1] == hours[j] + 1:
            j += 1
        out.append(f"{hours[i]:02d}:00–{(hours[j] + 1) % 24:02d}:00")
        i = j + 1
    return ", ".join(out)
