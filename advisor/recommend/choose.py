"""Choosing: the action for each workload from its priced alternatives, and the reasons in words.

Savings are the workload's own cash (DESIGN.md §2): for a cloud workload its bill; for a local
workload only its energy (the hardware is paid for whoever uses it). What a local workload's GPUs
are worth to a saturated neighbour on a full class (the cloud price of the GPU-hours it hands
over) is capacity freed for others, shown apart (`freed_capacity_usd`); a move that frees it may
raise the workload's own spend, and the reasons say so. Alternatives are ranked by what the team
saves (own cash + freed capacity, + a schedule on top of a pay-by-the-hour option: schedule.py),
and one is chosen where that is at least [advisor] min_saving_usd and min_saving_pct of today's
cost. Sensitive workloads are never sent to the cloud, and one in the cloud always moves to
local GPUs, even when that costs more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from advisor.costs import pct, usd
from advisor.recommend.alternatives import Alternative, alternatives
from advisor.recommend.capacity import LocalCapacity
from advisor.recommend.params import Params
from advisor.recommend.profiles import MEMORY_UNKNOWN_CONFIDENCE, Profile
from advisor.recommend.schedule import Schedule, schedule_of

ACTIONS = (
    "keep",
    "move_to_local",
    "buy_local",
    "move_to_cloud",
    "downsize",
    "hybrid",
    "schedule",
)


@dataclass
class Recommendation:
    profile: Profile
    action: str
    chosen: Alternative | None
    alternatives: list[Alternative]
    reasons: list[str]
    schedule: Schedule | None = None  # stop when idle, beside the chosen option (or alone)
    schedule_savings: float = 0.0  # what the schedule saves a month (part of monthly_savings)

    @property
    def monthly_savings(self) -> float:
        """The workload's own cash saved a month: the chosen option and a schedule on top."""
        if self.chosen is None:
            return 0.0
        if self.chosen.kind == "schedule":
            return self.chosen.monthly_savings
        return self.chosen.monthly_savings + self.schedule_savings

    @property
    def freed_capacity(self) -> float:
        return self.chosen.freed_usd if self.chosen else 0.0

    def as_row(self) -> dict[str, Any]:
        p, c, load, s = self.profile, self.chosen, self.profile.load, self.schedule
        return {
            "days_observed": p.days_observed,
            "workload": p.workload,
            "placement": p.placement,
            "sensitive": p.sensitive,
            "hosts": ", ".join(p.hosts),
            "instance_type": p.instance_type,
            "gpu_model": p.gpu_model,
            "gpus": p.gpus,
            "gpu_hours_per_month": p.gpu_hours_month,
            "busy_fraction": p.busy_fraction,
            "duty_cycle": p.duty_cycle,
            "peak_memory_gib": p.peak_memory_gib,
            "current_monthly_cost_usd": p.current_monthly_cost,
            "action": self.action,
            "alternative": c.option if c else None,
            "alternative_monthly_cost_usd": c.monthly_cost if c else None,
            "monthly_savings_usd": self.monthly_savings,
            "upfront_usd": c.upfront if c else None,
            "break_even_months": (
                c.break_even_months if c and c.kind in ("buy", "hybrid") and c.upfront else None
            ),
            "confidence": p.confidence,
            "reasons": self.reasons,
            "gpus_after": c.gpus if c else None,
            "assumption": load.shape if load else None,
            "busy_gpus_p95": load.busy_p95 if load else None,
            "memory_total_gib": load.memory_total_gib if load else None,
            "freed_capacity_usd": self.freed_capacity,
            "schedule": s.words() if s else None,
            "schedule_hours_per_month": s.hours_month if s else None,
            "schedule_savings_usd": self.schedule_savings if s else None,
            "confidence_level": p.confidence_level or None,
            "confidence_reasons": p.confidence_reasons,
        }


def recommend_profiles(
    profiles: list[Profile], capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Recommendation]:
    return [decide(p, alternatives(p, capacity, catalog, params), params) for p in profiles]


def decide(p: Profile, alts: list[Alternative], params: Params) -> Recommendation:
    """The action for `p` from its priced alternatives, with the reasons in words."""
    reasons = [_current_words(p)]
    if p.gpus <= 0:
        reasons += p.notes
        rec = Recommendation(p, "keep", None, alts, reasons)
    else:
        reasons += _measured_words(p)
        feasible = [a for a in alts if a.feasible]
        if p.sensitive and p.placement == "cloud":
            by_saving = sorted(feasible, key=lambda a: (-a.monthly_savings, a.monthly_cost))
            rec = _bring_home(p, alts, by_saving, reasons, params)
        else:
            rec = _best_saving(p, alts, feasible, reasons, params)
    if p.confidence_level:
        rec.reasons.append(f"Confidence {p.confidence_level}: {'; '.join(p.confidence_reasons)}.")
    return rec


def _measured_words(p: Profile) -> list[str]:
    """What was measured: use, how its GPUs work together, memory, commitment."""
    out = [_usage_words(p)]
    if p.load is not None and p.gpus > 1:
        load = p.load
        busy = "unknown" if load.busy_p95 is None else f"{load.busy_p95:.2f}"
        total = (
            "unknown"
            if load.memory_total_gib is None
            else f"{load.memory_total_gib:.1f} GiB in total"
        )
        out.append(
            f"How its GPUs work: {load.shape_words}. In its busiest hours (p95) {busy} "
            f"GPU-equivalents were busy at once; its processes held {load.process_gpus} "
            f"GPU{'s' if load.process_gpus != 1 else ''} at once and {total}."
        )
    if p.peak_memory_gib is None:
        out.append(_memory_unknown_words(p))
    if p.commitment:
        out.append(
            f"Its instance is under a commitment ({p.commitment}): no commitment is proposed "
            "again, and one paid for every hour of its term keeps being paid if it moves."
        )
    return out


def _bring_home(
    p: Profile,
    alts: list[Alternative],
    by_saving: list[Alternative],
    reasons: list[str],
    params: Params,
) -> Recommendation:
    """A sensitive workload in the cloud moves to the cheapest local option, whatever it costs."""
    local = [a for a in by_saving if a.placement == "local"]
    reasons.append(
        f"{p.workload} is listed in [workloads] sensitive: it must not run in the cloud, so "
        "it moves to local GPUs whatever the price."
    )
    if not local:
        need = (
            f"{p.peak_memory_gib * (1 + params.memory_headroom_pct / 100):.1f} GiB"
            if p.peak_memory_gib is not None
            else f"at least the memory of its {p.gpu_model}"
        )
        reasons.append(f"No local GPU option fits it: buy or free a GPU with {need}.")
        return Recommendation(p, "move_to_local", None, alts, reasons)
    best = local[0]
    best.action = "move_to_local"
    reasons.append(f"Cheapest local option: {best.arithmetic}.")
    reasons.append(f"Fits: {best.note}.")
    if best.monthly_savings >= 0:
        share = best.monthly_savings / p.current_monthly_cost
        reasons.append(f"It also {best.savings_words} ({pct(share)}).")
    else:
        reasons.append(
            f"This costs {usd(-best.monthly_savings)} a month more than now "
            f"({usd(best.monthly_cost)} against {usd(p.current_monthly_cost)}), which the "
            "workload's sensitivity requires."
        )
    return Recommendation(p, "move_to_local", best, alts, reasons)


def _best_saving(
    p: Profile,
    alts: list[Alternative],
    feasible: list[Alternative],
    reasons: list[str],
    params: Params,
) -> Recommendation:
    """The feasible alternative the team saves the most by (with a schedule on top where it
    applies), where that is enough; else keep."""
    floor = max(params.min_saving_usd, params.min_saving_pct / 100.0 * p.current_monthly_cost)
    schedule = schedule_of(p, params)

    def extra(a: Alternative) -> float:
        """What stopping when idle adds on top of a pay-by-the-hour option: counted where it
        saves at least min_saving_usd and min_saving_pct of that option's cost (else 0)."""
        if schedule is None or a.hourly_usd is None:
            return 0.0
        saved = schedule.savings(a.hourly_usd)
        enough = max(params.min_saving_usd, params.min_saving_pct / 100.0 * a.monthly_cost)
        return saved if saved >= enough else 0.0

    ranked = sorted(
        feasible, key=lambda a: (-(a.team_savings + extra(a)), a.monthly_cost, a.option)
    )
    good = [a for a in ranked if a.team_savings + extra(a) >= floor]
    if p.sensitive:
        reasons.append(f"{p.workload} is sensitive: cloud options are not considered.")
    if not good:
        reasons += _keep_words(p, alts, ranked, floor, params)
        return Recommendation(p, "keep", None, alts, reasons)
    best = good[0]
    rec = Recommendation(p, best.action, best, alts, reasons)
    if best.kind == "schedule":
        rec.schedule, rec.schedule_savings = schedule, best.monthly_savings
    elif extra(best) and schedule is not None:
        rec.schedule, rec.schedule_savings = schedule, extra(best)
    reasons += _chosen_words(p, rec, best)
    return rec


def _chosen_words(p: Profile, rec: Recommendation, best: Alternative) -> list[str]:
    """The chosen option's arithmetic, fit, savings and, beside it, the schedule."""
    out = [f"Alternative: {best.arithmetic}.", f"Fits: {best.note}."]
    if best.kind != "schedule" and best.kind != "hybrid" and best.gpus != p.gpus:
        out.append(
            f"Consolidation: from {p.gpus} × {p.gpu_model} to {best.gpus} × {best.gpu_model}."
            if best.gpus < p.gpus
            else f"It needs {best.gpus} × {best.gpu_model} for its {p.gpus} × {p.gpu_model}."
        )
    if best.action == "keep":
        out.append(f"It stays on {best.instance_type}: only the way it is paid for changes.")
    if p.placement == "cloud" and p.current_monthly_cost > 0:
        share = best.monthly_savings / p.current_monthly_cost
        out.append(f"It {best.savings_words} ({pct(share)} of today's bill).")
    else:
        out.append(f"It {best.savings_words}.")
    if rec.schedule is not None and best.kind != "schedule" and best.hourly_usd is not None:
        s = rec.schedule
        out.append(
            f"Beside that, stop it when idle: run {s.words()} ({s.hours_month:,.0f} h a month "
            f"instead of {s.held_hours_month:,.0f} h): {s.savings_words(best.hourly_usd)} more; "
            f"in all it saves {usd(rec.monthly_savings)} a month."
        )
    return out


# Words -------------------------------------------------------------------------------------------
def _keep_words(
    p: Profile,
    alts: list[Alternative],
    by_saving: list[Alternative],
    floor: float,
    params: Params,
) -> list[str]:
    """Why nothing is worth moving to: the best option saves too little, or none fits."""
    out = []
    if p.placement == "local" and p.freed is None:
        out.append(
            f"Its local GPUs are paid for whoever uses them: leaving would save only its "
            f"energy, {usd(p.marginal_monthly_cost)} a month."
        )
    if p.saturated:
        out.append(_saturated_words(p, alts))
    if by_saving:
        b = by_saving[0]
        out.append(
            f"No feasible alternative saves at least {usd(params.min_saving_usd, cents=False)}"
            f" and {params.min_saving_pct:g} % ({usd(floor)} here): the best, {b.option}, "
            f"{b.savings_words}."
        )
    else:
        notes = list(dict.fromkeys(a.note for a in alts))[:3]
        out.append(
            "No alternative fits" + (": " + "; ".join(notes) + "." if notes else " in the catalog.")
        )
    return out


def _saturated_words(p: Profile, alts: list[Alternative]) -> str:
    """A saturated local workload: what more capacity would cost in the cloud, per GPU-hour."""
    words = f"It is saturated ({p.saturated}): work may wait for its GPUs."
    cloud = [
        a
        for a in alts
        if a.kind == "cloud" and a.feasible and a.hourly_usd is not None and a.gpus > 0
    ]
    if not cloud:
        return words
    burst = min(cloud, key=lambda a: (a.hourly_usd or 0.0) / a.gpus)
    per_gpu = (burst.hourly_usd or 0.0) / burst.gpus
    return (
        f"{words} Work over its own GPUs can burst to the cloud at {usd(per_gpu)} per GPU-hour "
        f"({burst.option}), on top of today's spend; its own GPUs stay the cheapest place for "
        "what it runs now."
    )


def _current_words(p: Profile) -> str:
    where = ", ".join(p.hosts) if p.hosts else "its resources"
    if p.described:
        where = "in the cloud" if p.placement == "cloud" else "on GPUs the team owns"
        how = f": {p.notes[0]}" if p.notes else f" {usd(p.current_monthly_cost)}"
        return (
            f"As described, {p.gpus} × {p.gpu_model} {p.held_hours_month:,.0f} h a month "
            f"{where} costs{how} a month."
        )
    span = (
        f"{usd(p.window_cost)} over {p.days_observed:g} days = {usd(p.window_cost)} ÷ "
        f"{p.span_hours:,.0f} h × 730 h = {usd(p.current_monthly_cost)} a month"
    )
    if p.placement == "cloud":
        kind = f"{p.instance_type} " if p.instance_type else ""
        return f"Runs in the cloud on {kind}{where}: EffectiveCost {span}."
    return (
        f"Runs on local GPUs ({where}): amortized purchase + operations + measured energy {span}."
    )


def _busy_words(fraction: float | None) -> str:
    return "unknown (no activity signal)" if fraction is None else pct(fraction)


def _usage_words(p: Profile) -> str:
    peak = "unknown" if p.peak_memory_gib is None else f"{p.peak_memory_gib:.1f} GiB per GPU"
    return (
        f"Holds {p.gpus} × {p.gpu_model} {p.held_hours_month:,.0f} h a month "
        f"({p.gpu_hours_month:,.0f} GPU-hours); busy {_busy_words(p.busy_fraction)} of that time, "
        f"active in {pct(p.duty_cycle)} of hours; peak memory {peak}."
    )


def _memory_unknown_words(p: Profile) -> str:
    size = f"the {p.memory_gib:g} GiB of its {p.gpu_model}" if p.memory_gib else "an unknown size"
    return (
        "Memory unknown: its GPUs reported no memory in use (e.g. a DCGM page without "
        f"DCGM_FI_DEV_FB_USED), so only GPUs with at least {size} count as fitting, and the "
        f"confidence is {MEMORY_UNKNOWN_CONFIDENCE:g} × what the days observed give."
    )
