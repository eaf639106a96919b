"""Cloud instances as alternatives: every instance type of the catalog, of every cloud, sized to
the GPUs the workload needs (advisor/recommend/sizing.py) and priced on each basis the catalog
has: on-demand, spot, 1- and 3-year reserved.

- On-demand and spot are paid for the hours the workload holds its GPUs; a reservation is paid
  for every hour of its term (730 h a month), used or not.
- Spot is proposed only for work that may be interrupted ([workloads] interruptible, or measured
  short independent jobs); otherwise it is listed for comparison.
- A reservation is proposed only to a workload observed at least [advisor] commit_min_days and
  active in at least buy_min_duty_pct of hours, and never to one whose instance the bill already
  shows under a commitment.
- A multi-GPU job stays on one instance (8-GPU types may be repeated); independent work may
  spread over several smaller instances.
- Of each GPU class, cloud and basis only the cheapest size that holds the workload is listed,
  and no instance of which it would use under a quarter of the GPUs (no 8 × H100 instance for a
  one-GPU workload); where no size of a class holds it, its cheapest is listed with the reason.
- Machines of a cloud outside `params.clouds` ([advisor] clouds) are priced and listed but never
  proposed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from advisor.costs import pct, rate, usd
from advisor.recommend.capacity import LocalCapacity
from advisor.recommend.load import IDLE_GPUS, INDEPENDENT, SINGLE
from advisor.recommend.option import Alternative
from advisor.recommend.params import Params
from advisor.recommend.profiles import Profile
from advisor.recommend.sizing import Sizing, size_for
from tables.clouds import label
from tables.units import HOURS_PER_MONTH

# A multi-GPU job is only spread over several instances of a full-size (8-GPU) type.
FULL_NODE_GPUS = 8
# An instance of which the workload would use under this share of the GPUs is not listed (an
# 8 × H100 instance for a one-GPU workload).
MIN_USED_SHARE = 0.25
# Spot capacity can be taken back at two minutes' notice.
SPOT_NOTE = (
    "spot: can be interrupted at two minutes' notice, proposed only for work that may be "
    "([workloads] interruptible, or short independent jobs); shown for comparison"
)


@dataclass(frozen=True)
class Basis:
    """A way to pay for an instance: its kind of alternative, catalog column and words."""

    kind: str
    column: str
    words: str
    term: bool  # paid every hour of a term (a reservation), whether it runs or not


BASES = (
    Basis("cloud", "on_demand_usd_per_hour", "on-demand", False),
    Basis("cloud_spot", "spot_usd_per_hour", "spot", False),
    Basis("cloud_reserved_1y", "reserved_1y_usd_per_hour", "1-year reserved", True),
    Basis("cloud_reserved_3y", "reserved_3y_usd_per_hour", "3-year reserved", True),
)


def cloud_alternatives(
    p: Profile, capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Alternative]:
    """Each instance type of the catalog on each basis it is priced on, the cheapest size per
    class, cloud and basis (never for a sensitive workload)."""
    if p.sensitive:
        return []
    options = []
    rows = catalog.filter(
        (pl.col("kind") == "instance") & pl.col("on_demand_usd_per_hour").is_not_null()
    ).sort("name")
    for r in rows.iter_rows(named=True):
        size = size_for(p, r["gpu_memory_gib"], r["relative_throughput"], params)
        k = _instances(p, size.gpus, int(r["gpu_count"]))
        if k is None or size.gpus < MIN_USED_SHARE * k * int(r["gpu_count"]):
            continue  # a job split over small instances, or most of the instance idle
        for basis in BASES:
            price = r.get(basis.column)
            if price is not None:
                options.append(_instance_option(p, r, k, basis, price, size, params))
    return [a for a in _cheapest_sizes(options) if not _runs_there_now(p, a)]


def _instances(p: Profile, gpus: int, per_instance: int) -> int | None:
    """Instances of a type with `per_instance` GPUs that hold `gpus` (None: a multi-GPU job
    would be split over small instances)."""
    k = math.ceil(gpus / per_instance)
    spreads = p.load is not None and p.load.shape in (SINGLE, INDEPENDENT, IDLE_GPUS)
    if k > 1 and per_instance < FULL_NODE_GPUS and not spreads:
        return None
    return k


def _runs_there_now(p: Profile, a: Alternative) -> bool:
    """The same instances on the same basis as today."""
    if p.placement != "cloud" or a.instance_type != p.instance_type or a.kind != "cloud":
        return False
    per_instance = a.gpus // max(a.instances, 1)
    return a.instances == math.ceil(max(p.gpus, 1) / per_instance)


def _cheapest_sizes(options: list[Alternative]) -> list[Alternative]:
    """Per GPU class, cloud and basis: the cheapest feasible option, else the cheapest one."""
    best: dict[tuple, Alternative] = {}
    for a in options:
        key = (a.gpu_model, a.provider, a.kind)
        held = best.get(key)
        if held is None or (a.feasible, -a.monthly_cost) > (held.feasible, -held.monthly_cost):
            best[key] = a
    return [a for a in options if best[(a.gpu_model, a.provider, a.kind)] is a]


def _instance_option(
    p: Profile,
    r: dict[str, Any],
    k: int,
    basis: Basis,
    price: float,
    size: Sizing,
    params: Params,
) -> Alternative:
    """`k` instances of catalog row `r` at `price` an hour on `basis`."""
    g = int(r["gpu_count"])
    hours = HOURS_PER_MONTH if basis.term else p.held_hours_month
    cost = k * price * hours
    ok, note = _basis_fits(p, basis, size, params)
    cloud = r.get("provider")
    allowed = not params.clouds or cloud in params.clouds  # none settled: every cloud
    if not allowed:
        note = (
            f"on {label(cloud)}, not one of [advisor] clouds "
            f"({', '.join(params.clouds)}): priced for comparison, never proposed ({note})"
        )
    paid = " (a reservation is paid every hour of its term)" if basis.term else ""
    return Alternative(
        option=f"{k} × {r['name']} ({g} × {r['gpu_model']}), {basis.words}",
        kind=basis.kind,
        placement="cloud",
        gpu_model=r["gpu_model"],
        gpus=k * g,
        monthly_cost=cost,
        feasible=ok and allowed,
        note=note,
        arithmetic=(
            f"{k} × {r['name']} on {label(cloud)} at {rate(price)}/h {basis.words} × "
            f"{hours:,.0f} h a month{paid} = {usd(cost)}"
        ),
        instance_type=r["name"],
        rel_throughput=r["relative_throughput"],
        memory_gib=r["gpu_memory_gib"],
        provider=cloud,
        hourly_usd=None if basis.term else k * price,
        instances=k,
    )


def _basis_fits(p: Profile, basis: Basis, size: Sizing, params: Params) -> tuple[bool, str]:
    """Whether the workload may be run on `basis` (beyond fitting the GPUs), and why."""
    if basis.kind == "cloud_spot":
        load = p.load
        if load is None or not load.interruptible:
            return False, f"{SPOT_NOTE} ({size.note})"
        words = f"spot: may be interrupted, acceptable here ({load.interruptible_words})"
        return size.feasible, f"{words}; {size.note}"
    if basis.term:
        ok, why = commitment_fits(p, params)
        if not ok:
            return False, f"{why} ({size.note})"
        return size.feasible, f"{why}; {size.note}"
    return size.feasible, size.note


def commitment_fits(p: Profile, params: Params) -> tuple[bool, str]:
    """Whether a 1- or 3-year commitment may be proposed to `p`, in words."""
    if p.commitment:
        return False, f"already committed ({p.commitment}): not bought again"
    if not p.described and p.days_observed < params.commit_min_days:
        return False, (
            f"a commitment for a year or more needs at least {params.commit_min_days} days "
            f"observed ({p.days_observed:g} here)"
        )
    if p.duty_cycle * 100.0 < params.buy_min_duty_pct:
        return False, (
            f"active in {pct(p.duty_cycle)} of hours, under the {params.buy_min_duty_pct:g} % a "
            "commitment paid every hour needs"
        )
    return True, f"steady: active in {pct(p.duty_cycle)} of hours"
