"""Pricing the alternatives: every option a profiled workload could run on instead, sized to the
GPUs it needs (advisor/recommend/sizing.py: consolidation where its GPUs work independently),
with its monthly cost, whether it fits (and why not), the arithmetic in words, the savings
against today and the action it would mean.

- cloud instances of the catalog on each basis it prices (on-demand, spot, 1- and 3-year
  reserved): advisor/recommend/cloud.py;
- buying local GPUs (for cloud workloads): amortized purchase, with [advisor] buy_overhead_pct
  for the server, network and rack around them, + operations + energy at the workload's
  measured power, with the months until the purchase pays for itself;
- local spare capacity (GPU time that was `__idle__`, hour of the week by hour of the week) at
  its marginal cost, the energy: the purchase is already paid;
- hybrid: local GPUs for the base load of the hourly demand curve, the cloud for its peaks:
  advisor/recommend/hybrid.py.

Savings are the workload's own cash (`monthly_savings`); what the GPUs a local workload hands
over are worth to a saturated neighbour is apart (`freed_usd`). Each kind of option is one
builder in `OPTION_BUILDERS`.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from advisor.costs import gpu_classes, pct, rate, usd
from advisor.recommend.capacity import LocalCapacity
from advisor.recommend.cloud import FULL_NODE_GPUS, SPOT_NOTE, cloud_alternatives
from advisor.recommend.fit import smaller
from advisor.recommend.hybrid import hybrid_alternatives
from advisor.recommend.option import Alternative, OptionBuilder
from advisor.recommend.params import Params
from advisor.recommend.profiles import Profile
from advisor.recommend.purchase import ASSUMED_WATTS, Purchase, break_even_months
from advisor.recommend.schedule import schedule_alternatives
from advisor.recommend.sizing import size_for
from tables.units import HOURS_PER_MONTH

__all__ = [
    "ASSUMED_WATTS",
    "FULL_NODE_GPUS",
    "OPTION_BUILDERS",
    "SPARE_TOLERANCE_GPUS",
    "SPOT_NOTE",
    "Alternative",
    "OptionBuilder",
    "alternatives",
    "buy_alternatives",
    "cloud_alternatives",
    "hybrid_alternatives",
    "price_alternatives",
    "schedule_alternatives",
    "spare_alternatives",
]

# Spare local GPUs may fall short of a workload's demand in an hour of the week by this much.
SPARE_TOLERANCE_GPUS = 0.1


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


# Buying local GPUs -------------------------------------------------------------------------------
def buy_alternatives(
    p: Profile, capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Alternative]:
    """Buying the GPUs the workload needs of each class for sale (a workload in the cloud)."""
    if p.placement != "cloud":
        return []
    out = []
    for r in gpu_classes(catalog).sort("gpu_model").iter_rows(named=True):
        if r["purchase_usd_per_gpu"] is None or r["for_sale"] is False:
            continue  # not for sale: its price only values the cards a team already owns
        out.append(_buy_option(p, r, params))
    return out


def _buy_option(p: Profile, r: dict[str, Any], params: Params) -> Alternative:
    """Buying the GPUs of class row `r` that `p` needs: capital + operations + energy a month."""
    size = size_for(p, r["gpu_memory_gib"], r["relative_throughput"], params)
    watts = p.avg_power_w if p.avg_power_w is not None else ASSUMED_WATTS
    buy = Purchase(
        size.gpus,
        r["gpu_model"],
        r["purchase_usd_per_gpu"],
        watts,
        p.held_hours_month,
        params,
        assumed_watts=p.avg_power_w is None,
    )
    ok, note = size.feasible, size.note
    steady = p.duty_cycle * 100.0 >= params.buy_min_duty_pct
    if ok and not steady and not p.sensitive:
        ok = False
        note = (
            f"active in {pct(p.duty_cycle)} of hours, under the "
            f"{params.buy_min_duty_pct:g} % that justifies buying hardware"
        )
    alt = Alternative(
        option=f"buy {buy.gpus} × {r['gpu_model']} ({usd(buy.upfront, cents=False)})",
        kind="buy",
        placement="local",
        gpu_model=r["gpu_model"],
        gpus=buy.gpus,
        monthly_cost=buy.monthly,
        feasible=ok,
        note=note,
        arithmetic=buy.words(),
        rel_throughput=r["relative_throughput"],
        memory_gib=r["gpu_memory_gib"],
        upfront=buy.upfront,
    )
    _break_even(p, alt, buy.ops, buy.energy)
    return alt


def _break_even(p: Profile, alt: Alternative, ops: float, energy: float) -> None:
    """The months until a purchase pays for itself out of the bill it ends, in words."""
    upfront = alt.upfront or 0.0
    alt.break_even_months = break_even_months(upfront, p.marginal_monthly_cost - ops - energy)
    if alt.break_even_months is not None:
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
    """The spare GPUs of capacity row `r` (one host's class) `p` needs, priced at their energy."""
    host, klass = r["host"], r["gpu_class"]
    host_gpus = max(int(r["gpus"] or 0), params.configured_gpus(host))
    size = size_for(p, mem, rel, params)
    n, ok, note = size.gpus, size.feasible, size.note
    if ok:
        ok, when = _spare_fits(p, n, spare, host_gpus)
        note = note if ok else when
    watts, basis = _spare_watts(r)
    cost = n * params.energy_usd(watts, p.held_hours_month)
    return Alternative(
        option=f"{n} spare {klass} on {host}",
        kind="spare",
        placement="local",
        gpu_model=klass,
        gpus=n,
        monthly_cost=cost,
        feasible=ok,
        note=note,
        arithmetic=(
            f"{n} of the {host_gpus} {klass} on {host} (idle "
            f"{pct(r['spare_share'])} of their time; their purchase is already paid, so "
            f"only energy is added, at the {watts:,.0f} W a GPU there draws {basis}): "
            f"{params.energy_words(n, watts, p.held_hours_month)} a month"
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


def _spare_fits(p: Profile, n: int, spare: dict[int, float], host_gpus: int) -> tuple[bool, str]:
    """Whether the host's idle GPUs cover `n` GPUs of the workload's demand in every hour of the
    week it runs (its GPUs held then, scaled to `n`; a what-if without a weekly shape: in enough
    hours of the week)."""
    if n > host_gpus:
        return False, f"needs {n} GPUs at once, the host has {host_gpus}"
    if p.described or not p.demand:
        hours = sum(1 for h in range(168) if spare.get(h, 0.0) >= n - SPARE_TOLERANCE_GPUS)
        need = p.held_hours_month / HOURS_PER_MONTH * 168
        if hours + 1e-9 < need:
            return False, f"spare {hours} h a week, it needs {need:.0f} h"
        return True, f"spare {hours} h a week ≥ {need:.0f} h needed"
    scale = n / max(p.gpus, 1)
    demand = {h: g * scale for h, g in p.demand.items()}
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
    """The workload's own cash each alternative saves, the capacity it frees for others, and
    the action it would mean."""
    credit, credit_words = _freed_credit(p)
    for a in alts:
        a.action = _action(p, a)
        if p.placement == "cloud":
            a.monthly_savings = p.current_monthly_cost - a.monthly_cost
            a.savings_words = (
                f"saves {usd(p.current_monthly_cost)} − {usd(a.monthly_cost)} = "
                f"{usd(a.monthly_savings)} a month"
            )
            continue
        a.monthly_savings = p.marginal_monthly_cost - a.monthly_cost
        own = (
            f"saves {usd(p.marginal_monthly_cost)} of energy it no longer uses − "
            f"{usd(a.monthly_cost)} = {usd(a.monthly_savings)} a month of its own cash"
        )
        if a.monthly_savings < 0:
            own = (
                f"raises its own spend by {usd(-a.monthly_savings)} a month "
                f"({usd(a.monthly_cost)} − the {usd(p.marginal_monthly_cost)} of energy it no "
                "longer uses)"
            )
        a.freed_usd = credit
        if credit:
            own += (
                f"; apart from that, {credit_words}: the team saves "
                f"{usd(a.monthly_savings)} + {usd(credit)} = {usd(a.team_savings)} a month"
            )
        a.savings_words = own


def _action(p: Profile, a: Alternative) -> str:
    """What moving to `a` is called: `hybrid` and `schedule` by their kind; from the cloud,
    `move_to_local` (spare), `buy_local`, `keep` (the same instances, paid a cheaper way) or
    `downsize` (other instances); from local GPUs, `downsize` (a smaller local class) or
    `move_to_cloud`."""
    if a.kind in ("hybrid", "schedule"):
        return a.kind
    if p.placement != "cloud":
        return "downsize" if a.placement == "local" else "move_to_cloud"
    if a.kind in ("spare", "buy"):
        return {"spare": "move_to_local", "buy": "buy_local"}[a.kind]
    if a.instance_type == p.instance_type and a.instances:
        per_instance = a.gpus // a.instances
        if a.instances == math.ceil(max(p.gpus, 1) / per_instance):
            return "keep"
    return "downsize"


def _freed_credit(p: Profile) -> tuple[float, str]:
    """What a local workload's GPUs are worth a month to the saturated workload that would
    otherwise rent them (0 where none is), and the arithmetic."""
    if p.placement != "local" or p.freed is None:
        return 0.0, ""
    credit = p.gpus * p.held_hours_month * p.freed.usd_per_gpu_hour
    return credit, (
        f"the {p.gpu_model} it frees is worth {usd(credit)} a month to {p.freed.workload} "
        f"({p.gpus} × {p.held_hours_month:,.0f} h × {rate(p.freed.usd_per_gpu_hour)}/GPU-h, "
        f"the {p.freed.instance_type} price per GPU: {p.freed.workload}, busy "
        f"{pct(p.freed.busy_fraction)} on a host {_idle_words(p.freed.spare_share)}, "
        "would otherwise rent it)"
    )


# The kinds of option, in the order they are listed (ties in savings and cost keep this order).
OPTION_BUILDERS: tuple[OptionBuilder, ...] = (
    cloud_alternatives,
    buy_alternatives,
    spare_alternatives,
    hybrid_alternatives,
    schedule_alternatives,
)
