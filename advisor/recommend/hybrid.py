"""Hybrid: local GPUs for the base load, the cloud for the peaks (DESIGN.md §2, Recommendation).

For a cloud workload whose work is independent (not one multi-GPU job, which cannot be split
between places; not idle GPUs, which consolidate instead), the hourly demand curve (GPUs with
its processes, each hour of the window) is split at a line of `b` GPUs: below it, `b` local GPUs
(bought, or spare ones on a host whose idle GPUs cover `b` in every hour of the week); above it,
the cheapest one-GPU cloud instance that holds it, on-demand, for the GPU-hours over the line.
Every `b` from 1 to one under the peak is priced and the cheapest kept:

    local(b) = purchase of b GPUs (capital with [advisor] buy_overhead_pct + operations every
               hour) + energy for Σ min(demand, b)   (spare: energy only)
    cloud(b) = price per GPU-hour × Σ max(0, demand − b)
    (sums over the window's hours, scaled to 730 h)

A bought base must be busy at least [advisor] buy_min_duty_pct of its hours, as any purchase.
The purchase's break-even: its price ÷ (today's bill − cloud(b) − operations − energy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from advisor.costs import gpu_classes, pct, rate, usd
from advisor.recommend.capacity import LocalCapacity
from advisor.recommend.fit import fit
from advisor.recommend.load import INDEPENDENT
from advisor.recommend.option import Alternative
from advisor.recommend.params import Params
from advisor.recommend.profiles import Profile
from advisor.recommend.purchase import ASSUMED_WATTS, Purchase, break_even_months
from tables.clouds import label
from tables.units import HOURS_PER_MONTH

# Spare GPUs may fall short of the base in an hour of the week by this much.
TOLERANCE_GPUS = 0.1


@dataclass(frozen=True)
class Burst:
    """The cloud layer: one-GPU instances of a type that holds one of its GPUs."""

    instance_type: str
    provider: str | None
    usd_per_gpu_hour: float


@dataclass(frozen=True)
class Split:
    """The demand curve split at `base` GPUs, each layer's GPU-hours a month."""

    base: int
    base_hours: float  # GPU-hours a month the local base carries
    peak_hours: float  # GPU-hours a month over the line, in the cloud

    def utilization(self) -> float:
        return self.base_hours / (self.base * HOURS_PER_MONTH) if self.base else 0.0


def hybrid_alternatives(
    p: Profile, capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Alternative]:
    """The cheapest base for each class for sale and each spare (host, class) that holds one of
    its GPUs (none where the workload cannot be split, or never needs two GPUs at once)."""
    curve = _curve(p)
    if curve is None:
        return []
    burst = _burst(p, catalog, params)
    if burst is None:
        return []
    out = []
    for r in gpu_classes(catalog).sort("gpu_model").iter_rows(named=True):
        if r["purchase_usd_per_gpu"] is None or r["for_sale"] is False:
            continue
        alt = _bought_base(p, curve, r, burst, params)
        if alt is not None:
            out.append(alt)
    for row in capacity.classes.sort("host", "gpu_class").iter_rows(named=True):
        alt = _spare_base(p, curve, row, capacity, catalog, burst, params)
        if alt is not None:
            out.append(alt)
    return out


def _curve(p: Profile) -> np.ndarray | None:
    """The demand curve, where a hybrid applies: a cloud workload, not sensitive, whose GPUs
    work independently (not one multi-GPU job, not idle ones: those consolidate), needing two
    GPUs at once at its peak."""
    load = p.load
    if p.placement != "cloud" or p.sensitive or load is None or load.shape != INDEPENDENT:
        return None
    curve = np.asarray(load.curve, dtype=float)
    if curve.size == 0 or math.ceil(float(curve.max()) - 0.01) < 2:
        return None
    return curve


def _burst(p: Profile, catalog: pl.DataFrame, params: Params) -> Burst | None:
    """The cheapest on-demand one-GPU instance of an allowed cloud that holds one of its GPUs."""
    rows = catalog.filter(
        (pl.col("kind") == "instance")
        & (pl.col("gpu_count") == 1)
        & pl.col("on_demand_usd_per_hour").is_not_null()
    ).sort("on_demand_usd_per_hour", "name")
    for r in rows.iter_rows(named=True):
        if params.clouds and r.get("provider") not in params.clouds:
            continue
        ok, _ = fit(p, r["gpu_memory_gib"], r["relative_throughput"], params)
        if ok:
            return Burst(r["name"], r.get("provider"), float(r["on_demand_usd_per_hour"]))
    return None


def _splits(curve: np.ndarray, most: int) -> list[Split]:
    """The curve split at every base from 1 to `most` GPUs, scaled to a month."""
    to_month = HOURS_PER_MONTH / curve.size
    return [
        Split(
            b,
            float(np.minimum(curve, b).sum()) * to_month,
            float(np.maximum(curve - b, 0.0).sum()) * to_month,
        )
        for b in range(1, most + 1)
    ]


def _bought_base(
    p: Profile, curve: np.ndarray, r: dict[str, Any], burst: Burst, params: Params
) -> Alternative | None:
    """Buying the cheapest base of class row `r` (busy enough to justify buying)."""
    ok, note = fit(p, r["gpu_memory_gib"], r["relative_throughput"], params)
    watts = p.avg_power_w if p.avg_power_w is not None else ASSUMED_WATTS
    peak = math.ceil(float(curve.max()) - 0.01)
    best: tuple[float, Split, Purchase] | None = None
    for split in _splits(curve, peak - 1):
        if split.utilization() * 100.0 < params.buy_min_duty_pct:
            continue
        hours = split.base_hours / split.base
        buy = Purchase(split.base, r["gpu_model"], r["purchase_usd_per_gpu"], watts, hours, params)
        total = buy.monthly + split.peak_hours * burst.usd_per_gpu_hour
        if best is None or total < best[0]:
            best = (total, split, buy)
    if best is None:
        return None
    total, split, buy = best
    cloud = split.peak_hours * burst.usd_per_gpu_hour
    local = f"buy {split.base} × {r['gpu_model']} for the base load"
    alt = _hybrid(p, r["gpu_model"], split, burst, total, ok, note, local, params)
    alt.upfront = buy.upfront
    alt.arithmetic = _layers_words(p, split, burst, buy.words(), cloud, total, peak)
    alt.break_even_months = break_even_months(
        buy.upfront, p.marginal_monthly_cost - cloud - buy.ops - buy.energy
    )
    if alt.break_even_months is not None:
        alt.arithmetic += (
            f"; the purchase pays for itself in {usd(buy.upfront, cents=False)} ÷ "
            f"({usd(p.marginal_monthly_cost)} − {usd(cloud)} − {usd(buy.ops)} − "
            f"{usd(buy.energy)}) = {alt.break_even_months:.1f} months"
        )
    return alt


def _spare_base(
    p: Profile,
    curve: np.ndarray,
    row: dict[str, Any],
    capacity: LocalCapacity,
    catalog: pl.DataFrame,
    burst: Burst,
    params: Params,
) -> Alternative | None:
    """As many spare GPUs of one host's class as are idle in every hour of the week, under the
    peak, for the base (their energy only: the purchase is paid)."""
    spare = capacity.spare.get((row["host"], row["gpu_class"]), {})
    info = gpu_classes(catalog).filter(pl.col("gpu_model") == row["gpu_class"])
    if not spare or info.height == 0 or len(spare) < 168:
        return None
    c = info.row(0, named=True)
    ok, note = fit(p, c["gpu_memory_gib"], c["relative_throughput"], params)
    peak = math.ceil(float(curve.max()) - 0.01)
    base = min(int(min(spare.values()) + TOLERANCE_GPUS), peak - 1)
    if base < 1:
        return None
    split = _splits(curve, base)[-1]
    watts = row.get("watts") or ASSUMED_WATTS
    energy = params.energy_usd(watts, split.base_hours)
    cloud = split.peak_hours * burst.usd_per_gpu_hour
    total = energy + cloud
    local = f"{base} spare {row['gpu_class']} on {row['host']} for the base load"
    alt = _hybrid(p, row["gpu_class"], split, burst, total, ok, note, local, params)
    alt.host = row["host"]
    local_words = (
        f"{base} spare {row['gpu_class']} on {row['host']} (idle in every hour of the week; "
        f"paid already, so energy only): {split.base_hours:,.0f} GPU-h × {watts:,.0f} W × "
        f"{params.pue:g} PUE × {rate(params.price_per_kwh)}/kWh = {usd(energy)}"
    )
    alt.arithmetic = _layers_words(p, split, burst, local_words, cloud, total, peak)
    return alt


def _hybrid(
    p: Profile,
    gpu_model: str,
    split: Split,
    burst: Burst,
    total: float,
    ok: bool,
    note: str,
    local: str,
    params: Params,
) -> Alternative:
    allowed = not params.clouds or burst.provider in params.clouds
    return Alternative(
        option=f"hybrid: {local}, {burst.instance_type} on-demand for the peaks",
        kind="hybrid",
        placement="local",
        gpu_model=gpu_model,
        gpus=split.base,
        monthly_cost=total,
        feasible=ok and allowed,
        note=f"{note}; the peaks on {label(burst.provider)} {burst.instance_type}",
        arithmetic="",
        instance_type=burst.instance_type,
        provider=burst.provider,
        base_gpus=float(split.base),
    )


def _layers_words(
    p: Profile,
    split: Split,
    burst: Burst,
    local_words: str,
    cloud: float,
    total: float,
    peak: int,
) -> str:
    """Both layers' GPU-hours and money, and why this base."""
    demand = split.base_hours + split.peak_hours
    return (
        f"of its {demand:,.0f} GPU-hours a month (peak {peak} GPUs at once), a base of "
        f"{split.base} GPUs carries {split.base_hours:,.0f} (busy {pct(split.utilization())} "
        f"of their hours): {local_words}; the {split.peak_hours:,.0f} GPU-hours over the line "
        f"run on {burst.instance_type} on {label(burst.provider)} at "
        f"{rate(burst.usd_per_gpu_hour)}/GPU-h = {usd(cloud)}; together {usd(total)} a month, "
        f"the least of every base from 1 to {peak - 1} GPUs"
    )
