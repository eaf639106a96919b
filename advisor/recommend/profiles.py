"""Measuring: each workload's profile over the window (GPU-hours, busy fraction, duty cycle, peak
memory, placement, monthly cost, when in the week it runs, its load: advisor/recommend/load.py)
and how sure the figures are (advisor/recommend/confidence.py).

Figures over the window's hours are scaled to a month of 730 h. A local workload on a full GPU
class whose other user is saturated is marked as contending (`Profile.freed`): the GPU-hours it
would hand over are worth the cloud price of the class. A cloud workload whose instance the bill
shows covered by a commitment (FOCUS CommitmentDiscountId) carries it (`Profile.commitment`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple, cast

import polars as pl

from advisor.costs import cloud_price_per_gpu, gpu_classes, pct
from advisor.recommend.capacity import LocalCapacity, local_capacity
from advisor.recommend.confidence import confidence_level, unmeasured_level, variability
from advisor.recommend.load import Load, measure_load
from advisor.recommend.params import Params
from advisor.recommend.usage import Window, hour_of_week, with_activity, with_class
from tables.units import HOURS_PER_MONTH, IDLE, MIB_PER_GIB, UNTAGGED

# A recommendation for a workload whose memory was never measured is this much less certain.
MEMORY_UNKNOWN_CONFIDENCE = 0.5


@dataclass
class Freed:
    """What a local GPU-hour this workload holds is worth to another, saturated workload."""

    usd_per_gpu_hour: float
    instance_type: str
    workload: str
    busy_fraction: float
    spare_share: float


@dataclass
class Profile:
    """A workload as measured (or described, for a what-if)."""

    workload: str
    placement: str  # cloud | local
    sensitive: bool
    gpu_model: str | None
    gpus: int
    rel_throughput: float | None
    held_hours_month: float  # wall-clock hours a month it holds its GPUs
    gpu_hours_month: float
    busy_fraction: float | None  # None: no activity signal in any hour (unknown, never 0)
    duty_cycle: float
    peak_memory_gib: float | None  # None: no memory reading from its GPUs (unknown, not 0)
    avg_power_w: float | None
    current_monthly_cost: float
    marginal_monthly_cost: float  # what leaving stops paying (local: energy; cloud: the bill)
    window_cost: float = 0.0
    span_hours: float = 0.0
    days_observed: float = 0.0
    confidence: float = 0.0
    hosts: tuple[str, ...] = ()
    instance_type: str | None = None
    demand: dict[int, float] | None = None  # hour of week -> GPUs held
    freed: Freed | None = None
    described: bool = False  # a what-if, not a measurement
    memory_gib: float | None = None  # memory of one GPU of its current class
    notes: list[str] = field(default_factory=list)
    load: Load | None = None  # measured demand (None: a what-if, or no telemetry)
    commitment: str | None = None  # the commitment covering its instance, in words
    saturated: str | None = None  # local, busy on a full class: where and how, in words
    confidence_level: str = ""  # high | medium | low (advisor/recommend/confidence.py)
    confidence_reasons: list[str] = field(default_factory=list)


def _confidence(daily: list[float], days: int, window_days: int) -> float:
    """Grows with the days observed (up to the window) and falls with the variability of the
    workload's GPU-hours: weekly totals where two whole weeks exist, else daily ones."""
    if days <= 0:
        return 0.0
    cv = variability(daily)
    return round(min(1.0, days / window_days) * (1.0 - 0.5 * min(1.0, cv)), 2)


def measured_profiles(
    usage: pl.DataFrame,
    ledger: pl.DataFrame,
    instances: pl.DataFrame,
    catalog: pl.DataFrame,
    params: Params,
    sensitive: set[str] | frozenset[str],
    window: Window,
    evidence: pl.DataFrame | None = None,
) -> tuple[list[Profile], LocalCapacity]:
    """A Profile per workload (not `__idle__`, not `untagged`) and the local capacity.

    `usage`: hourly attribution through `held_usage` (hour, placement, host, gpu_uuid, gpu_model,
    workload, idle, seconds, busy_seconds, energy_j, mem_peak_mib, mem_total_mib); `ledger`: the
    daily ledger; `instances`: host, instance_type (and, where the bill says, `commitment`) from
    the bill; `evidence`: results_workload_evidence rows (activity signal, process shape).
    """
    classes = gpu_classes(catalog)
    u = with_activity(usage).filter(
        (pl.col("hour") >= window.start) & (pl.col("hour") < window.end)
    )
    led = ledger.filter((pl.col("day") >= window.first_day) & (pl.col("day") < window.end_day))
    capacity = local_capacity(u, classes, window)
    if window.days == 0:
        return [], capacity
    measures = _window_measures(u, led, instances, classes, window, evidence)
    profiles = [
        _profile(name, measures, params, name in sensitive) for name in measures.workloads()
    ]
    _mark_contention(profiles, capacity, catalog, params)
    return profiles, capacity


# The window's figures, grouped once for every workload -------------------------------------------
@dataclass
class _Measures:
    window: Window
    held: pl.DataFrame  # usage rows of named workloads, with gpu_class
    money: pl.DataFrame  # workload, placement, cost, energy_kwh (the ledger over the window)
    hourly: pl.DataFrame  # workload, hour, held, busy, known (hours)
    daily_hours: pl.DataFrame  # workload, day, h
    demand: pl.DataFrame  # workload, how (hour of week), gpus (GPU-hours over the window)
    rel: dict[str | None, float | None]  # class -> relative throughput
    mem_of: dict[str | None, float | None]  # class -> memory of one GPU (GiB)
    instance_of: dict[str, str]  # host -> instance type
    commitment_of: dict[str, str]  # host -> the commitment covering it, in words
    evidence: dict[str, dict]  # workload -> its results_workload_evidence row

    @property
    def to_month(self) -> float:
        """Window figures times this are monthly (730 h)."""
        return HOURS_PER_MONTH / self.window.hours

    def workloads(self) -> list[str]:
        return sorted(set(self.held["workload"].unique()) | set(self.money["workload"].unique()))

    def money_by_placement(self, name: str) -> dict[str, tuple[float, float]]:
        """placement -> (cost over the window, energy kWh) of `name`."""
        m = self.money.filter(pl.col("workload") == name)
        return {p: (c, e) for _, p, c, e in m.iter_rows()}

    def daily_series(self, name: str) -> list[float]:
        """GPU-hours of `name` on each day of the window (0 where it held none)."""
        d = self.daily_hours.filter(pl.col("workload") == name)
        per_day = dict(d.select("day", "h").iter_rows())
        days = [self.window.first_day + timedelta(days=i) for i in range(self.window.days)]
        return [float(per_day.get(day, 0.0)) for day in days]

    def demand_of(self, name: str) -> dict[int, float]:
        """Hour of the week -> GPUs `name` holds then, on average over the window."""
        counts = self.window.hour_of_week_counts()
        return {
            how: g / max(counts.get(how, 1), 1)
            for _, how, g in self.demand.filter(pl.col("workload") == name).iter_rows()
        }

    def instance_type(self, hosts: tuple[str, ...]) -> str | None:
        """The instance type most of `hosts` are (None where none is billed as one)."""
        itypes = [self.instance_of[h] for h in hosts if h in self.instance_of]
        return max(set(itypes), key=itypes.count) if itypes else None

    def commitment(self, hosts: tuple[str, ...]) -> str | None:
        """The commitment covering any of `hosts`, in words (None where none does)."""
        found = sorted({self.commitment_of[h] for h in hosts if h in self.commitment_of})
        return "; ".join(found) if found else None


def _window_measures(
    u: pl.DataFrame,
    led: pl.DataFrame,
    instances: pl.DataFrame,
    classes: pl.DataFrame,
    window: Window,
    evidence: pl.DataFrame | None = None,
) -> _Measures:
    u = with_class(u, classes) if u.height else u.with_columns(gpu_class=pl.lit(None, pl.String))
    held = u.filter(~pl.col("workload").is_in([IDLE, UNTAGGED]))
    return _Measures(
        window=window,
        held=held,
        money=(
            led.filter(~pl.col("workload").is_in([IDLE, UNTAGGED]))
            .group_by("workload", "placement")
            .agg(cost=pl.col("cost_usd").sum(), energy_kwh=pl.col("energy_kwh").fill_null(0).sum())
        ),
        hourly=held.group_by("workload", "hour").agg(
            held=pl.col("seconds").sum() / 3600.0,
            busy=pl.col("busy_seconds").sum() / 3600.0,
            known=pl.col("activity_seconds").sum() / 3600.0,
        ),
        daily_hours=(
            held.group_by("workload", day=pl.col("hour").dt.date())
            .agg(h=pl.col("seconds").sum() / 3600.0)
            .sort("day")
        ),
        demand=(
            held.with_columns(how=hour_of_week())
            .group_by("workload", "how")
            .agg(gpus=pl.col("seconds").sum() / 3600.0)
        ),
        rel=dict(classes.select("gpu_model", "relative_throughput").iter_rows()),
        mem_of=dict(classes.select("gpu_model", "gpu_memory_gib").iter_rows()),
        instance_of=dict(instances.select("host", "instance_type").iter_rows()),
        commitment_of=_commitments(instances),
        evidence=(
            {r["workload"]: r for r in evidence.iter_rows(named=True)}
            if evidence is not None and evidence.height
            else {}
        ),
    )


def _commitments(instances: pl.DataFrame) -> dict[str, str]:
    """host -> the commitment its bill lines name (FOCUS CommitmentDiscountType and Id)."""
    if "commitment_id" not in instances.columns:
        return {}
    rows = instances.filter(pl.col("commitment_id").is_not_null())
    kind = rows["commitment_type"] if "commitment_type" in rows.columns else None
    out = {}
    for i, (host, cid) in enumerate(rows.select("host", "commitment_id").iter_rows()):
        label = (kind[i] if kind is not None else None) or "commitment"
        out[host] = f"{label} {cid}"
    return out


# One workload ------------------------------------------------------------------------------------
class _Money(NamedTuple):
    window: float  # cost over the window where it runs
    monthly: float  # that scaled to a month
    marginal: float  # what leaving stops paying a month (local: energy; cloud: the bill)


def _profile(name: str, m: _Measures, params: Params, sensitive: bool) -> Profile:
    """`name` where it holds most of its GPU time (else where most of its money goes)."""
    rows = m.held.filter(pl.col("workload") == name)
    by_place = m.money_by_placement(name)
    placement = _placement(rows, by_place)
    rows = rows.filter(pl.col("placement") == placement)
    cost_window, energy_kwh = by_place.get(placement, (0.0, 0.0))
    seconds = float(rows["seconds"].sum()) if rows.height else 0.0
    if seconds <= 0:
        return _unmeasured_profile(name, placement, sensitive, cost_window, m)
    energy_usd = energy_kwh * params.pue * params.price_per_kwh
    current = cost_window * m.to_month
    marginal = current if placement == "cloud" else energy_usd * m.to_month
    money = _Money(cost_window, current, marginal)
    return _measured_profile(name, placement, sensitive, rows, seconds, money, m, params)


def _placement(rows: pl.DataFrame, by_place: dict[str, tuple[float, float]]) -> str:
    if rows.height:
        place_s = rows.group_by("placement").agg(s=pl.col("seconds").sum())
        return place_s.sort("s", descending=True)["placement"][0]
    return max(by_place, key=lambda p: by_place[p][0]) if by_place else "cloud"


def _unmeasured_profile(
    name: str, placement: str, sensitive: bool, cost_window: float, m: _Measures
) -> Profile:
    """A workload billed but without GPU telemetry: its cost, nothing to size it by."""
    return Profile(
        workload=name,
        placement=placement,
        sensitive=sensitive,
        gpu_model=None,
        gpus=0,
        rel_throughput=None,
        held_hours_month=0.0,
        gpu_hours_month=0.0,
        busy_fraction=None,
        duty_cycle=0.0,
        peak_memory_gib=None,
        avg_power_w=None,
        current_monthly_cost=cost_window * m.to_month,
        marginal_monthly_cost=cost_window * m.to_month,
        window_cost=cost_window,
        span_hours=m.window.hours,
        days_observed=float(m.window.days),
        notes=["no GPU telemetry from its resources: nothing to size it by"],
        confidence_level=unmeasured_level()[0],
        confidence_reasons=unmeasured_level()[1],
    )


def _measured_profile(
    name: str,
    placement: str,
    sensitive: bool,
    rows: pl.DataFrame,
    seconds: float,
    money: _Money,
    m: _Measures,
    params: Params,
) -> Profile:
    """`name` as its `rows` where it runs (`seconds` of them) and its `money` show it."""
    f, window = m.to_month, m.window
    gpu_class = _main_class(rows)
    wl_hourly = m.hourly.filter(pl.col("workload") == name)
    gpus = max(1, int(round(float(cast(float, wl_hourly["held"].max())))))
    busy_s = float(rows["busy_seconds"].sum())
    known_s = float(rows["activity_seconds"].sum())
    peak = cast(float | None, rows.filter(~pl.col("idle"))["mem_peak_mib"].max())
    peak_gib = None if peak is None else float(peak) / MIB_PER_GIB
    certainty = 1.0 if peak_gib is not None else MEMORY_UNKNOWN_CONFIDENCE
    hosts = tuple(sorted(rows["host"].unique().to_list()))
    daily = m.daily_series(name)
    confidence = _confidence(daily, window.days, params.window_days)
    load = measure_load(
        rows, window, params, m.evidence.get(name), interruptible=name in params.interruptible
    )
    level, level_reasons = confidence_level(
        window.days, load.signal, peak_gib is not None, variability(daily), params
    )
    return Profile(
        workload=name,
        placement=placement,
        sensitive=sensitive,
        gpu_model=gpu_class,
        gpus=gpus,
        rel_throughput=m.rel.get(gpu_class),
        memory_gib=m.mem_of.get(gpu_class),
        held_hours_month=seconds / 3600.0 / gpus * f,
        gpu_hours_month=seconds / 3600.0 * f,
        busy_fraction=busy_s / known_s if known_s > 0 else None,
        duty_cycle=_active_hours(wl_hourly, params) / window.hours,
        peak_memory_gib=peak_gib,
        avg_power_w=float(rows["energy_j"].sum()) / seconds,
        current_monthly_cost=money.monthly,
        marginal_monthly_cost=money.marginal,
        window_cost=money.window,
        span_hours=window.hours,
        days_observed=float(window.days),
        confidence=round(confidence * certainty, 2),
        hosts=hosts,
        instance_type=m.instance_type(hosts),
        demand=m.demand_of(name),
        load=load,
        commitment=m.commitment(hosts) if placement == "cloud" else None,
        confidence_level=level,
        confidence_reasons=level_reasons,
    )


def _main_class(rows: pl.DataFrame) -> str | None:
    """The GPU class the workload spends most of its seconds on (ties: by name)."""
    model_s = (
        rows.group_by("gpu_class")
        .agg(s=pl.col("seconds").sum())
        .sort(["s", "gpu_class"], descending=[True, False])
    )
    return model_s["gpu_class"][0]


def _active_hours(wl_hourly: pl.DataFrame, params: Params) -> int:
    """Hours the workload was busy at least [advisor] active_hour_busy_pct of its held time.
    An hour without an activity signal counts as active: no evidence that it idled."""
    return wl_hourly.filter(
        (pl.col("known") <= 0)
        | (pl.col("busy") >= pl.col("known") * params.active_hour_busy_pct / 100.0)
    ).height


# Contention --------------------------------------------------------------------------------------
def _mark_contention(
    profiles: list[Profile], capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> None:
    """Local workloads on a full class whose other user is saturated get `freed`; saturated
    ones (busy at least saturated_busy_pct there) get `saturated`."""
    for p in profiles:
        if p.placement != "local" or p.gpu_model is None:
            continue
        p.saturated = _saturated(p, capacity, params)
        for host in p.hosts:
            freed = _freed_on(p, p.gpu_model, host, capacity, catalog, params)
            if freed is not None:
                p.freed = freed
                break


def _saturated(p: Profile, capacity: LocalCapacity, params: Params) -> str | None:
    """Where `p` is busy at least saturated_busy_pct on a class idle under contention_idle_pct."""
    if p.busy_fraction is None or p.busy_fraction * 100.0 < params.saturated_busy_pct:
        return None
    full = capacity.classes.filter(
        pl.col("host").is_in(list(p.hosts))
        & (pl.col("gpu_class") == p.gpu_model)
        & (pl.col("spare_share") < params.contention_idle_pct / 100.0)
    )
    if full.height == 0:
        return None
    host, share = full.row(0)[0], float(full["spare_share"][0])
    return (
        f"busy {pct(p.busy_fraction)} on {host}, whose {p.gpu_model} are idle only "
        f"{pct(share, 1)} of the time"
    )


def _freed_on(
    p: Profile,
    gpu_class: str,
    host: str,
    capacity: LocalCapacity,
    catalog: pl.DataFrame,
    params: Params,
) -> Freed | None:
    """What `p`'s GPUs (of `gpu_class`) on `host` are worth to a saturated other user of that
    class there, where the class is full (None where it is not, or nobody is saturated)."""
    cls = capacity.classes.filter((pl.col("host") == host) & (pl.col("gpu_class") == gpu_class))
    if cls.height == 0 or cls["spare_share"][0] >= params.contention_idle_pct / 100.0:
        return None
    others = capacity.busy.filter(
        (pl.col("host") == host)
        & (pl.col("gpu_class") == gpu_class)
        & (pl.col("workload") != p.workload)
        & (pl.col("busy_fraction") >= params.saturated_busy_pct / 100.0)
    ).sort("busy_fraction", descending=True)
    price = cloud_price_per_gpu(catalog, gpu_class, clouds=params.clouds)
    if not (others.height and price is not None):
        return None
    return Freed(
        usd_per_gpu_hour=price[0],
        instance_type=price[1],
        workload=others["workload"][0],
        busy_fraction=float(others["busy_fraction"][0]),
        spare_share=float(cls["spare_share"][0]),
    )
