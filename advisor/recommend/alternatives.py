"""Pricing the alternatives: every option a profiled workload could run on instead, with its
monthly cost, whether it fits (and why not), the arithmetic in words, the savings against today
and the action it would mean.

- cloud instances of the catalog, on-demand (and spot where the catalog has a price), billed for
  the hours the workload holds its GPUs; a multi-GPU workload stays on one instance;
- buying local GPUs (for cloud workloads): amortized purchase + operations + energy at the
  workload's measured power, with the months until the purchase pays for itself;
- local spare capacity (GPU time that was `__idle__`, hour of the week by hour of the week) at
  its marginal cost, the energy: the purchase is already paid.

Each kind of option is one builder in `OPTION_BUILDERS`; a new kind (consolidation, hybrid,
scheduled, committed prices) is one more builder there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from advisor.costs import gpu_classes, pct, rate, usd
from advisor.recommend.capacity import LocalCapacity
from advisor.recommend.fit import fit, smaller
from advisor.recommend.params import Params
from advisor.recommend.profiles import Profile
from tables.clouds import label
from tables.units import HOURS_PER_MONTH, HOURS_PER_YEAR

# A multi-GPU workload is only spread over several instances of a full-size (8-GPU) type.
FULL_NODE_GPUS = 8
# Watts assumed per GPU where nothing was measured (a what-if on a class the team never ran).
ASSUMED_WATTS = 300.0
# Spot capacity can be taken back at two minutes' notice: its price is shown beside the others,
# never chosen for a workload on its own (nothing here knows whether the job can be interrupted).
SPOT_NOTE = "spot: can be interrupted at two minutes' notice, shown for comparison, never proposed"
# Spare local GPUs may fall short of a workload's demand in an hour of the week by this much.
SPARE_TOLERANCE_GPUS = 0.1


@dataclass
class Alternative:
    option: str
    kind: str  # cloud | cloud_spot | buy | spare
    placement: str
    gpu_model: str
    gpus: int
    monthly_cost: float
    feasible: bool
    note: str
    arithmetic: str
    instance_type: str | None = None
    host: str | None = None
    rel_throughput: float | None = None
    memory_gib: float | None = None
    upfront: float | None = None
    monthly_savings: float = 0.0
    break_even_months: float | None = None
    savings_words: str = ""
    action: str = "keep"
    provider: str | None = None  # the cloud of a cloud option (tables/clouds.py)


# One kind of option: every alternative of that kind for a profile (none where it does not apply).
OptionBuilder = Callable[[Profile, LocalCapacity, pl.DataFrame, Params], list[Alternative]]


def alternatives(
    p: Profile, capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Alternative]:
    """Every alternative for `p` (feasible or not, with the reason), priced."""
    if p.gpus <= 0:
        return []
    alts: list[Alternative] = []
    for build in OPTION_BUILDERS:
        alts += build(p, capacity, catalog, params)
    price_alternatives(p, alts, params)
    return alts


# Cloud instances ---------------------------------------------------------------------------------
def cloud_alternatives(
    p: Profile, capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Alternative]:
    """Each instance type of the catalog, of every cloud, on-demand and spot (never for a
    sensitive workload). Machines of a cloud outside `params.clouds` are priced and listed but
    never proposed."""
    if p.sensitive:
        return []
    out = []
    rows = catalog.filter(
        (pl.col("kind") == "instance") & pl.col("on_demand_usd_per_hour").is_not_null()
    ).sort("name")
    for r in rows.iter_rows(named=True):
        g = int(r["gpu_count"])
        k = math.ceil(p.gpus / g)
        if k > 1 and g < FULL_NODE_GPUS:
            continue  # a multi-GPU job is not split over small instances
        if p.placement == "cloud" and r["name"] == p.instance_type:
            continue  # where it runs now
        ok, note = fit(p, r["gpu_memory_gib"], r["relative_throughput"], params)
        for kind, price in (
            ("cloud", r["on_demand_usd_per_hour"]),
            ("cloud_spot", r["spot_usd_per_hour"]),
        ):
            if price is not None:
                out.append(_instance_option(p, r, k, kind, price, ok, note, params))
    return out


def _instance_option(
    p: Profile,
    r: dict[str, Any],
    k: int,
    kind: str,
    price: float,
    ok: bool,
    note: str,
    params: Params,
) -> Alternative:
    """`k` instances of catalog row `r` at `price` an hour (`kind`: cloud or cloud_spot)."""
    g = int(r["gpu_count"])
    cost = k * price * p.held_hours_month
    basis = "on-demand" if kind == "cloud" else "spot"
    spot = kind == "cloud_spot"
    cloud = r.get("provider")
    allowed = not params.clouds or cloud in params.clouds  # none settled: every cloud
    if spot and ok:
        note = f"{SPOT_NOTE} ({note})"
    if not allowed:
        note = (
            f"on {label(cloud)}, not one of [advisor] clouds "
            f"({', '.join(params.clouds)}): priced for comparison, never proposed ({note})"
        )
    return Alternative(
        option=f"{k} × {r['name']} ({g} × {r['gpu_model']}), {basis}",
        kind=kind,
        placement="cloud",
        gpu_model=r["gpu_model"],
        gpus=k * g,
        monthly_cost=cost,
        feasible=ok and not spot and allowed,
        note=note,
        arithmetic=(
            f"{k} × {r['name']} on {label(cloud)} at {rate(price)}/h × "
            f"{p.held_hours_month:,.0f} h a month = {usd(cost)}"
        ),
        instance_type=r["name"],
        rel_throughput=r["relative_throughput"],
        memory_gib=r["gpu_memory_gib"],
        provider=cloud,
    )


# Buying local GPUs -------------------------------------------------------------------------------
def buy_alternatives(
    p: Profile, capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Alternative]:
    """Buying the workload's GPUs of each class for sale (only for a workload in the cloud)."""
    if p.placement != "cloud":
        return []
    out = []
    for r in gpu_classes(catalog).sort("gpu_model").iter_rows(named=True):
        if r["purchase_usd_per_gpu"] is None or r["for_sale"] is False:
            continue  # not for sale: its price only values the cards a team already owns
        out.append(_buy_option(p, r, params))
    return out


def _buy_option(p: Profile, r: dict[str, Any], params: Params) -> Alternative:
    """Buying `p.gpus` GPUs of class row `r`: capital + operations + energy a month."""
    watts = p.avg_power_w if p.avg_power_w is not None else ASSUMED_WATTS
    price = r["purchase_usd_per_gpu"]
    n = p.gpus
    upfront = n * price
    capital = upfront / (params.depreciation_years * HOURS_PER_YEAR) * HOURS_PER_MONTH
    ops = n * HOURS_PER_MONTH * params.ops_usd_per_gpu_hour
    energy = n * params.energy_usd(watts, p.held_hours_month)
    cost = capital + ops + energy
    ok, note = fit(p, r["gpu_memory_gib"], r["relative_throughput"], params)
    steady = p.duty_cycle * 100.0 >= params.buy_min_duty_pct
    if ok and not steady and not p.sensitive:
        ok = False
        note = (
            f"active in {pct(p.duty_cycle)} of hours, under the "
            f"{params.buy_min_duty_pct:g} % that justifies buying hardware"
        )
    alt = Alternative(
        option=f"buy {n} × {r['gpu_model']} ({usd(upfront, cents=False)})",
        kind="buy",
        placement="local",
        gpu_model=r["gpu_model"],
        gpus=n,
        monthly_cost=cost,
        feasible=ok,
        note=note,
        arithmetic=(
            f"buying {n} × {r['gpu_model']} ({usd(price, cents=False)} each = "
            f"{usd(upfront, cents=False)}): {usd(upfront, cents=False)} ÷ "
            f"({params.depreciation_years:g} years × 8,760 h) × 730 h = "
            f"{usd(capital)} capital + {n} × 730 h × {rate(params.ops_usd_per_gpu_hour)}/GPU-h = "
            f"{usd(ops)} operations + {params.energy_words(n, watts, p.held_hours_month)} energy"
            f"{' (assumed watts)' if p.avg_power_w is None else ''} = {usd(cost)} a month"
        ),
        rel_throughput=r["relative_throughput"],
        memory_gib=r["gpu_memory_gib"],
        upfront=upfront,
    )
    _break_even(p, alt, ops, energy)
    return alt


def _break_even(p: Profile, alt: Alternative, ops: float, energy: float) -> None:
    """The months until a purchase pays for itself out of the bill it ends, in words."""
    upfront = alt.upfront or 0.0
    cash = p.marginal_monthly_cost - ops - energy
    if cash > 0:
        alt.break_even_months = upfront / cash
        alt.arithmetic += (
            f"; the purchase pays for itself in {usd(upfront, cents=False)} ÷ "
            f"({usd(p.marginal_monthly_cost)} − {usd(ops)} − {usd(energy)}) = "
            f"{alt.break_even_months:.1f} months"
        )
    else:
        alt.arithmetic += "; it never pays for itself at these prices"


# Spare local GPUs --------------------------------------------------------------------------------
def spare_alternatives(
    p: Profile, capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Alternative]:
    """Spare local GPUs of each (host, class): the host's own GPU count (the most that reported
    in one hour, or its [[local.hosts]] gpu_count where that is more) bounds the GPUs the
    workload can have at once, and their energy is priced at the power those GPUs draw there."""
    out = []
    classes = gpu_classes(catalog)
    info = {r["gpu_model"]: r for r in classes.iter_rows(named=True)}
    for r in capacity.classes.sort("host", "gpu_class").iter_rows(named=True):
        host, klass = r["host"], r["gpu_class"]
        spare = capacity.spare.get((host, klass), {})
        if not spare:
            continue
        c = info.get(klass, {})
        mem, rel = c.get("gpu_memory_gib"), c.get("relative_throughput")
        if p.placement == "local" and not p.described:
            if host in p.hosts and klass == p.gpu_model:
                continue
            if not smaller(p, rel, mem, klass):
                continue  # moving between local GPUs only pays by freeing a bigger one
        if mem is None:
            continue
        out.append(_spare_option(p, r, spare, mem, rel, params))
    return out


def _spare_option(
    p: Profile,
    r: dict[str, Any],
    spare: dict[int, float],
    mem: float,
    rel: float | None,
    params: Params,
) -> Alternative:
    """`p.gpus` spare GPUs of capacity row `r` (one host's class), priced at their energy."""
    host, klass = r["host"], r["gpu_class"]
    host_gpus = max(int(r["gpus"] or 0), params.configured_gpus(host))
    ok, note = fit(p, mem, rel, params)
    if ok:
        ok, when = _spare_fits(p, spare, host_gpus)
        note = note if ok else when
    watts, basis = _spare_watts(r)
    cost = p.gpus * params.energy_usd(watts, p.held_hours_month)
    return Alternative(
        option=f"{p.gpus} spare {klass} on {host}",
        kind="spare",
        placement="local",
        gpu_model=klass,
        gpus=p.gpus,
        monthly_cost=cost,
        feasible=ok,
        note=note,
        arithmetic=(
            f"{p.gpus} of the {host_gpus} {klass} on {host} (idle "
            f"{pct(r['spare_share'])} of their time; their purchase is already paid, so "
            f"only energy is added, at the {watts:,.0f} W a GPU there draws {basis}): "
            f"{params.energy_words(p.gpus, watts, p.held_hours_month)} a month"
        ),
        host=host,
        rel_throughput=rel,
        memory_gib=mem,
    )


def _spare_watts(capacity_row: dict) -> tuple[float, str]:
    """The power per GPU of a spare (host, class), and on what basis it was measured."""
    watts = capacity_row.get("watts")
    if watts is None or not watts > 0:
        return ASSUMED_WATTS, "(assumed: no power measured there)"
    return watts, "while in use" if capacity_row.get("watts_held") else "on average"


def _spare_fits(p: Profile, spare: dict[int, float], host_gpus: int) -> tuple[bool, str]:
    """Whether the host's idle GPUs cover the workload's demand in every hour of the week it
    runs (a what-if without a weekly shape: in enough hours of the week)."""
    if p.gpus > host_gpus:
        return False, f"needs {p.gpus} GPUs at once, the host has {host_gpus}"
    if p.described or not p.demand:
        hours = sum(1 for h in range(168) if spare.get(h, 0.0) >= p.gpus - SPARE_TOLERANCE_GPUS)
        need = p.held_hours_month / HOURS_PER_MONTH * 168
        if hours + 1e-9 < need:
            return False, f"spare {hours} h a week, it needs {need:.0f} h"
        return True, f"spare {hours} h a week ≥ {need:.0f} h needed"
    demand = p.demand
    short = [h for h, g in demand.items() if spare.get(h, 0.0) + SPARE_TOLERANCE_GPUS < g]
    if short:
        h = min(short, key=lambda x: spare.get(x, 0.0) - demand[x])
        day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[h // 24]
        return False, (
            f"not spare when it runs: {day} {h % 24:02d}:00 UTC needs {demand[h]:.1f} GPUs, "
            f"{spare.get(h, 0.0):.1f} idle"
        )
    return True, "spare in every hour of the week it runs"


# Savings and actions -----------------------------------------------------------------------------
def _idle_words(share: float) -> str:
    return "never idle" if share < 0.0005 else f"idle only {pct(share, 1)} of the time"


def price_alternatives(p: Profile, alts: list[Alternative], params: Params) -> None:
    """Savings and the action each alternative would mean."""
    credit, credit_words = _freed_credit(p)
    for a in alts:
        if p.placement == "cloud":
            a.monthly_savings = p.current_monthly_cost - a.monthly_cost
            a.savings_words = (
                f"saves {usd(p.current_monthly_cost)} − {usd(a.monthly_cost)} = "
                f"{usd(a.monthly_savings)} a month"
            )
            a.action = {"spare": "move_to_local", "buy": "buy_local"}.get(a.kind, "downsize")
        else:
            a.monthly_savings = p.marginal_monthly_cost + credit - a.monthly_cost
            a.savings_words = (
                f"saves {usd(p.marginal_monthly_cost)} of energy it no longer uses{credit_words}"
                f" − {usd(a.monthly_cost)} = {usd(a.monthly_savings)} a month"
            )
            is_smaller = smaller(p, a.rel_throughput, a.memory_gib, a.gpu_model)
            a.action = "downsize" if is_smaller or a.placement == "local" else "move_to_cloud"


def _freed_credit(p: Profile) -> tuple[float, str]:
    """What a local workload's GPUs are worth a month to the saturated workload that would
    otherwise rent them (0 where none is), and the arithmetic."""
    if p.placement != "local" or p.freed is None:
        return 0.0, ""
    credit = p.gpus * p.held_hours_month * p.freed.usd_per_gpu_hour
    return credit, (
        f" + {usd(credit)} for the {p.gpu_model} it frees ({p.gpus} × "
        f"{p.held_hours_month:,.0f} h × {rate(p.freed.usd_per_gpu_hour)}/GPU-h, the "
        f"{p.freed.instance_type} price per GPU: {p.freed.workload}, busy "
        f"{pct(p.freed.busy_fraction)} on a host {_idle_words(p.freed.spare_share)}, "
        f"would otherwise rent it)"
    )


# The kinds of option, in the order they are listed (ties in savings and cost keep this order).
OPTION_BUILDERS: tuple[OptionBuilder, ...] = (
    cloud_alternatives,
    buy_alternatives,
    spare_alternatives,
)
