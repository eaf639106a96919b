"""Choosing: the action for each workload from its priced alternatives, and the reasons in words.

Savings are what the team stops paying: for a cloud workload its bill; for a local workload only
its energy (the hardware is paid for whoever uses it), plus, where its GPU class is full and
another workload there is saturated, the cloud price of the GPU-hours it hands over. An
alternative is chosen where it saves at least [advisor] min_saving_usd and min_saving_pct.
Sensitive workloads are never sent to the cloud, and one in the cloud always moves to local
GPUs, even when that costs more.
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

ACTIONS = ("keep", "move_to_local", "buy_local", "move_to_cloud", "downsize")


@dataclass
class Recommendation:
    profile: Profile
    action: str
    chosen: Alternative | None
    alternatives: list[Alternative]
    reasons: list[str]

    @property
    def monthly_savings(self) -> float:
        return self.chosen.monthly_savings if self.chosen else 0.0

    def as_row(self) -> dict[str, Any]:
        p, c = self.profile, self.chosen
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
            "monthly_savings_usd": c.monthly_savings if c else 0.0,
            "upfront_usd": c.upfront if c else None,
            "break_even_months": c.break_even_months if c and c.kind == "buy" else None,
            "confidence": p.confidence,
            "reasons": self.reasons,
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
        return Recommendation(p, "keep", None, alts, reasons)
    reasons.append(_usage_words(p))
    if p.peak_memory_gib is None:
        reasons.append(_memory_unknown_words(p))
    feasible = [a for a in alts if a.feasible]
    by_saving = sorted(feasible, key=lambda a: (-a.monthly_savings, a.monthly_cost, a.option))
    if p.sensitive and p.placement == "cloud":
        return _bring_home(p, alts, by_saving, reasons, params)
    return _best_saving(p, alts, by_saving, reasons, params)


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
    by_saving: list[Alternative],
    reasons: list[str],
    params: Params,
) -> Recommendation:
    """The feasible alternative that saves the most, where it saves enough; else keep."""
    floor = max(params.min_saving_usd, params.min_saving_pct / 100.0 * p.current_monthly_cost)
    good = [a for a in by_saving if a.monthly_savings >= floor]
    if p.sensitive:
        reasons.append(f"{p.workload} is sensitive: cloud options are not considered.")
    if not good:
        reasons += _keep_words(p, alts, by_saving, floor, params)
        return Recommendation(p, "keep", None, alts, reasons)
    best = good[0]
    reasons.append(f"Alternative: {best.arithmetic}.")
    reasons.append(f"Fits: {best.note}.")
    if p.placement == "cloud" and p.current_monthly_cost > 0:
        share = best.monthly_savings / p.current_monthly_cost
        reasons.append(f"It {best.savings_words} ({pct(share)} of today's bill).")
    else:
        reasons.append(f"It {best.savings_words}.")
    return Recommendation(p, best.action, best, alts, reasons)


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
