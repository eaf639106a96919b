"""Recommendations: where each workload should run, with the arithmetic (DESIGN.md §2).

For every workload over a window of whole UTC days (default 30, scaled to a month of 730 h) the
measured profile (GPU-hours, busy fraction, duty cycle, peak memory, placement, current monthly
cost) is set beside every feasible alternative:

- cloud instances of the catalog, on-demand (and spot where the catalog has a price), billed for
  the hours the workload holds its GPUs; a multi-GPU workload stays on one instance;
- buying local GPUs (for cloud workloads): amortized purchase + operations + energy at the
  workload's measured power, with the months until the purchase pays for itself;
- local spare capacity (GPU time that was `__idle__`, hour of the week by hour of the week) at
  its marginal cost, the energy: the purchase is already paid.

Feasible: every GPU of the alternative has the observed peak memory plus headroom, and either
at least the current relative throughput or enough of it to keep the workload's average busy
time under a ceiling (a slower GPU runs the same work for longer). Savings are what the team
stops paying: for a cloud workload its bill; for a local workload only its energy (the hardware
is paid for whoever uses it), plus, where its GPU class is full and another workload there is
saturated, the cloud price of the GPU-hours it hands over. Sensitive workloads are never sent to
the cloud, and one in the cloud always moves to local GPUs, even when that costs more.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl

from advisor.attribution import IDLE
from advisor.costs import (
    HOURS_PER_MONTH,
    MIB_PER_GIB,
    cloud_price_per_gpu,
    gpu_classes,
    pct,
    rate,
    usd,
)
from advisor.ledger import HOURS_PER_YEAR, UNTAGGED
from config.gpu_class import GpuClasses
from config.settings import Config

ACTIONS = ("keep", "move_to_local", "buy_local", "move_to_cloud", "downsize")
# A multi-GPU workload is only spread over several instances of a full-size (8-GPU) type.
FULL_NODE_GPUS = 8
# Watts assumed per GPU where nothing was measured (a what-if on a class the team never ran).
ASSUMED_WATTS = 300.0
# Spot capacity can be taken back at two minutes' notice: its price is shown beside the others,
# never chosen for a workload on its own (nothing here knows whether the job can be interrupted).
SPOT_NOTE = "spot: can be interrupted at two minutes' notice, shown for comparison, never proposed"
# Spare local GPUs may fall short of a workload's demand in an hour of the week by this much.
SPARE_TOLERANCE_GPUS = 0.1
# A recommendation for a workload whose memory was never measured is this much less certain.
MEMORY_UNKNOWN_CONFIDENCE = 0.5

RECOMMENDATION_SCHEMA: dict[str, pl.DataType] = {
    "computed_at": pl.Datetime("us", "UTC"),
    "window_start": pl.Datetime("us", "UTC"),
    "window_end": pl.Datetime("us", "UTC"),
    "days_observed": pl.Float64(),
    "workload": pl.String(),
    "placement": pl.String(),
    "sensitive": pl.Boolean(),
    "hosts": pl.String(),
    "instance_type": pl.String(),
    "gpu_model": pl.String(),
    "gpus": pl.Int32(),
    "gpu_hours_per_month": pl.Float64(),
    "busy_fraction": pl.Float64(),
    "duty_cycle": pl.Float64(),
    "peak_memory_gib": pl.Float64(),
    "current_monthly_cost_usd": pl.Float64(),
    "action": pl.String(),
    "alternative": pl.String(),
    "alternative_monthly_cost_usd": pl.Float64(),
    "monthly_savings_usd": pl.Float64(),
    "upfront_usd": pl.Float64(),
    "break_even_months": pl.Float64(),
    "confidence": pl.Float64(),
    "reasons": pl.List(pl.String()),
}

ALTERNATIVE_SCHEMA: dict[str, pl.DataType] = {
    "computed_at": pl.Datetime("us", "UTC"),
    "workload": pl.String(),
    "option": pl.String(),
    "kind": pl.String(),
    "placement": pl.String(),
    "gpu_model": pl.String(),
    "gpus": pl.Int32(),
    "instance_type": pl.String(),
    "host": pl.String(),
    "monthly_cost_usd": pl.Float64(),
    "monthly_savings_usd": pl.Float64(),
    "upfront_usd": pl.Float64(),
    "break_even_months": pl.Float64(),
    "feasible": pl.Boolean(),
    "chosen": pl.Boolean(),
    "note": pl.String(),
}


@dataclass(frozen=True)
class Params:
    """The knobs of the comparison ([advisor], [energy] and [local] of the configuration)."""

    window_days: int = 30
    min_saving_usd: float = 100.0
    min_saving_pct: float = 15.0
    memory_headroom_pct: float = 10.0
    max_projected_busy_pct: float = 70.0
    buy_min_duty_pct: float = 50.0
    active_hour_busy_pct: float = 10.0
    contention_idle_pct: float = 5.0
    saturated_busy_pct: float = 80.0
    price_per_kwh: float = 0.15
    pue: float = 1.4
    depreciation_years: float = 3.0
    ops_usd_per_gpu_hour: float = 0.10
    # (host, GPUs) of every [[local.hosts]] entry: what a spare host has where telemetry saw less
    host_gpus: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_config(cls, cfg: Config) -> Params:
        a = cfg.advisor
        return cls(
            window_days=a.window_days,
            min_saving_usd=a.min_saving_usd,
            min_saving_pct=a.min_saving_pct,
            memory_headroom_pct=a.memory_headroom_pct,
            max_projected_busy_pct=a.max_projected_busy_pct,
            buy_min_duty_pct=a.buy_min_duty_pct,
            active_hour_busy_pct=a.active_hour_busy_pct,
            contention_idle_pct=a.contention_idle_pct,
            saturated_busy_pct=a.saturated_busy_pct,
            price_per_kwh=cfg.energy.price_per_kwh,
            pue=cfg.energy.pue,
            depreciation_years=cfg.local.depreciation_years,
            ops_usd_per_gpu_hour=cfg.local.ops_usd_per_gpu_hour,
            host_gpus=tuple((h.name, h.gpu_count) for h in cfg.local.hosts),
        )

    def configured_gpus(self, host: str) -> int:
        """The GPUs [[local.hosts]] gives `host` (0 where it is not listed)."""
        return sum(n for name, n in self.host_gpus if name == host)

    def energy_usd(self, watts: float, hours: float) -> float:
        return watts / 1000.0 * hours * self.pue * self.price_per_kwh

    def energy_words(self, gpus: int, watts: float, hours: float) -> str:
        return (
            f"{gpus} × {watts:,.0f} W × {hours:,.0f} h × {self.pue:g} PUE × "
            f"{rate(self.price_per_kwh)}/kWh = {usd(gpus * self.energy_usd(watts, hours))}"
        )


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


@dataclass
class LocalCapacity:
    """Local GPU classes per host: how much was spare, when, and who is saturated there."""

    # host, gpu_class, gpus (the most that reported in one hour), total_s, idle_s, spare_share,
    # watts (per GPU: drawn while held where it was ever held, else over all its time; null
    # where nothing was measured), watts_held (whether `watts` is the draw while held)
    classes: pl.DataFrame
    spare: dict[tuple[str, str], dict[int, float]]  # (host, class) -> hour of week -> idle GPUs
    busy: pl.DataFrame  # host, gpu_class, workload, busy_fraction

    @classmethod
    def empty(cls) -> LocalCapacity:
        return cls(
            pl.DataFrame(
                schema={
                    "host": pl.String,
                    "gpu_class": pl.String,
                    "gpus": pl.Int64,
                    "spare_share": pl.Float64,
                    "watts": pl.Float64,
                    "watts_held": pl.Boolean,
                }
            ),
            {},
            pl.DataFrame(
                schema={
                    "host": pl.String,
                    "gpu_class": pl.String,
                    "workload": pl.String,
                    "busy_fraction": pl.Float64,
                }
            ),
        )


# The window --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """Whole UTC days [first_day, end_day): the current, partial day is left out, and so is a
    first day the data began after its first hour."""

    first_day: date
    end_day: date

    @property
    def days(self) -> int:
        return max(0, (self.end_day - self.first_day).days)

    @property
    def hours(self) -> float:
        return 24.0 * self.days

    @property
    def start(self) -> datetime:
        return datetime(self.first_day.year, self.first_day.month, self.first_day.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime(self.end_day.year, self.end_day.month, self.end_day.day, tzinfo=UTC)

    def hour_of_week_counts(self) -> dict[int, int]:
        """How many times each hour of the week (Monday 00:00 = 0) occurs in the window."""
        counts: dict[int, int] = {}
        for i in range(self.days):
            weekday = (self.first_day + timedelta(days=i)).weekday()
            for h in range(24):
                counts[weekday * 24 + h] = counts.get(weekday * 24 + h, 0) + 1
        return counts


def observed_window(usage: pl.DataFrame, end: datetime, days: int) -> Window:
    """The last `days` whole days before `end` that the data covers."""
    if usage.height == 0:
        day = end.astimezone(UTC).date()
        return Window(day, day)
    first = usage["hour"].min()
    last = usage["hour"].max() + timedelta(hours=1)
    end_at = min(end.astimezone(UTC), last)
    end_day = end_at.date()
    first_day = first.date() if first.hour == 0 else first.date() + timedelta(days=1)
    first_day = max(first_day, end_day - timedelta(days=days))
    return Window(min(first_day, end_day), end_day)


# Measuring --------------------------------------------------------------------------------
def _how() -> pl.Expr:
    return (pl.col("hour").dt.weekday() - 1) * 24 + pl.col("hour").dt.hour()


def local_capacity(usage: pl.DataFrame, classes: pl.DataFrame, window: Window) -> LocalCapacity:
    """Spare capacity of every local (host, GPU class) from its `__idle__` time."""
    local = _with_activity(usage).filter(pl.col("placement") == "local")
    if local.height == 0:
        return LocalCapacity.empty()
    local = _with_class(local, classes)
    per_class = (
        local.group_by("host", "gpu_class")
        .agg(
            total_s=pl.col("seconds").sum(),
            idle_s=pl.col("seconds").filter(pl.col("idle")).sum(),
            held_s=pl.col("seconds").filter(~pl.col("idle")).sum(),
            held_j=pl.col("energy_j").filter(~pl.col("idle")).sum(),
            total_j=pl.col("energy_j").sum(),
        )
        .join(_host_gpus(local), on=["host", "gpu_class"], how="left", nulls_equal=True)
        .with_columns(
            spare_share=pl.col("idle_s") / pl.col("total_s"),
            watts_held=(pl.col("held_s") > 0) & (pl.col("held_j") > 0),
        )
        .with_columns(
            # Energy 0 is no reading (a GPU without power telemetry), not a free GPU.
            watts=pl.when(pl.col("watts_held"))
            .then(pl.col("held_j") / pl.col("held_s"))
            .when(pl.col("total_j") > 0)
            .then(pl.col("total_j") / pl.col("total_s"))
        )
    )
    counts = window.hour_of_week_counts()
    idle = (
        local.filter(pl.col("idle"))
        .with_columns(how=_how())
        .group_by("host", "gpu_class", "how")
        .agg(gpu_hours=pl.col("seconds").sum() / 3600.0)
    )
    spare: dict[tuple[str, str], dict[int, float]] = {}
    for host, klass, how, hours in idle.iter_rows():
        spare.setdefault((host, klass), {})[how] = hours / max(counts.get(how, 1), 1)
    busy = (
        local.filter(~pl.col("idle"))
        .group_by("host", "gpu_class", "workload")
        .agg(busy_fraction=_busy_fraction())
    )
    return LocalCapacity(per_class, spare, busy)


def _host_gpus(local: pl.DataFrame) -> pl.DataFrame:
    """GPUs per (host, class): the most that reported in one hour (a replaced GPU's new UUID
    is not a second GPU; a MIG board is one GPU where its instances name their parent)."""
    board = pl.col("gpu_uuid")
    if "parent_gpu_uuid" in local.columns:
        board = pl.coalesce("parent_gpu_uuid", "gpu_uuid")
    return (
        local.group_by("host", "gpu_class", "hour")
        .agg(n=board.n_unique())
        .group_by("host", "gpu_class")
        .agg(gpus=pl.col("n").max())
    )


def _busy_fraction() -> pl.Expr:
    """Busy seconds over the seconds with an activity signal; null (unknown) without any."""
    known = pl.col("activity_seconds").sum()
    return pl.when(known > 0).then(pl.col("busy_seconds").sum() / known)


def _with_activity(usage: pl.DataFrame) -> pl.DataFrame:
    """`usage` with `activity_seconds` (frames from before it: every second had a signal)."""
    if "activity_seconds" in usage.columns:
        return usage.with_columns(pl.col("activity_seconds").fill_null(pl.col("seconds")))
    return usage.with_columns(activity_seconds=pl.col("seconds"))


def _with_class(frame: pl.DataFrame, classes: pl.DataFrame) -> pl.DataFrame:
    """`frame` with `gpu_class`: the catalog class of each row's reported model and memory
    (config/gpu_class.py), else the reported name itself (an unknown model stays its own class)."""
    return (
        GpuClasses(classes)
        .resolve_frame(frame, "gpu_model", "mem_total_mib", "gpu_class")
        .with_columns(pl.coalesce("gpu_class", "gpu_model").alias("gpu_class"))
    )


def _confidence(daily: list[float], days: int, window_days: int) -> float:
    """Grows with the days observed (up to the window) and falls with the variability of the
    workload's GPU-hours: weekly totals where two whole weeks exist, else daily ones."""
    if days <= 0:
        return 0.0
    weeks = [sum(daily[i : i + 7]) for i in range(len(daily) - 7, -1, -7)][: len(daily) // 7]
    series = weeks if len(weeks) >= 2 else daily
    mean = statistics.fmean(series) if series else 0.0
    cv = statistics.pstdev(series) / mean if mean > 0 and len(series) > 1 else 0.0
    return round(min(1.0, days / window_days) * (1.0 - 0.5 * min(1.0, cv)), 2)


def measured_profiles(
    usage: pl.DataFrame,
    ledger: pl.DataFrame,
    instances: pl.DataFrame,
    catalog: pl.DataFrame,
    params: Params,
    sensitive: set[str] | frozenset[str],
    window: Window,
) -> tuple[list[Profile], LocalCapacity]:
    """A Profile per workload (not `__idle__`, not `untagged`) and the local capacity.

    `usage`: hourly attribution through `held_usage` (hour, placement, host, gpu_uuid, gpu_model,
    workload, idle, seconds, busy_seconds, energy_j, mem_peak_mib, mem_total_mib); `ledger`: the
    daily ledger; `instances`: host, instance_type from the bill.
    """
    classes = gpu_classes(catalog)
    u = _with_activity(usage).filter(
        (pl.col("hour") >= window.start) & (pl.col("hour") < window.end)
    )
    led = ledger.filter((pl.col("day") >= window.first_day) & (pl.col("day") < window.end_day))
    capacity = local_capacity(u, classes, window)
    if window.days == 0:
        return [], capacity
    u = _with_class(u, classes) if u.height else u.with_columns(gpu_class=pl.lit(None, pl.String))
    rel = dict(classes.select("gpu_model", "relative_throughput").iter_rows())
    mem_of = dict(classes.select("gpu_model", "gpu_memory_gib").iter_rows())
    instance_of = dict(instances.select("host", "instance_type").iter_rows())
    f = HOURS_PER_MONTH / window.hours
    held = u.filter(~pl.col("workload").is_in([IDLE, UNTAGGED]))
    money = (
        led.filter(~pl.col("workload").is_in([IDLE, UNTAGGED]))
        .group_by("workload", "placement")
        .agg(cost=pl.col("cost_usd").sum(), energy_kwh=pl.col("energy_kwh").fill_null(0).sum())
    )
    hourly = held.group_by("workload", "hour").agg(
        held=pl.col("seconds").sum() / 3600.0,
        busy=pl.col("busy_seconds").sum() / 3600.0,
        known=pl.col("activity_seconds").sum() / 3600.0,
    )
    daily_hours = (
        held.group_by("workload", day=pl.col("hour").dt.date())
        .agg(h=pl.col("seconds").sum() / 3600.0)
        .sort("day")
    )
    counts = window.hour_of_week_counts()
    demand_rows = (
        held.with_columns(how=_how())
        .group_by("workload", "how")
        .agg(gpus=pl.col("seconds").sum() / 3600.0)
    )
    days = [window.first_day + timedelta(days=i) for i in range(window.days)]
    profiles: list[Profile] = []
    names = sorted(set(held["workload"].unique()) | set(money["workload"].unique()))
    for name in names:
        rows = held.filter(pl.col("workload") == name)
        m = money.filter(pl.col("workload") == name)
        by_place = {p: (c, e) for _, p, c, e in m.iter_rows()}
        if rows.height:
            place_s = rows.group_by("placement").agg(s=pl.col("seconds").sum())
            placement = place_s.sort("s", descending=True)["placement"][0]
        else:
            placement = max(by_place, key=lambda p: by_place[p][0]) if by_place else "cloud"
        rows = rows.filter(pl.col("placement") == placement)
        cost_window, energy_kwh = by_place.get(placement, (0.0, 0.0))
        seconds = float(rows["seconds"].sum()) if rows.height else 0.0
        if seconds <= 0:
            profiles.append(
                Profile(
                    workload=name,
                    placement=placement,
                    sensitive=name in sensitive,
                    gpu_model=None,
                    gpus=0,
                    rel_throughput=None,
                    held_hours_month=0.0,
                    gpu_hours_month=0.0,
                    busy_fraction=None,
                    duty_cycle=0.0,
                    peak_memory_gib=None,
                    avg_power_w=None,
                    current_monthly_cost=cost_window * f,
                    marginal_monthly_cost=cost_window * f,
                    window_cost=cost_window,
                    span_hours=window.hours,
                    days_observed=float(window.days),
                    notes=["no GPU telemetry from its resources: nothing to size it by"],
                )
            )
            continue
        model_s = (
            rows.group_by("gpu_class")
            .agg(s=pl.col("seconds").sum())
            .sort(["s", "gpu_class"], descending=[True, False])
        )
        gpu_class = model_s["gpu_class"][0]
        wl_hourly = hourly.filter(pl.col("workload") == name)
        gpus = max(1, int(round(float(wl_hourly["held"].max()))))
        busy_s = float(rows["busy_seconds"].sum())
        known_s = float(rows["activity_seconds"].sum())
        # An hour without an activity signal counts as active: no evidence that it idled.
        active = wl_hourly.filter(
            (pl.col("known") <= 0)
            | (pl.col("busy") >= pl.col("known") * params.active_hour_busy_pct / 100.0)
        ).height
        peak = rows.filter(~pl.col("idle"))["mem_peak_mib"].max()
        peak_gib = None if peak is None else float(peak) / MIB_PER_GIB
        certainty = 1.0 if peak_gib is not None else MEMORY_UNKNOWN_CONFIDENCE
        hosts = tuple(sorted(rows["host"].unique().to_list()))
        itypes = [instance_of[h] for h in hosts if h in instance_of]
        d = daily_hours.filter(pl.col("workload") == name)
        per_day = dict(d.select("day", "h").iter_rows())
        series = [float(per_day.get(day, 0.0)) for day in days]
        demand = {
            how: g / max(counts.get(how, 1), 1)
            for _, how, g in demand_rows.filter(pl.col("workload") == name).iter_rows()
        }
        energy_usd = energy_kwh * params.pue * params.price_per_kwh
        current = cost_window * f
        profiles.append(
            Profile(
                workload=name,
                placement=placement,
                sensitive=name in sensitive,
                gpu_model=gpu_class,
                gpus=gpus,
                rel_throughput=rel.get(gpu_class),
                memory_gib=mem_of.get(gpu_class),
                held_hours_month=seconds / 3600.0 / gpus * f,
                gpu_hours_month=seconds / 3600.0 * f,
                busy_fraction=busy_s / known_s if known_s > 0 else None,
                duty_cycle=active / window.hours,
                peak_memory_gib=peak_gib,
                avg_power_w=float(rows["energy_j"].sum()) / seconds,
                current_monthly_cost=current,
                marginal_monthly_cost=current if placement == "cloud" else energy_usd * f,
                window_cost=cost_window,
                span_hours=window.hours,
                days_observed=float(window.days),
                confidence=round(
                    _confidence(series, window.days, params.window_days) * certainty, 2
                ),
                hosts=hosts,
                instance_type=max(set(itypes), key=itypes.count) if itypes else None,
                demand=demand,
            )
        )
    _mark_contention(profiles, capacity, catalog, params)
    return profiles, capacity


def _mark_contention(
    profiles: list[Profile], capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> None:
    """Local workloads on a full class whose other user is saturated get `freed`."""
    for p in profiles:
        if p.placement != "local" or p.gpu_model is None:
            continue
        for host in p.hosts:
            cls = capacity.classes.filter(
                (pl.col("host") == host) & (pl.col("gpu_class") == p.gpu_model)
            )
            if cls.height == 0 or cls["spare_share"][0] >= params.contention_idle_pct / 100.0:
                continue
            others = capacity.busy.filter(
                (pl.col("host") == host)
                & (pl.col("gpu_class") == p.gpu_model)
                & (pl.col("workload") != p.workload)
                & (pl.col("busy_fraction") >= params.saturated_busy_pct / 100.0)
            ).sort("busy_fraction", descending=True)
            price = cloud_price_per_gpu(catalog, p.gpu_model)
            if others.height and price is not None:
                p.freed = Freed(
                    usd_per_gpu_hour=price[0],
                    instance_type=price[1],
                    workload=others["workload"][0],
                    busy_fraction=float(others["busy_fraction"][0]),
                    spare_share=float(cls["spare_share"][0]),
                )
                break


# Alternatives -----------------------------------------------------------------------------------
def _memory_fit(p: Profile, mem_gib: float, params: Params) -> tuple[bool, str]:
    """Whether the memory of one GPU of `mem_gib` holds the workload. Where its memory was never
    measured, only a GPU with at least the memory of the one it runs on is known to."""
    if p.peak_memory_gib is None:
        if p.memory_gib is None:
            return False, "memory unknown: neither its use nor its GPU's size was measured"
        words = f"memory unknown: {mem_gib:g} GiB"
        if mem_gib < p.memory_gib:
            return False, f"{words} < the {p.memory_gib:g} GiB of its {p.gpu_model} it may need"
        return True, f"{words} ≥ the {p.memory_gib:g} GiB of its {p.gpu_model}"
    need = p.peak_memory_gib * (1 + params.memory_headroom_pct / 100.0)
    mem_words = f"{p.peak_memory_gib:.1f} GiB + {params.memory_headroom_pct:g} % = {need:.1f} GiB"
    if mem_gib < need:
        return False, f"too little memory: {mem_words} > {mem_gib:g} GiB"
    return True, f"memory {mem_words} ≤ {mem_gib:g} GiB"


def _fit(p: Profile, mem_gib: float, rel: float | None, params: Params) -> tuple[bool, str]:
    fits, fits_mem = _memory_fit(p, mem_gib, params)
    if not fits:
        return False, fits_mem
    if p.rel_throughput is None or rel is None:
        return True, fits_mem + "; throughput unknown"
    if rel >= p.rel_throughput:
        return True, f"{fits_mem}; throughput {rel:.2f} ≥ {p.rel_throughput:.2f} now"
    if p.busy_fraction is None:
        return False, (
            f"busy unknown (no activity signal): a GPU slower than now ({rel:.2f} < "
            f"{p.rel_throughput:.2f}) may not keep up"
        )
    projected = p.busy_fraction * p.rel_throughput / rel
    words = (
        f"busy {pct(p.busy_fraction)} × {p.rel_throughput:.2f} ÷ {rel:.2f} = {pct(projected)} "
        f"of the slower GPU"
    )
    if projected > params.max_projected_busy_pct / 100.0:
        return False, f"too slow: {words} > {params.max_projected_busy_pct:g} %"
    return True, f"{fits_mem}; {words} ≤ {params.max_projected_busy_pct:g} %"


def _smaller(p: Profile, rel: float | None, mem: float | None, model: str) -> bool:
    if p.gpu_model is None or model == p.gpu_model:
        return False
    if p.rel_throughput is None or rel is None:
        return False
    return rel < p.rel_throughput or (
        rel == p.rel_throughput and (mem or 0.0) < (p.memory_gib or 0.0)
    )


def cloud_alternatives(p: Profile, catalog: pl.DataFrame, params: Params) -> list[Alternative]:
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
        rel = r["relative_throughput"]
        ok, note = _fit(p, r["gpu_memory_gib"], rel, params)
        for kind, price in (
            ("cloud", r["on_demand_usd_per_hour"]),
            ("cloud_spot", r["spot_usd_per_hour"]),
        ):
            if price is None:
                continue
            cost = k * price * p.held_hours_month
            basis = "on-demand" if kind == "cloud" else "spot"
            spot = kind == "cloud_spot"
            out.append(
                Alternative(
                    option=f"{k} × {r['name']} ({g} × {r['gpu_model']}), {basis}",
                    kind=kind,
                    placement="cloud",
                    gpu_model=r["gpu_model"],
                    gpus=k * g,
                    monthly_cost=cost,
                    feasible=ok and not spot,
                    note=f"{SPOT_NOTE} ({note})" if spot and ok else note,
                    arithmetic=(
                        f"{k} × {r['name']} at {rate(price)}/h × {p.held_hours_month:,.0f} h "
                        f"a month = {usd(cost)}"
                    ),
                    instance_type=r["name"],
                    rel_throughput=rel,
                    memory_gib=r["gpu_memory_gib"],
                )
            )
    return out


def buy_alternatives(p: Profile, catalog: pl.DataFrame, params: Params) -> list[Alternative]:
    out = []
    watts = p.avg_power_w if p.avg_power_w is not None else ASSUMED_WATTS
    steady = p.duty_cycle * 100.0 >= params.buy_min_duty_pct
    for r in gpu_classes(catalog).sort("gpu_model").iter_rows(named=True):
        price = r["purchase_usd_per_gpu"]
        if price is None or r["for_sale"] is False:
            continue  # not for sale: its price only values the cards a team already owns
        n = p.gpus
        upfront = n * price
        capital = upfront / (params.depreciation_years * HOURS_PER_YEAR) * HOURS_PER_MONTH
        ops = n * HOURS_PER_MONTH * params.ops_usd_per_gpu_hour
        energy = n * params.energy_usd(watts, p.held_hours_month)
        cost = capital + ops + energy
        ok, note = _fit(p, r["gpu_memory_gib"], r["relative_throughput"], params)
        if ok and not steady and not p.sensitive:
            ok = False
            note = (
                f"active in {pct(p.duty_cycle)} of hours, under the "
                f"{params.buy_min_duty_pct:g} % that justifies buying hardware"
            )
        cash = p.marginal_monthly_cost - ops - energy
        arithmetic = (
            f"buying {n} × {r['gpu_model']} ({usd(price, cents=False)} each = "
            f"{usd(upfront, cents=False)}): {usd(upfront, cents=False)} ÷ "
            f"({params.depreciation_years:g} years × 8,760 h) × 730 h = "
            f"{usd(capital)} capital + {n} × 730 h × {rate(params.ops_usd_per_gpu_hour)}/GPU-h = "
            f"{usd(ops)} operations + {params.energy_words(n, watts, p.held_hours_month)} energy"
            f"{' (assumed watts)' if p.avg_power_w is None else ''} = {usd(cost)} a month"
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
            arithmetic=arithmetic,
            rel_throughput=r["relative_throughput"],
            memory_gib=r["gpu_memory_gib"],
            upfront=upfront,
        )
        if cash > 0:
            alt.break_even_months = upfront / cash
            alt.arithmetic += (
                f"; the purchase pays for itself in {usd(upfront, cents=False)} ÷ "
                f"({usd(p.marginal_monthly_cost)} − {usd(ops)} − {usd(energy)}) = "
                f"{alt.break_even_months:.1f} months"
            )
        else:
            alt.arithmetic += "; it never pays for itself at these prices"
        out.append(alt)
    return out


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
            if not _smaller(p, rel, mem, klass):
                continue  # moving between local GPUs only pays by freeing a bigger one
        if mem is None:
            continue
        host_gpus = max(int(r["gpus"] or 0), params.configured_gpus(host))
        ok, note = _fit(p, mem, rel, params)
        if ok:
            ok, when = _spare_fits(p, spare, host_gpus)
            note = note if ok else when
        watts, basis = _spare_watts(r)
        cost = p.gpus * params.energy_usd(watts, p.held_hours_month)
        out.append(
            Alternative(
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
        )
    return out


def _spare_watts(capacity_row: dict) -> tuple[float, str]:
    """The power per GPU of a spare (host, class), and on what basis it was measured."""
    watts = capacity_row.get("watts")
    if watts is None or not watts > 0:
        return ASSUMED_WATTS, "(assumed: no power measured there)"
    return watts, "while in use" if capacity_row.get("watts_held") else "on average"


def _spare_fits(p: Profile, spare: dict[int, float], host_gpus: int) -> tuple[bool, str]:
    if p.gpus > host_gpus:
        return False, f"needs {p.gpus} GPUs at once, the host has {host_gpus}"
    if p.described or not p.demand:
        hours = sum(1 for h in range(168) if spare.get(h, 0.0) >= p.gpus - SPARE_TOLERANCE_GPUS)
        need = p.held_hours_month / HOURS_PER_MONTH * 168
        if hours + 1e-9 < need:
            return False, f"spare {hours} h a week, it needs {need:.0f} h"
        return True, f"spare {hours} h a week ≥ {need:.0f} h needed"
    short = [h for h, g in p.demand.items() if spare.get(h, 0.0) + SPARE_TOLERANCE_GPUS < g]
    if short:
        h = min(short, key=lambda x: spare.get(x, 0.0) - p.demand[x])
        day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[h // 24]
        return False, (
            f"not spare when it runs: {day} {h % 24:02d}:00 UTC needs {p.demand[h]:.1f} GPUs, "
            f"{spare.get(h, 0.0):.1f} idle"
        )
    return True, "spare in every hour of the week it runs"


def _idle_words(share: float) -> str:
    return "never idle" if share < 0.0005 else f"idle only {pct(share, 1)} of the time"


def _price_alternatives(p: Profile, alts: list[Alternative], params: Params) -> None:
    """Savings and the action each alternative would mean."""
    credit = 0.0
    credit_words = ""
    if p.placement == "local" and p.freed is not None:
        credit = p.gpus * p.held_hours_month * p.freed.usd_per_gpu_hour
        credit_words = (
            f" + {usd(credit)} for the {p.gpu_model} it frees ({p.gpus} × "
            f"{p.held_hours_month:,.0f} h × {rate(p.freed.usd_per_gpu_hour)}/GPU-h, the "
            f"{p.freed.instance_type} price per GPU: {p.freed.workload}, busy "
            f"{pct(p.freed.busy_fraction)} on a host {_idle_words(p.freed.spare_share)}, "
            f"would otherwise rent it)"
        )
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
            smaller = _smaller(p, a.rel_throughput, a.memory_gib, a.gpu_model)
            a.action = "downsize" if smaller or a.placement == "local" else "move_to_cloud"


def alternatives(
    p: Profile, capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Alternative]:
    """Every alternative for `p` (feasible or not, with the reason), priced."""
    if p.gpus <= 0:
        return []
    alts: list[Alternative] = []
    if not p.sensitive:
        alts += cloud_alternatives(p, catalog, params)
    if p.placement == "cloud":
        alts += buy_alternatives(p, catalog, params)
    alts += spare_alternatives(p, capacity, catalog, params)
    _price_alternatives(p, alts, params)
    return alts


# Deciding --------------------------------------------------------------------------------
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

    def as_row(self) -> dict:
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
    floor = max(params.min_saving_usd, params.min_saving_pct / 100.0 * p.current_monthly_cost)
    good = [a for a in by_saving if a.monthly_savings >= floor]
    if p.sensitive:
        reasons.append(f"{p.workload} is sensitive: cloud options are not considered.")
    if not good:
        if p.placement == "local" and p.freed is None:
            reasons.append(
                f"Its local GPUs are paid for whoever uses them: leaving would save only its "
                f"energy, {usd(p.marginal_monthly_cost)} a month."
            )
        if by_saving:
            b = by_saving[0]
            reasons.append(
                f"No feasible alternative saves at least {usd(params.min_saving_usd, cents=False)}"
                f" and {params.min_saving_pct:g} % ({usd(floor)} here): the best, {b.option}, "
                f"{b.savings_words}."
            )
        else:
            notes = list(dict.fromkeys(a.note for a in alts))[:3]
            reasons.append(
                "No alternative fits"
                + (": " + "; ".join(notes) + "." if notes else " in the catalog.")
            )
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


def recommend_profiles(
    profiles: list[Profile], capacity: LocalCapacity, catalog: pl.DataFrame, params: Params
) -> list[Recommendation]:
    return [decide(p, alternatives(p, capacity, catalog, params), params) for p in profiles]


def recommendations(
    usage: pl.DataFrame,
    ledger: pl.DataFrame,
    instances: pl.DataFrame,
    catalog: pl.DataFrame,
    params: Params,
    sensitive: set[str] | frozenset[str],
    *,
    end: datetime,
    now: datetime | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Recommendations (RECOMMENDATION_SCHEMA) and every alternative (ALTERNATIVE_SCHEMA) for the
    window of `params.window_days` whole days before `end`."""
    now = now or datetime.now(UTC)
    window = observed_window(usage, end, params.window_days)
    profiles, capacity = measured_profiles(
        usage, ledger, instances, catalog, params, sensitive, window
    )
    recs = recommend_profiles(profiles, capacity, catalog, params)
    return recommendation_frames(recs, window, now)


def recommendation_frames(
    recs: list[Recommendation], window: Window, now: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = [
        {
            "computed_at": now,
            "window_start": window.start,
            "window_end": window.end,
            **r.as_row(),
        }
        for r in recs
    ]
    alt_rows = [
        {
            "computed_at": now,
            "workload": r.profile.workload,
            "option": a.option,
            "kind": a.kind,
            "placement": a.placement,
            "gpu_model": a.gpu_model,
            "gpus": a.gpus,
            "instance_type": a.instance_type,
            "host": a.host,
            "monthly_cost_usd": a.monthly_cost,
            "monthly_savings_usd": a.monthly_savings,
            "upfront_usd": a.upfront,
            "break_even_months": a.break_even_months,
            "feasible": a.feasible,
            "chosen": a is r.chosen,
            "note": a.note,
        }
        for r in recs
        for a in r.alternatives
    ]
    recs_frame = (
        pl.DataFrame(rows, schema=RECOMMENDATION_SCHEMA)
        if rows
        else pl.DataFrame(schema=RECOMMENDATION_SCHEMA)
    )
    alts_frame = (
        pl.DataFrame(alt_rows, schema=ALTERNATIVE_SCHEMA)
        if alt_rows
        else pl.DataFrame(schema=ALTERNATIVE_SCHEMA)
    )
    order = {a: i for i, a in enumerate(ACTIONS)}
    recs_frame = recs_frame.sort(
        pl.col("monthly_savings_usd").fill_null(0) * -1,
        pl.col("action").replace_strict(order, default=9),
        "workload",
    )
    return recs_frame, alts_frame.sort("workload", "monthly_cost_usd", "option")


__all__ = [
    "ACTIONS",
    "ALTERNATIVE_SCHEMA",
    "RECOMMENDATION_SCHEMA",
    "Alternative",
    "Freed",
    "LocalCapacity",
    "Params",
    "Profile",
    "Recommendation",
    "Window",
    "alternatives",
    "decide",
    "measured_profiles",
    "observed_window",
    "recommend_profiles",
    "recommendation_frames",
    "recommendations",
]
