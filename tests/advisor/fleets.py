"""Building small fleets hour by hour for the scenario library (tests/advisor/test_scenarios.py):
GPUs with a pattern per hour, hourly bills, instance types (with a commitment where the bill
shows one), process evidence, and `advise`, the recommendation the pure functions give them.

Money conventions of every scenario: a month is 730 h; energy costs $0.15/kWh at PUE 1.4, so a
watt held for an hour costs 1.4 × 0.15 ÷ 1000 = $0.00021; local GPUs are the catalog's purchase
price over 3 years (26,280 h) + $0.10 per GPU-hour; a purchase adds [advisor] buy_overhead_pct
(30 %) for the server, network and rack around the GPUs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from advisor.ledger import daily_ledger, held_usage, host_placements, local_rates
from advisor.recommend import Params, recommendation_results
from config.catalog import load_catalog
from config.settings import Config
from tables.stored import RESULTS_WORKLOAD_EVIDENCE
from tables.units import IDLE

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "config" / "catalog.csv")
T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
GIB = 1024.0
WATT_HOUR_USD = 1.4 * 0.15 / 1000  # a watt for an hour, after PUE

USAGE_SCHEMA = {
    "hour": pl.Datetime("us", "UTC"),
    "host": pl.String,
    "gpu_uuid": pl.String,
    "gpu_model": pl.String,
    "workload": pl.String,
    "seconds": pl.Float64,
    "busy_seconds": pl.Float64,
    "activity_seconds": pl.Float64,
    "energy_j": pl.Float64,
    "mem_peak_mib": pl.Float64,
    "mem_total_mib": pl.Float64,
    "parent_gpu_uuid": pl.String,
    "mig_profile": pl.String,
}
BILL_SCHEMA = {
    "day": pl.Date,
    "workload": pl.String,
    "resource_id": pl.String,
    "currency": pl.String,
    "effective_cost": pl.Float64,
    "billed_cost": pl.Float64,
    "list_cost": pl.Float64,
}

# What a GPU does in hour `h` (since T0): None when it is absent (its instance is stopped), else
# (workload or None for no process, busy fraction or None for no activity signal, GiB in use or
# None where the GPU reports no memory in use).
State = tuple[str | None, float | None, float | None] | None
Pattern = Callable[[int], State]


@dataclass(frozen=True)
class Gpu:
    host: str
    uuid: str
    model: str
    total_gib: float = 80.0
    watts: float = 100.0  # drawn while a process holds it
    idle_watts: float = 50.0
    share: float = 1.0  # of its board (a MIG instance: slices ÷ the board's)
    parent: str | None = None
    profile: str | None = None


def hours(gpu: Gpu, days: int, pattern: Pattern) -> list[tuple]:
    """Hourly usage rows of one GPU over `days` days from T0."""
    rows = []
    for h in range(days * 24):
        state = pattern(h)
        if state is None:
            continue
        workload, busy, mem_gib = state
        held = 3600.0 * gpu.share
        watts = gpu.watts if workload else gpu.idle_watts
        rows.append(
            (
                T0 + timedelta(hours=h),
                gpu.host,
                gpu.uuid,
                gpu.model,
                workload or IDLE,
                held,
                0.0 if busy is None else held * busy,
                0.0 if busy is None else held,
                held * watts,
                (None if mem_gib is None else mem_gib * GIB) if workload else 500.0,
                gpu.total_gib * GIB,
                gpu.parent,
                gpu.profile,
            )
        )
    return rows


def always(workload: str | None, busy: float | None, mem_gib: float | None) -> Pattern:
    return lambda h: (workload, busy, mem_gib)


def usage_of(*groups: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame([r for g in groups for r in g], schema=USAGE_SCHEMA, orient="row")


def hourly_bill(
    resource: str,
    workload: str,
    usd_per_hour: float | Callable[[int], float],
    days: int,
) -> list[tuple]:
    """Daily bill lines of an instance billed `usd_per_hour` (or that hour's price) each hour."""
    per_day: dict[date, float] = {}
    for h in range(days * 24):
        price = usd_per_hour(h) if callable(usd_per_hour) else usd_per_hour
        if price:
            day = (T0 + timedelta(hours=h)).date()
            per_day[day] = per_day.get(day, 0.0) + price
    return [(d, workload, resource, "USD", c, c, c) for d, c in per_day.items()]


def evidence(**by_workload: dict) -> pl.DataFrame:
    """results_workload_evidence rows: workload -> its figures (the rest null)."""
    rows = [
        {"computed_at": T0, "workload": w, **{k: v for k, v in figures.items()}}
        for w, figures in by_workload.items()
    ]
    return pl.DataFrame(rows, schema=RESULTS_WORKLOAD_EVIDENCE.polars_schema)


@dataclass
class Advice:
    recs: dict[str, dict]
    alts: pl.DataFrame
    curves: pl.DataFrame
    ledger: pl.DataFrame
    recommendations: pl.DataFrame

    def options(self, workload: str) -> dict[str, dict]:
        mine = self.alts.filter(pl.col("workload") == workload)
        return {r["option"]: r for r in mine.iter_rows(named=True)}

    def reasons(self, workload: str) -> str:
        return " ".join(self.recs[workload]["reasons"])


def advise(
    usage: pl.DataFrame,
    bills: list[tuple] = (),
    instances: list[tuple] = (),
    *,
    days: int,
    params: Params = Params(),
    sensitive: tuple[str, ...] = (),
    proof: pl.DataFrame | None = None,
) -> Advice:
    """The recommendations for `usage` and `bills` over `days` whole days from T0. `instances`:
    (host, instance type) or (host, instance type, commitment id, commitment type)."""
    bill = pl.DataFrame(list(bills), schema=BILL_SCHEMA, orient="row")
    placements = host_placements(usage["host"], bill)
    held = held_usage(usage, placements)
    rates = local_rates(held.select("host", "gpu_model").unique(), Config(), CATALOG)
    ledger = daily_ledger(held, bill, rates, price_per_kwh=0.15, pue=1.4)
    wide = [tuple(i) + (None,) * (4 - len(i)) for i in instances]
    inst = pl.DataFrame(
        wide,
        schema={
            "host": pl.String,
            "instance_type": pl.String,
            "commitment_id": pl.String,
            "commitment_type": pl.String,
        },
        orient="row",
    )
    out = recommendation_results(
        held,
        ledger,
        inst,
        CATALOG,
        params,
        set(sensitive),
        end=T0 + timedelta(days=days),
        now=T0 + timedelta(days=days),
        evidence=proof,
    )
    recs = {r["workload"]: r for r in out.recommendations.iter_rows(named=True)}
    return Advice(recs, out.alternatives, out.curves, ledger, out.recommendations)


def base_plus_peaks_service(days: int = 30) -> dict:
    """An API on g6e.xlarge instances (1 × L40S, $1.861/h each), 60 % busy, 30 GiB and 200 W on
    each GPU: two run all day, four more 12:00–16:00 UTC; its processes are independent (the
    process samples say so). `advise(**base_plus_peaks_service(), days=...)` its advice."""

    def worker(i: int) -> Pattern:
        def pattern(h: int) -> State:
            return ("api", 0.6, 30.0) if i < 2 or 12 <= h % 24 < 16 else None

        return pattern

    rows: list[tuple] = []
    bills: list[tuple] = []
    instances = []
    for i in range(6):
        host = f"i-api{i}"
        rows += hours(Gpu(host, f"a{i}", "L40S", total_gib=48, watts=200), days, worker(i))
        bills += hourly_bill(host, "api", lambda h, i=i: 1.861 if worker(i)(h) else 0.0, days)
        instances.append((host, "g6e.xlarge"))
    proof = evidence(api={"busy_minutes": 43200, "multi_gpu_minutes": 0, "processes": 6})
    return {"usage": usage_of(rows), "bills": bills, "instances": instances, "proof": proof}
