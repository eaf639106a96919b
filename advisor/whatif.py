"""What-if: the recommendation's comparison for a described workload (the seed's questionnaire,
answered with the catalog and the team's own local costs and spare capacity).

"1 × H100, 20 h a day, busy 70 %, 60 GiB, not sensitive" becomes a Profile as if measured: it
holds its GPUs 20 × 730 ÷ 24 = 608 h a month, is active in 20 ÷ 24 of hours (fewer where its
busy fraction is under [advisor] active_hour_busy_pct: a workload averaging 3 % busy cannot be
active in every hour it runs), draws the power the team measured on that class at that busy
fraction (else an assumed 300 W per GPU), and today runs on the
cheapest cloud instance of that class on a cloud that may be proposed (`current = "cloud"`;
[advisor] clouds, else the clouds the team's bills name, else all) or on GPUs the team owns
(`current = "local"`). The same alternatives and the same decision rules then apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from advisor.costs import gpu_classes, rate, usd
from advisor.recommend import (
    ASSUMED_WATTS,
    FULL_NODE_GPUS,
    LocalCapacity,
    Params,
    Profile,
    Recommendation,
    alternatives,
    decide,
    local_capacity,
    observed_window,
    with_class,
)
from advisor.recommend.params import with_clouds
from config.gpu_class import GpuClasses
from tables.clouds import label
from tables.units import HOURS_PER_MONTH, HOURS_PER_YEAR


class WhatIfError(ValueError):
    """A described workload that cannot be priced; the message says which input."""


@dataclass(frozen=True)
class Question:
    gpu: str
    count: int = 1
    hours_per_day: float = 24.0
    busy: float = 0.5
    memory_gib: float = 16.0
    sensitive: bool = False
    current: str = "cloud"  # cloud | local

    def check(self) -> None:
        if not 1 <= self.count <= 512:
            raise WhatIfError(f"--count must be between 1 and 512, got {self.count}")
        if not 0 < self.hours_per_day <= 24:
            raise WhatIfError(f"--hours-per-day must be in (0, 24], got {self.hours_per_day:g}")
        if not 0 <= self.busy <= 1:
            raise WhatIfError(f"--busy must be a fraction between 0 and 1, got {self.busy:g}")
        if not 0 < self.memory_gib <= 4096:
            raise WhatIfError(f"--memory-gib must be positive, got {self.memory_gib:g}")
        if self.current not in ("cloud", "local"):
            raise WhatIfError(f"--current must be cloud or local, got {self.current!r}")


def measured_watts(
    usage: pl.DataFrame, catalog: pl.DataFrame, busy: float | None = None
) -> dict[str, float]:
    """The team's power per GPU of each class while a workload held it: a straight line through
    its hourly (busy fraction, watts) readings, read at `busy`, where the readings spread over at
    least 20 points of busy; else their mean."""
    if usage.height == 0:
        return {}
    held = with_class(
        usage.filter(~pl.col("idle") & (pl.col("seconds") >= 1800)), gpu_classes(catalog)
    ).with_columns(
        x=pl.col("busy_seconds") / pl.col("seconds"), y=pl.col("energy_j") / pl.col("seconds")
    )
    out: dict[str, float] = {}
    for (klass,), rows in held.group_by("gpu_class"):
        x, y = rows["x"].to_numpy(), rows["y"].to_numpy()
        if klass is None or len(y) == 0 or not (y > 0).any():
            continue
        if busy is not None and len(x) >= 10 and x.max() - x.min() >= 0.2:
            slope, intercept = np.polyfit(x, y, 1)
            out[klass] = float(np.clip(intercept + slope * busy, y.min(), y.max() * 1.2))
        else:
            out[klass] = float(y.mean())
    return out


def team_capacity(usage: pl.DataFrame, catalog: pl.DataFrame, end: datetime, days: int):
    """Local spare capacity from the team's hourly usage (empty without data)."""
    if usage.height == 0:
        return LocalCapacity.empty()
    window = observed_window(usage, end, days)
    u = usage.filter((pl.col("hour") >= window.start) & (pl.col("hour") < window.end))
    return local_capacity(u, gpu_classes(catalog), window)


def _reference_instance(
    catalog: pl.DataFrame, klass: str, count: int, clouds: tuple[str, ...] = ()
) -> dict | None:
    """The cheapest instance(s) of `klass` for `count` GPUs, among those of `clouds` (all
    clouds where empty)."""
    rows = catalog.filter(
        (pl.col("kind") == "instance")
        & (pl.col("gpu_model") == klass)
        & pl.col("on_demand_usd_per_hour").is_not_null()
        & (pl.col("provider").is_in(list(clouds)) if clouds else pl.lit(True))
    ).to_dicts()
    options = []
    for r in rows:
        k = math.ceil(count / r["gpu_count"])
        if k > 1 and r["gpu_count"] < FULL_NODE_GPUS:
            continue
        options.append((k * r["on_demand_usd_per_hour"], r["name"], k, r))
    if not options:
        return None
    cost, _, k, r = min(options, key=lambda o: (o[0], o[1]))
    return {**r, "instances": k, "usd_per_hour": cost}


def described_profile(
    q: Question, catalog: pl.DataFrame, params: Params, watts: dict[str, float] | None = None
) -> Profile:
    q.check()
    classes = gpu_classes(catalog)
    klass = _described_class(q, classes)
    info = classes.filter(pl.col("gpu_model") == klass).row(0, named=True)
    held = q.hours_per_day * HOURS_PER_MONTH / 24.0
    power = (watts or {}).get(klass)
    energy = q.count * params.energy_usd(power if power is not None else ASSUMED_WATTS, held)
    if q.current == "cloud":
        cost = _cloud_cost(q, catalog, klass, held, params.clouds)
    else:
        cost = _owned_cost(q, info, klass, energy, params)
    return Profile(
        workload="what-if",
        placement=q.current,
        sensitive=q.sensitive,
        gpu_model=klass,
        gpus=q.count,
        rel_throughput=info["relative_throughput"],
        memory_gib=info["gpu_memory_gib"],
        held_hours_month=held,
        gpu_hours_month=held * q.count,
        busy_fraction=q.busy,
        duty_cycle=q.hours_per_day / 24.0 * min(1.0, q.busy * 100.0 / params.active_hour_busy_pct)
        if params.active_hour_busy_pct > 0
        else q.hours_per_day / 24.0,
        peak_memory_gib=q.memory_gib,
        avg_power_w=power,
        current_monthly_cost=cost.current,
        marginal_monthly_cost=cost.marginal,
        instance_type=cost.instance,
        described=True,
        confidence=1.0,
        notes=[cost.words],
    )


def _described_class(q: Question, classes: pl.DataFrame) -> str:
    """The catalog class `--gpu` names (an error where it names none, or several)."""
    resolver = GpuClasses(classes)
    klass = resolver.resolve(q.gpu)
    if klass is not None:
        return klass
    several = resolver.candidates(q.gpu)
    if len(several) > 1:
        raise WhatIfError(
            f"--gpu {q.gpu!r} names several GPU classes ({', '.join(several)}): say which"
        )
    known = ", ".join(classes["gpu_model"].to_list())
    raise WhatIfError(f"--gpu {q.gpu!r} is not a GPU class of the catalog ({known})")


@dataclass(frozen=True)
class _CurrentCost:
    """What the described workload costs a month where it runs today, and in words."""

    current: float
    marginal: float  # what leaving stops paying
    words: str
    instance: str | None = None


def _cloud_cost(
    q: Question, catalog: pl.DataFrame, klass: str, held: float, clouds: tuple[str, ...] = ()
) -> _CurrentCost:
    """On the cheapest cloud instance of its class (in `clouds`): the bill, all of which leaving
    saves."""
    ref = _reference_instance(catalog, klass, q.count, clouds)
    if ref is None:
        where = f" (clouds looked at: {', '.join(label(c) for c in clouds)})" if clouds else ""
        raise WhatIfError(
            f"the catalog has no cloud instance with {klass}: use --current local{where}"
        )
    instance = ref["name"]
    current = ref["usd_per_hour"] * held
    return _CurrentCost(
        current=current,
        marginal=current,
        words=(
            f"{ref['instances']} × {instance} on {label(ref['provider'])} at "
            f"{rate(ref['on_demand_usd_per_hour'])}/h × "
            f"{held:,.0f} h = {usd(current)}"
        ),
        instance=instance,
    )


def _owned_cost(
    q: Question, info: dict[str, Any], klass: str, energy: float, params: Params
) -> _CurrentCost:
    """On GPUs the team owns: amortized purchase + operations + energy; leaving saves energy."""
    price = info["purchase_usd_per_gpu"]
    if price is None:
        raise WhatIfError(f"the catalog has no purchase price for {klass}: use --current cloud")
    capital = q.count * price / (params.depreciation_years * HOURS_PER_YEAR) * HOURS_PER_MONTH
    ops = q.count * HOURS_PER_MONTH * params.ops_usd_per_gpu_hour
    current = capital + ops + energy
    return _CurrentCost(
        current=current,
        marginal=energy,
        words=(
            f"{usd(capital)} capital + {usd(ops)} operations + {usd(energy)} energy on owned "
            f"{klass} = {usd(current)}"
        ),
    )


def what_if(
    q: Question,
    catalog: pl.DataFrame,
    params: Params,
    *,
    capacity: LocalCapacity | None = None,
    watts: dict[str, float] | None = None,
    instance_types: list[str] | tuple[str, ...] = (),
) -> Recommendation:
    """The recommendation for a described workload, with every alternative priced.
    `instance_types`: those the team's bills name (the recommendations' current ones), which
    settle the clouds that may be proposed where [advisor] clouds is empty."""
    params = with_clouds(params, instance_types, catalog)
    profile = described_profile(q, catalog, params, watts)
    capacity = capacity or LocalCapacity.empty()
    rec = decide(profile, alternatives(profile, capacity, catalog, params), params)
    if profile.avg_power_w is None:
        rec.reasons.append(
            f"No {profile.gpu_model} measured here: energy assumes {ASSUMED_WATTS:.0f} W per GPU"
            " while it runs."
        )
    return rec
