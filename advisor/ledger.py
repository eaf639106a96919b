"""The daily cost ledger: GPU-hours, busy GPU-hours and money per day, placement and workload.

Pure functions, frames in and frames out (DESIGN.md §2, cost model):
- local: purchase price / (depreciation years x 8,760 h) + operations per GPU-hour for every
  sampled GPU-second, plus measured energy (power integrated over time x PUE x tariff);
  GPU time with no process goes to `__idle__`, as its own row;
- cloud: the bill's EffectiveCost (BilledCost and ListCost beside it). Where telemetry from the
  instance exists (the agent's host id is the bill's ResourceId), each day's money of the
  instance is split across workloads by their GPU-seconds on it; its unallocated GPU time stays
  with the workload its tag names (that owner pays for and can stop the whole instance), as that
  workload's idle share; an untagged instance's goes to `untagged`. Every dollar of the bill lands
  in exactly one row. Only USD is added up as cost_usd: a bill in another currency is left out,
  never summed with dollars.
Busy GPU-hours count only time with an activity signal (`activity_gpu_hours`); where a row had
none (a MIG instance without DCGM profiling) its busy_gpu_hours is null: unknown, never 0. A MIG
instance's usage is already its share of the board (warehouse/mig.py), priced like its board.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import polars as pl

from config.gpu_class import GpuClasses
from config.settings import Config
from tables.stored import RESULTS_DAILY_LEDGER
from tables.units import HOURS_PER_YEAR, IDLE, J_PER_KWH, UNTAGGED

# EC2 instance ids, as the agent reports them on EC2: such a host is cloud even before its bill.
INSTANCE_ID = r"^i-[0-9a-f]{8}([0-9a-f]{9})?$"

# The ledger's rows: results_daily_ledger (tables/stored.py, every column's meaning there).
LEDGER_SCHEMA: dict[str, pl.DataType] = RESULTS_DAILY_LEDGER.polars_schema

__all__ = [
    "HOURS_PER_YEAR",
    "IDLE",
    "LEDGER_SCHEMA",
    "RATE_SCHEMA",
    "UNTAGGED",
    "cloud_hosts",
    "daily_ledger",
    "held_usage",
    "host_placements",
    "local_rates",
]


RATE_SCHEMA = pl.Schema(
    {
        "host": pl.String(),
        "gpu_model": pl.String(),
        "gpu_class": pl.String(),
        "purchase_usd_per_gpu": pl.Float64(),
        "capital_usd_per_gpu_hour": pl.Float64(),
        "ops_usd_per_gpu_hour": pl.Float64(),
        "priced": pl.Boolean(),
    }
)


def local_rates(gpus: pl.DataFrame, cfg: Config, catalog: pl.DataFrame) -> pl.DataFrame:
    """Capital and operations USD per GPU-hour for each (host, gpu_model) in `gpus` (RATE_SCHEMA),
    with the GPU class the reported model resolves to (config/gpu_class.py, using the largest
    `mem_total_mib` seen where `gpus` has it) and whether a purchase price was found.

    A host in [[local.hosts]] uses its own purchase_usd (÷ gpu_count), years and operations;
    without purchase_usd it takes the catalog price of the class of the model it reports, else of
    its configured gpu_model. Any other host takes the catalog price of its class and the [local]
    defaults. No class or no price: `priced` is false and capital 0, so the ledger counts those
    GPU-hours as unpriced instead of making them silently cheap.
    """
    memory = (
        pl.col("mem_total_mib").max() if "mem_total_mib" in gpus.columns else pl.lit(None)
    ).cast(pl.Float64)
    pairs = gpus.group_by("host", "gpu_model").agg(mem_total_mib=memory)
    classes = GpuClasses(catalog)
    prices = classes.table.select(
        gpu_class="gpu_model", class_usd=pl.col("purchase_usd_per_gpu").cast(pl.Float64)
    )
    hosts = _configured_hosts(cfg, classes)
    frame = (
        classes.resolve_frame(pairs, "gpu_model", "mem_total_mib", "gpu_class")
        .join(hosts, on="host", how="left")
        .join(prices, on="gpu_class", how="left")
        .join(
            prices.rename({"gpu_class": "host_class", "class_usd": "host_class_usd"}),
            on="host_class",
            how="left",
        )
        .with_columns(
            gpu_class=pl.coalesce("gpu_class", "host_class"),
            purchase_usd_per_gpu=pl.coalesce("host_usd", "class_usd", "host_class_usd"),
            years=pl.col("host_years").fill_null(cfg.local.depreciation_years),
        )
    )
    return frame.select(
        "host",
        "gpu_model",
        "gpu_class",
        "purchase_usd_per_gpu",
        capital_usd_per_gpu_hour=pl.col("purchase_usd_per_gpu").fill_null(0.0)
        / (pl.col("years") * HOURS_PER_YEAR),
        ops_usd_per_gpu_hour=pl.col("host_ops").fill_null(cfg.local.ops_usd_per_gpu_hour),
        priced=pl.col("purchase_usd_per_gpu").is_not_null(),
    ).cast(RATE_SCHEMA)


def _configured_hosts(cfg: Config, classes: GpuClasses) -> pl.DataFrame:
    """What [[local.hosts]] says of each host: purchase per GPU, years, operations (null where
    it says nothing) and the class of its configured gpu_model."""
    return pl.DataFrame(
        [
            (
                h.name,
                None if math.isnan(h.purchase_usd) else h.purchase_usd / h.gpu_count,
                None if math.isnan(h.depreciation_years) else h.depreciation_years,
                None if math.isnan(h.ops_usd_per_gpu_hour) else h.ops_usd_per_gpu_hour,
                classes.resolve(h.gpu_model),
            )
            for h in cfg.local.hosts
        ],
        schema={
            "host": pl.String,
            "host_usd": pl.Float64,
            "host_years": pl.Float64,
            "host_ops": pl.Float64,
            "host_class": pl.String,
        },
        orient="row",
    )


def cloud_hosts(billing_daily: pl.DataFrame) -> pl.DataFrame:
    """Resources the bill names, with the workload their tag gives (host id = ResourceId);
    a tagged line wins over an untagged one."""
    return (
        billing_daily.filter(pl.col("resource_id").is_not_null())
        .with_columns(tag=pl.col("workload").replace(UNTAGGED, None))
        .group_by("resource_id")
        .agg(owner=pl.col("tag").drop_nulls().mode().sort().first())
        .with_columns(pl.col("owner").fill_null(UNTAGGED))
        .rename({"resource_id": "host"})
    )


def host_placements(
    hosts: Iterable[str] | pl.Series,
    billing_daily: pl.DataFrame,
    local_hosts: Iterable[str] = (),
) -> pl.DataFrame:
    """host, placement (`cloud` when the bill names it or it is an EC2 instance id, unless it is
    configured in [[local.hosts]]) and owner (the cloud instance's tag, else `untagged`)."""
    owners = cloud_hosts(billing_daily)
    names = pl.Series("host", list(hosts), dtype=pl.String).unique()
    local = pl.Series(list(local_hosts), dtype=pl.String)
    frame = pl.DataFrame({"host": names}).join(owners, on="host", how="left")
    cloud = (pl.col("owner").is_not_null() | pl.col("host").str.contains(INSTANCE_ID)) & ~pl.col(
        "host"
    ).is_in(local.implode())
    return frame.select(
        "host",
        placement=pl.when(cloud).then(pl.lit("cloud")).otherwise(pl.lit("local")),
        owner=pl.when(cloud).then(pl.col("owner").fill_null(UNTAGGED)).otherwise(None),
    )


def held_usage(usage: pl.DataFrame, placements: pl.DataFrame) -> pl.DataFrame:
    """Hourly usage with `placement`, `idle` (no process on the GPU) and `workload` = who holds
    the GPU-hour: the process's workload; when idle, `__idle__` locally and the instance's owner
    in the cloud (DESIGN.md §2, allocated GPU-seconds)."""
    idle = pl.col("workload").is_null() | (pl.col("workload") == IDLE)
    return (
        usage.join(placements, on="host", how="left")
        .with_columns(placement=pl.col("placement").fill_null("local"), idle=idle)
        .with_columns(
            workload=pl.when(pl.col("idle") & (pl.col("placement") == "cloud"))
            .then(pl.col("owner").fill_null(UNTAGGED))
            .when(pl.col("idle"))
            .then(pl.lit(IDLE))
            .otherwise(pl.col("workload"))
        )
        .drop("owner")
    )


def _usage_with_days(
    usage: pl.DataFrame, billing_daily: pl.DataFrame, local_hosts: Iterable[str]
) -> pl.DataFrame:
    """Minute or hour rows brought to one shape: day, placement, idle, workload and the sums."""
    time_col = "hour" if "hour" in usage.columns else "minute"
    u = usage
    for name in ("busy_seconds", "energy_j"):
        if name not in u.columns:
            u = u.with_columns(pl.lit(0.0).alias(name))
    if "activity_seconds" not in u.columns:  # frames from before it: every second had a signal
        u = u.with_columns(activity_seconds=pl.col("seconds"))
    if "idle" not in u.columns:
        u = u.with_columns(idle=pl.col("workload").is_null() | (pl.col("workload") == IDLE))
    if "placement" not in u.columns:
        places = host_placements(u["host"], billing_daily, local_hosts).select("host", "placement")
        u = u.join(places, on="host", how="left")
    return u.with_columns(
        day=pl.col(time_col).dt.date(),
        busy_seconds=pl.col("busy_seconds").fill_null(0.0),
        activity_seconds=pl.col("activity_seconds").fill_null(pl.col("seconds")),
        energy_j=pl.col("energy_j").fill_null(0.0),
    )


def _local_rows(u: pl.DataFrame, rates: pl.DataFrame, price_per_kwh: float, pue: float):
    kwh = pl.col("energy_j") / J_PER_KWH
    if "priced" not in rates.columns:  # rates given without the flag: all have their price
        rates = rates.with_columns(priced=pl.lit(True))
    return (
        u.filter(pl.col("placement") == "local")
        .join(rates, on=["host", "gpu_model"], how="left")
        .with_columns(
            workload=pl.when(pl.col("idle")).then(pl.lit(IDLE)).otherwise(pl.col("workload")),
            cost_usd=pl.col("seconds")
            / 3600.0
            * (
                pl.col("capital_usd_per_gpu_hour").fill_null(0.0)
                + pl.col("ops_usd_per_gpu_hour").fill_null(0.0)
            )
            + kwh * pue * price_per_kwh,
            energy_kwh=kwh,
        )
        .group_by("day", "workload", "host", "gpu_model")
        .agg(
            gpu_hours=pl.col("seconds").sum() / 3600.0,
            busy_gpu_hours=pl.col("busy_seconds").sum() / 3600.0,
            activity_gpu_hours=pl.col("activity_seconds").sum() / 3600.0,
            cost_usd=pl.col("cost_usd").sum(),
            energy_kwh=pl.col("energy_kwh").sum(),
            unpriced_gpu_hours=pl.col("seconds").filter(~pl.col("priced").fill_null(False)).sum()
            / 3600.0,
        )
        .with_columns(
            placement=pl.lit("local"),
            idle_gpu_hours=pl.when(pl.col("workload") == IDLE)
            .then(pl.col("gpu_hours"))
            .otherwise(0.0),
            idle_cost_usd=pl.when(pl.col("workload") == IDLE)
            .then(pl.col("cost_usd"))
            .otherwise(0.0),
            billed_cost_usd=pl.lit(None, pl.Float64),
            list_cost_usd=pl.lit(None, pl.Float64),
        )
    )


def _cloud_rows(
    u: pl.DataFrame, billing_daily: pl.DataFrame, placements: pl.DataFrame
) -> pl.DataFrame:
    """Cloud money split by GPU-seconds per (day, instance); see the module docstring."""
    tele = _cloud_telemetry(u)
    tele_total = tele.group_by("day", "host").agg(total_s=pl.col("seconds").sum())
    bill = _bill_groups(billing_daily)
    bill_total = (
        bill.filter(pl.col("host").is_not_null())
        .group_by("day", "host")
        .agg(effective_cost_total=pl.col("effective_cost").sum(), groups=pl.len())
    )
    return pl.concat(
        [
            _measured_rows(bill, bill_total, tele, tele_total),
            _unmeasured_rows(bill, tele_total),
            _unbilled_rows(tele, bill_total, placements),
        ],
        how="vertical_relaxed",
    ).with_columns(placement=pl.lit("cloud"))


def _cloud_telemetry(u: pl.DataFrame) -> pl.DataFrame:
    """Cloud GPU time per (day, instance, workload; null: idle), with its busy, activity and
    energy."""
    return (
        u.filter(pl.col("placement") == "cloud")
        .with_columns(w=pl.when(pl.col("idle")).then(None).otherwise(pl.col("workload")))
        .group_by("day", "host", "w")
        .agg(
            gpu_model=pl.col("gpu_model").drop_nulls().first(),
            seconds=pl.col("seconds").sum(),
            busy_seconds=pl.col("busy_seconds").sum(),
            activity_seconds=pl.col("activity_seconds").sum(),
            energy_kwh=pl.col("energy_j").sum() / J_PER_KWH,
        )
        .filter(pl.col("seconds") > 0)
    )


def _bill_groups(billing_daily: pl.DataFrame) -> pl.DataFrame:
    """The USD bill per (day, resource, tagged workload): effective_cost, billed_cost and
    list_cost, billing_daily's sums of FOCUS EffectiveCost, BilledCost and ListCost (a ledger
    row's share of them is its cost_usd, billed_cost_usd and list_cost_usd)."""
    return (
        billing_daily.filter(pl.col("currency") == "USD")
        .group_by("day", "resource_id", "workload")
        .agg(
            effective_cost=pl.col("effective_cost").fill_null(0.0).sum(),
            # A basis no line of the group gives (Cost Explorer has no ListCost) stays unknown.
            billed_cost=pl.when(pl.col("billed_cost").is_not_null().any()).then(
                pl.col("billed_cost").sum()
            ),
            list_cost=pl.when(pl.col("list_cost").is_not_null().any()).then(
                pl.col("list_cost").sum()
            ),
        )
        .select(
            "day",
            host=pl.col("resource_id"),
            owner=pl.col("workload").fill_null(UNTAGGED),
            effective_cost="effective_cost",
            billed_cost="billed_cost",
            list_cost="list_cost",
        )
    )


def _measured_rows(
    bill: pl.DataFrame, bill_total: pl.DataFrame, tele: pl.DataFrame, tele_total: pl.DataFrame
) -> pl.DataFrame:
    """Billed instances with telemetry: each bill group's money split by GPU-seconds."""
    is_idle = pl.col("w").is_null()
    return (
        bill.join(tele_total, on=["day", "host"], how="inner")
        .join(bill_total, on=["day", "host"], how="inner")
        .with_columns(
            group_frac=pl.when(pl.col("effective_cost_total") != 0)
            .then(pl.col("effective_cost") / pl.col("effective_cost_total"))
            .otherwise(1.0 / pl.col("groups"))
        )
        .join(tele, on=["day", "host"], how="inner")
        .with_columns(frac=pl.col("seconds") / pl.col("total_s"))
        .select(
            "day",
            "host",
            "gpu_model",
            workload=pl.coalesce("w", "owner"),
            gpu_hours=pl.col("seconds") / 3600.0 * pl.col("group_frac"),
            busy_gpu_hours=pl.col("busy_seconds") / 3600.0 * pl.col("group_frac"),
            activity_gpu_hours=pl.col("activity_seconds") / 3600.0 * pl.col("group_frac"),
            cost_usd=pl.col("effective_cost") * pl.col("frac"),
            billed_cost_usd=pl.col("billed_cost") * pl.col("frac"),
            list_cost_usd=pl.col("list_cost") * pl.col("frac"),
            energy_kwh=pl.col("energy_kwh") * pl.col("group_frac"),
            idle_gpu_hours=pl.when(is_idle)
            .then(pl.col("seconds") / 3600.0 * pl.col("group_frac"))
            .otherwise(0.0),
            idle_cost_usd=pl.when(is_idle)
            .then(pl.col("effective_cost") * pl.col("frac"))
            .otherwise(0.0),
        )
    )


def _unmeasured_rows(bill: pl.DataFrame, tele_total: pl.DataFrame) -> pl.DataFrame:
    """Billed resources without telemetry: their money, to the workload their tag names."""
    return bill.join(tele_total, on=["day", "host"], how="anti").select(
        "day",
        "host",
        gpu_model=pl.lit(None, pl.String),
        workload="owner",
        gpu_hours=pl.lit(0.0),
        busy_gpu_hours=pl.lit(0.0),
        activity_gpu_hours=pl.lit(0.0),
        cost_usd="effective_cost",
        billed_cost_usd="billed_cost",
        list_cost_usd="list_cost",
        energy_kwh=pl.lit(0.0),
        idle_gpu_hours=pl.lit(0.0),
        idle_cost_usd=pl.lit(0.0),
    )


def _unbilled_rows(
    tele: pl.DataFrame, bill_total: pl.DataFrame, placements: pl.DataFrame
) -> pl.DataFrame:
    """Cloud telemetry no bill line covers: its GPU-hours at no money."""
    is_idle = pl.col("w").is_null()
    return (
        tele.join(bill_total, on=["day", "host"], how="anti")
        .join(placements.select("host", "owner"), on="host", how="left")
        .select(
            "day",
            "host",
            "gpu_model",
            workload=pl.coalesce("w", "owner", pl.lit(UNTAGGED)),
            gpu_hours=pl.col("seconds") / 3600.0,
            busy_gpu_hours=pl.col("busy_seconds") / 3600.0,
            activity_gpu_hours=pl.col("activity_seconds") / 3600.0,
            cost_usd=pl.lit(0.0),
            billed_cost_usd=pl.lit(0.0),
            list_cost_usd=pl.lit(0.0),
            energy_kwh="energy_kwh",
            idle_gpu_hours=pl.when(is_idle).then(pl.col("seconds") / 3600.0).otherwise(0.0),
            idle_cost_usd=pl.lit(0.0),
        )
    )


def daily_ledger(
    usage: pl.DataFrame,
    billing_daily: pl.DataFrame,
    rates: pl.DataFrame,
    *,
    price_per_kwh: float,
    pue: float,
    local_hosts: Iterable[str] = (),
    placements: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per (day, placement, workload, host), LEDGER_SCHEMA.

    `usage` is hourly attribution (advisor.attribution.hourly_usage, optionally already through
    `held_usage`) or gpu_minute rows; a null or `__idle__` workload is unallocated GPU time.
    `billing_daily` has day, workload, resource_id, currency, effective_cost and, where known,
    billed_cost and list_cost (the warehouse's billing_daily shape).
    """
    bills = billing_daily
    for name in ("billed_cost", "list_cost"):
        if name not in bills.columns:
            bills = bills.with_columns(pl.col("effective_cost").alias(name))
    u = _usage_with_days(usage, bills, local_hosts)
    if placements is None:  # else `host_placements` over all bills (the ledger job's days)
        placements = host_placements(u["host"], bills, local_hosts)
    rows = pl.concat(
        [
            _local_rows(u, rates, price_per_kwh, pue),
            _cloud_rows(u, bills, placements),
        ],
        how="diagonal_relaxed",
    )
    if rows.height == 0:
        return pl.DataFrame(schema=LEDGER_SCHEMA)
    return (
        rows.group_by("day", "placement", "workload", "host")
        .agg(
            gpu_model=pl.col("gpu_model").drop_nulls().first(),
            gpu_hours=pl.col("gpu_hours").sum(),
            busy_gpu_hours=pl.col("busy_gpu_hours").sum(),
            activity_gpu_hours=pl.col("activity_gpu_hours").sum(),
            cost_usd=pl.col("cost_usd").sum(),
            idle_gpu_hours=pl.col("idle_gpu_hours").sum(),
            idle_cost_usd=pl.col("idle_cost_usd").sum(),
            billed_cost_usd=pl.when(pl.col("billed_cost_usd").is_not_null().any())
            .then(pl.col("billed_cost_usd").sum())
            .otherwise(None),
            list_cost_usd=pl.when(pl.col("list_cost_usd").is_not_null().any())
            .then(pl.col("list_cost_usd").sum())
            .otherwise(None),
            energy_kwh=pl.col("energy_kwh").sum(),
            unpriced_gpu_hours=pl.col("unpriced_gpu_hours").fill_null(0.0).sum(),
        )
        .with_columns(
            currency=pl.lit("USD"),
            busy_gpu_hours=pl.when(pl.col("activity_gpu_hours") > 0).then(pl.col("busy_gpu_hours")),
        )
        .select(list(LEDGER_SCHEMA))
        .cast(LEDGER_SCHEMA)
        .sort("day", "placement", "workload", "host", nulls_last=True)
    )
