"""Wasted high-end GPU time (DESIGN.md §2): pure functions over Polars frames of minute rollups.

A GPU minute of an allocated high-end GPU falls into at most one kind, tested in this order:
- `inefficient_busy`: utilization.gpu at or above `busy_util_pct` but SM active under
  `inefficient_sm_active_pct` (only where SM active is known); the idle SM share is wasted;
- `allocated_idle`: activity (SM active where known, else utilization.gpu) under
  `idle_activity_pct`; every second is wasted;
- `over_powered`: working, but its memory (plus headroom) and its throughput need
  (activity x the class's relative throughput) fit a smaller, cheaper GPU class of the catalog;
  the price difference to that class is wasted.
Consecutive minutes of one kind on one GPU and workload form a run (a missing minute is
tolerated, a longer gap ends it); a run long enough for its kind is what an alert reports.
A minute whose activity is unknown (neither SM active nor utilization: a MIG instance without
DCGM profiling) is no evidence of idleness or of anything else: it falls into no kind.

MIG (warehouse/mig.py): an instance's minute rows carry its share of the board (`board_share`)
and GPU-seconds already scaled by it; a run's duration is clock time, its wasted seconds and
money are GPU-seconds at the board's price, and an instance is never called over-powered (its
smaller alternative is a smaller profile of the same board, which the catalog does not price).

Money is the GPU's cost per second: local GPUs capital + operations per GPU-hour
(`advisor.ledger.local_rates`); cloud GPUs the catalog's on-demand price of the instance type the
bill names for that host, divided by its GPU count, else the catalog's cheapest on-demand price
per GPU of the GPU class.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from advisor.ledger import cloud_hosts, host_placements, local_rates
from config.gpu_class import GpuClasses
from config.settings import Config
from tables.stored import RESULTS_GPU_COST_RATES, RESULTS_WASTE_DAILY
from tables.units import IDLE, MIB_PER_GIB, MINUTE_SIGNALS, UNTAGGED, activity

KINDS = ("allocated_idle", "inefficient_busy", "over_powered")
# A run whose GPU has sent nothing for this long is over (the host stopped or lost its agent).
STALE_AFTER = timedelta(minutes=15)

RATE_SCHEMA = {
    "host": pl.String,
    "gpu_model": pl.String,
    "placement": pl.String,
    "usd_per_hour": pl.Float64,
    "price_basis": pl.String,
}
CLOUD_SCHEMA = {"host": pl.String, "instance_type": pl.String, "owner": pl.String}
RUN_SCHEMA = pl.Schema(
    {
        "host": pl.String(),
        "gpu_uuid": pl.String(),
        "gpu_model": pl.String(),
        "workload": pl.String(),
        "kind": pl.String(),
        "started_at": pl.Datetime("us", "UTC"),
        "ended_at": pl.Datetime("us", "UTC"),
        "ongoing": pl.Boolean(),
        "duration_s": pl.Float64(),
        "wasted_s": pl.Float64(),
        "usd_per_hour": pl.Float64(),
        "wasted_usd": pl.Float64(),
        "placement": pl.String(),
        "price_basis": pl.String(),
        "activity_pct": pl.Float64(),
        "util_pct": pl.Float64(),
        "sm_active_pct": pl.Float64(),
        "mem_used_max_gib": pl.Float64(),
        "suggested_class": pl.String(),
        "suggested_usd_per_hour": pl.Float64(),
    }
)


def _cloud_class_prices(catalog: pl.DataFrame) -> pl.DataFrame:
    """The cheapest on-demand price per GPU of each GPU class among the catalog's instances."""
    return (
        catalog.filter(
            (pl.col("kind") == "instance") & pl.col("on_demand_usd_per_hour").is_not_null()
        )
        .group_by("gpu_model")
        .agg((pl.col("on_demand_usd_per_hour") / pl.col("gpu_count")).min().alias("usd_per_hour"))
        .rename({"gpu_model": "klass"})
    )


def billed_hosts(resources: pl.DataFrame, instances: pl.DataFrame) -> pl.DataFrame:
    """The `cloud` frame every waste computation takes: host, instance_type and owner of each host
    the bill names, over all time, owned as the ledger owns them (`advisor.ledger.cloud_hosts`).
    `resources`: resource_id, workload of the bill's days; `instances`: host, instance_type."""
    return cloud_hosts(resources).join(
        instances.select("host", "instance_type").unique("host"), on="host", how="left"
    )


def run_reach(cfg: Config) -> timedelta:
    """How far around a span the minutes are read so that every run touching it is seen whole:
    twice the longest run [thresholds] asks for, and at least an hour."""
    t = cfg.thresholds
    longest = max(t.idle_min_minutes, t.inefficient_min_minutes, t.overpowered_min_minutes)
    return max(timedelta(hours=1), timedelta(minutes=2 * longest))


def placements(hosts: pl.Series, cloud: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    """host, placement, owner and instance_type, placed as the ledger places them
    (`advisor.ledger.host_placements`: cloud when the bill names the host or it is an EC2
    instance id, unless [[local.hosts]] lists it). `cloud` has one row per host the bill names:
    host (= ResourceId), instance_type, owner (its workload tag)."""
    bills = cloud.select(resource_id="host", workload="owner")
    local = [h.name for h in cfg.local.hosts]
    return host_placements(hosts, bills, local).join(
        cloud.select("host", "instance_type"), on="host", how="left"
    )


def gpu_rates(
    gpus: pl.DataFrame, cloud: pl.DataFrame, cfg: Config, catalog: pl.DataFrame
) -> pl.DataFrame:
    """USD per GPU-hour of each (host, gpu_model) in `gpus`, with its placement and price basis
    (`cloud`: host, instance_type, owner of the hosts the bill names)."""
    pairs = gpus.select("host", "gpu_model").unique()
    if pairs.height == 0:
        return pl.DataFrame(schema=RATE_SCHEMA)
    instances = catalog.filter(pl.col("kind") == "instance").select(
        instance_type="name",
        instance_usd=pl.col("on_demand_usd_per_hour") / pl.col("gpu_count"),
        instance_gpus="gpu_count",
        instance_price="on_demand_usd_per_hour",
    )
    # one computation of the local rate (capital + operations of the resolved class), shared
    # with the ledger; it resolves every reported model to its class on the way
    local = local_rates(
        gpus.select(
            "host", "gpu_model", *(["mem_total_mib"] if "mem_total_mib" in gpus.columns else [])
        ),
        cfg,
        catalog,
    )
    frame = (
        pairs.join(placements(pairs["host"], cloud, cfg).drop("owner"), on="host", how="left")
        .join(local, on=["host", "gpu_model"], how="left")
        .rename({"gpu_class": "klass"})
        .join(instances, on="instance_type", how="left")
        .join(
            _cloud_class_prices(catalog).rename({"usd_per_hour": "class_usd"}),
            on="klass",
            how="left",
        )
    )
    cloud_rate, cloud_basis = _cloud_price()
    local_rate, local_basis = _local_price()
    return frame.select(
        "host",
        "gpu_model",
        "placement",
        usd_per_hour=pl.when(pl.col("placement") == "cloud")
        .then(cloud_rate)
        .otherwise(local_rate)
        .fill_null(0.0),
        price_basis=pl.when(pl.col("placement") == "cloud")
        .then(cloud_basis)
        .otherwise(local_basis),
    )


def _cloud_price() -> tuple[pl.Expr, pl.Expr]:
    """A cloud GPU's USD per hour (its instance's on-demand price per GPU, else the catalog's
    cheapest per GPU of its class) and that basis in words."""
    basis = (
        pl.when(pl.col("instance_usd").is_not_null())
        .then(
            pl.format(
                "on-demand {} ${}/h for {} {}",
                "instance_type",
                pl.col("instance_price").round(4),
                "instance_gpus",
                pl.when(pl.col("instance_gpus") == 1).then(pl.lit("GPU")).otherwise(pl.lit("GPUs")),
            )
        )
        .when(pl.col("class_usd").is_not_null())
        .then(pl.format("catalog on-demand {} per GPU", "klass"))
        .otherwise(pl.lit("unpriced: no catalog price for this cloud GPU"))
    )
    return pl.coalesce("instance_usd", "class_usd"), basis


def _local_price() -> tuple[pl.Expr, pl.Expr]:
    """A local GPU's USD per hour (capital + operations) and that basis in words."""
    basis = (
        pl.when(pl.col("priced"))
        .then(pl.lit("local capital + operations"))
        .otherwise(
            pl.format(
                "unpriced: {} has no catalog purchase price, local operations only",
                pl.col("gpu_model").fill_null("an unnamed GPU"),
            )
        )
    )
    return pl.col("capital_usd_per_gpu_hour") + pl.col("ops_usd_per_gpu_hour"), basis


def smaller_classes(catalog: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    """GPU classes that are not high-end, with memory, relative throughput and their price on
    each placement basis (cloud: cheapest on-demand per GPU; local: purchase-based rate of the
    classes for sale: one no longer sold is no class to move to)."""
    gpus = catalog.filter(
        (pl.col("kind") == "gpu")
        & ~pl.col("high_end").fill_null(False)
        & pl.col("gpu_memory_gib").is_not_null()
        & pl.col("relative_throughput").is_not_null()
    ).select(klass="gpu_model", class_mem_gib="gpu_memory_gib", class_tp="relative_throughput")
    cloud = gpus.join(_cloud_class_prices(catalog), on="klass", how="inner").with_columns(
        placement=pl.lit("cloud")
    )
    for_sale = catalog.filter(
        (pl.col("kind") == "gpu")
        & (pl.col("for_sale").fill_null(True) if "for_sale" in catalog.columns else pl.lit(True))
    )["gpu_model"]
    local = local_rates(
        gpus.select(host=pl.lit("(catalog)"), gpu_model="klass"), cfg, catalog
    ).filter(pl.col("priced") & pl.col("gpu_model").is_in(for_sale.implode()))
    local = gpus.join(
        local.select(
            klass="gpu_model",
            usd_per_hour=pl.col("capital_usd_per_gpu_hour") + pl.col("ops_usd_per_gpu_hour"),
        ),
        on="klass",
        how="inner",
    ).with_columns(placement=pl.lit("local"))
    return pl.concat([cloud, local], how="diagonal_relaxed").select(
        "placement", "klass", "class_mem_gib", "class_tp", "usd_per_hour"
    )


def allocated_minutes(minutes: pl.DataFrame, cloud: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    """Minute rows with the workload that holds the GPU: a process's workload, else on a cloud
    instance the workload its tag names (DESIGN.md §2, allocated GPU-seconds). Local minutes
    without a process are spare capacity (`__idle__`), not allocated, and are dropped."""
    places = placements(minutes["host"], cloud, cfg).select("host", "placement", "owner")
    no_process = pl.col("workload").is_null() | (pl.col("workload") == IDLE)
    return (
        minutes.join(places, on="host", how="left")
        .with_columns(
            workload=pl.when(~no_process)
            .then("workload")
            .when(pl.col("placement") == "cloud")
            .then(pl.coalesce("owner", pl.lit(UNTAGGED)))
            .otherwise(None)
        )
        .filter(pl.col("workload").is_not_null())
        .drop("owner", "placement")
    )


def classify_minutes(
    minutes: pl.DataFrame,
    rates: pl.DataFrame,
    small: pl.DataFrame,
    catalog: pl.DataFrame,
    cfg: Config,
) -> pl.DataFrame:
    """Allocated high-end minutes with `kind` (null when the minute wastes nothing)."""
    t = cfg.thresholds
    classes = GpuClasses(catalog)
    tp = classes.table.select(_class="gpu_model", class_tp_here="relative_throughput")
    frame = (
        classes.resolve_frame(_with_board_share(minutes), "gpu_model", "mem_total_mib", "_class")
        .filter(pl.col("_class").is_in(list(classes.high_end)))
        .join(tp, on="_class", how="left")
        .join(
            rates.select("host", "gpu_model", "placement", "usd_per_hour"),
            on=["host", "gpu_model"],
            how="left",
        )
        .with_columns(
            activity_pct=activity(*MINUTE_SIGNALS),
        )
        .with_columns(
            need_mem_gib=pl.col("mem_used_max_mib")
            / MIB_PER_GIB
            * (1 + cfg.advisor.memory_headroom_pct / 100),  # one headroom, as recommend uses
            need_tp=pl.col("activity_pct").fill_null(0.0) / 100.0 * pl.col("class_tp_here"),
        )
        .with_row_index("_row")
    )
    frame = frame.join(_fits_smaller(frame, small), on="_row", how="left").with_columns(
        pl.col("fits_smaller").fill_null(False)
    )
    return frame.with_columns(
        kind=pl.when(pl.col("activity_pct").is_null())
        .then(pl.lit(None, pl.String))  # unknown activity: no evidence either way
        .when(
            pl.col("sm_active_avg").is_not_null()
            & (pl.col("util_avg") >= t.busy_util_pct)
            & (pl.col("sm_active_avg") < t.inefficient_sm_active_pct)
        )
        .then(pl.lit("inefficient_busy"))
        .when(pl.col("activity_pct") < t.idle_activity_pct)
        .then(pl.lit("allocated_idle"))
        .when(pl.col("fits_smaller") & (pl.col("board_share") >= 1.0))
        .then(pl.lit("over_powered"))
        .otherwise(None)
    ).drop("_row", "_class")


def _fits_smaller(frame: pl.DataFrame, small: pl.DataFrame) -> pl.DataFrame:
    """`_row` of each minute whose memory and throughput need a smaller, cheaper class of the
    same placement holds (`fits_smaller` true)."""
    return (
        frame.select("_row", "placement", "need_mem_gib", "need_tp", "usd_per_hour")
        .join(small.rename({"usd_per_hour": "class_usd"}), on="placement", how="inner")
        .filter(
            (pl.col("class_mem_gib") >= pl.col("need_mem_gib"))
            & (pl.col("class_tp") >= pl.col("need_tp"))
            & (pl.col("class_usd") < pl.col("usd_per_hour"))
        )
        .select("_row")
        .unique()
        .with_columns(fits_smaller=pl.lit(True))
    )


def _clock_s() -> pl.Expr:
    """A minute row's seconds on the clock: its GPU-seconds over its share of the board."""
    return pl.col("seconds") / pl.col("board_share")


def _span_s() -> pl.Expr:
    """Seconds a minute row stands for on the clock: one minute, or its samples' interval."""
    return pl.max_horizontal(pl.lit(1.0), (_clock_s() / 60.0).round(0)) * 60.0


def _with_board_share(minutes: pl.DataFrame) -> pl.DataFrame:
    """`minutes` with `board_share` (1 where the frame has none: whole GPUs), never zero."""
    if "board_share" not in minutes.columns:
        return minutes.with_columns(board_share=pl.lit(1.0))
    share = pl.col("board_share").fill_null(1.0)
    return minutes.with_columns(board_share=pl.when(share > 0).then(share).otherwise(1.0))


def wasted_runs(
    minutes: pl.DataFrame,
    cloud: pl.DataFrame,
    catalog: pl.DataFrame,
    cfg: Config,
    *,
    now: datetime,
) -> pl.DataFrame:
    """Runs of wasted high-end GPU time long enough to alert on, one row per run (RUN_SCHEMA).

    `minutes` are gpu_minute rows (all GPUs; the GPU's newest minute decides whether a run is
    still going); `cloud` is host, instance_type, owner for the hosts the bill names.
    `ongoing` is true while the run is the newest thing its GPU reported, within STALE_AFTER.
    """
    if minutes.height == 0:
        return pl.DataFrame(schema=RUN_SCHEMA)
    newest = minutes.group_by("host", "gpu_uuid").agg(gpu_last=pl.col("minute").max())
    runs, _ = _priced_runs(minutes, cloud, catalog, cfg)
    return (
        runs.join(newest, on=["host", "gpu_uuid"], how="left")
        .with_columns(
            ongoing=(pl.col("last_minute") >= pl.col("gpu_last"))
            & (pl.col("ended_at") >= pl.lit(now) - STALE_AFTER),
            wasted_usd=pl.col("wasted_s") / 3600.0 * pl.col("waste_rate"),
        )
        .sort("started_at", "host", "gpu_uuid", "workload", "kind")
        .select(list(RUN_SCHEMA))
        .cast(RUN_SCHEMA)
    )


def wasted_days(
    minutes: pl.DataFrame, cloud: pl.DataFrame, catalog: pl.DataFrame, cfg: Config
) -> pl.DataFrame:
    """The runs of `wasted_runs`, one row per run and UTC day (RESULTS_WASTE_DAILY): each day's
    part holds the GPU-seconds and money of the run's minutes on that day, so a run's days add up
    to the run's own figures, and a period's waste is the sum of its days."""
    schema = RESULTS_WASTE_DAILY.polars_schema
    if minutes.height == 0:
        return pl.DataFrame(schema=schema)
    runs, run_minutes = _priced_runs(minutes, cloud, catalog, cfg)
    key = ["host", "gpu_uuid", "workload", "run", "kind"]
    whole = runs.select(
        *key,
        "gpu_model",
        "placement",
        "usd_per_hour",
        "price_basis",
        "suggested_class",
        "waste_rate",
        run_started_at="started_at",
        run_ended_at="ended_at",
    )
    return (
        run_minutes.select(*key, "minute", "span_s", "seconds", "board_share", "wasted_s")
        .join(whole, on=key, how="inner")
        .group_by(*key, day=pl.col("minute").dt.date())
        .agg(
            pl.col(
                "gpu_model",
                "placement",
                "usd_per_hour",
                "price_basis",
                "suggested_class",
                "waste_rate",
                "run_started_at",
                "run_ended_at",
            ).first(),
            started_at=pl.col("minute").min(),
            ended_at=(pl.col("minute") + pl.duration(seconds=pl.col("span_s"))).max(),
            duration_s=_clock_s().sum(),
            wasted_s=pl.col("wasted_s").sum(),
        )
        .with_columns(wasted_usd=pl.col("wasted_s") / 3600.0 * pl.col("waste_rate"))
        .sort("day", "run_started_at", "host", "gpu_uuid", "workload", "kind")
        .select(list(schema))
        .cast(schema)
    )


def _priced_runs(
    minutes: pl.DataFrame, cloud: pl.DataFrame, catalog: pl.DataFrame, cfg: Config
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the runs long enough, with their price, suggestion and `waste_rate` in USD per wasted
    GPU-hour; the classified minutes with their run, `span_s` and wasted GPU-seconds)."""
    rates = gpu_rates(minutes, cloud, cfg, catalog)
    small = smaller_classes(catalog, cfg)
    classified = classify_minutes(
        allocated_minutes(minutes, cloud, cfg), rates, small, catalog, cfg
    )
    run_minutes = _run_minutes(classified)
    runs = (
        _long_enough(_runs(run_minutes), cfg)
        .join(rates, on=["host", "gpu_model"], how="left")
        # A MIG instance's price is its share of the board's.
        .with_columns(usd_per_hour=pl.col("usd_per_hour") * pl.col("board_share"))
        .with_row_index("_run")
    )
    runs = runs.join(_suggestions(runs, small), on="_run", how="left").filter(
        (pl.col("kind") != "over_powered") | pl.col("suggested_class").is_not_null()
    )
    # wasted_s are GPU-seconds (a MIG instance's already scaled by its share of the board).
    waste_rate = (
        pl.when(pl.col("kind") == "over_powered")
        .then(pl.col("usd_per_hour") - pl.col("suggested_usd_per_hour"))
        .otherwise(pl.col("usd_per_hour") / pl.col("board_share"))
    )
    return runs.with_columns(waste_rate=waste_rate), run_minutes


def _run_minutes(classified: pl.DataFrame) -> pl.DataFrame:
    """Classified minutes of a kind with their `run` (consecutive minutes of one kind on one GPU
    and workload; a missing minute is tolerated, a longer gap ends the run), the seconds each
    stands for on the clock (`span_s`) and its wasted GPU-seconds (`wasted_s`)."""
    key = ["host", "gpu_uuid", "workload"]
    minutes = classified.sort([*key, "minute"]).with_columns(span_s=_span_s())
    prev_end = (pl.col("minute") + pl.duration(seconds=pl.col("span_s"))).shift().over(key)
    gap = pl.col("minute") - prev_end
    new_run = (
        prev_end.is_null()
        | (gap > pl.duration(minutes=1))
        | pl.col("kind").ne_missing(pl.col("kind").shift().over(key))
    )
    wasted = (
        pl.when(pl.col("kind") == "inefficient_busy")
        .then(pl.col("seconds") * (1 - pl.col("sm_active_avg") / 100.0))
        .otherwise(pl.col("seconds"))
    )
    return (
        minutes.with_columns(run=new_run.cum_sum().over(key))
        .filter(pl.col("kind").is_not_null())
        .with_columns(wasted_s=wasted)
    )


def _runs(run_minutes: pl.DataFrame) -> pl.DataFrame:
    """One row per run of `_run_minutes`, with its figures."""
    key = ["host", "gpu_uuid", "workload"]
    weight = pl.col("seconds")
    return run_minutes.group_by([*key, "run", "kind"]).agg(
        gpu_model=pl.col("gpu_model").last(),
        started_at=pl.col("minute").min(),
        last_minute=pl.col("minute").max(),
        ended_at=(pl.col("minute") + pl.duration(seconds=pl.col("span_s"))).max(),
        duration_s=_clock_s().sum(),
        wasted_s=pl.col("wasted_s").sum(),
        board_share=pl.col("board_share").mean(),
        activity_pct=(pl.col("activity_pct") * weight).sum() / weight.sum(),
        util_pct=(pl.col("util_avg") * weight).sum() / weight.sum(),
        sm_active_pct=(pl.col("sm_active_avg") * weight).sum()
        / weight.filter(pl.col("sm_active_avg").is_not_null()).sum(),
        mem_used_max_gib=pl.col("mem_used_max_mib").max() / MIB_PER_GIB,
        need_mem_gib=pl.col("need_mem_gib").max(),
        need_tp=pl.col("need_tp").max(),
    )


def _long_enough(runs: pl.DataFrame, cfg: Config) -> pl.DataFrame:
    """The runs at least as long as [thresholds] asks of their kind."""
    t = cfg.thresholds
    min_minutes = (
        pl.when(pl.col("kind") == "allocated_idle")
        .then(t.idle_min_minutes)
        .when(pl.col("kind") == "inefficient_busy")
        .then(t.inefficient_min_minutes)
        .otherwise(t.overpowered_min_minutes)
    )
    return runs.filter(
        pl.col("ended_at") - pl.col("started_at") >= pl.duration(minutes=min_minutes)
    )


def _suggestions(runs: pl.DataFrame, small: pl.DataFrame) -> pl.DataFrame:
    """Over-powered runs: the cheapest smaller class that fits the run's peaks on the same
    basis (`_run`, suggested_class, suggested_usd_per_hour)."""
    return (
        runs.filter(pl.col("kind") == "over_powered")
        .select("_run", "placement", "need_mem_gib", "need_tp", "usd_per_hour")
        .join(small.rename({"usd_per_hour": "class_usd"}), on="placement", how="inner")
        .filter(
            (pl.col("class_mem_gib") >= pl.col("need_mem_gib"))
            & (pl.col("class_tp") >= pl.col("need_tp"))
            & (pl.col("class_usd") < pl.col("usd_per_hour"))
        )
        .sort("class_usd", "klass")
        .group_by("_run")
        .agg(
            suggested_class=pl.col("klass").first(),
            suggested_usd_per_hour=pl.col("class_usd").first(),
        )
    )


def cost_rates_now(
    minutes: pl.DataFrame,
    cloud: pl.DataFrame,
    catalog: pl.DataFrame,
    cfg: Config,
    *,
    now: datetime,
) -> pl.DataFrame:
    """What every GPU costs per hour right now, split over the workloads on it in its newest
    minute (within STALE_AFTER): capital + operations or the cloud price, plus measured energy for
    local GPUs. GPU time with no process goes to `__idle__` locally, to the owner in the cloud."""
    schema = RESULTS_GPU_COST_RATES.polars_schema
    if minutes.height == 0:
        return pl.DataFrame(schema=schema)
    latest = _with_board_share(minutes).filter(
        (pl.col("minute") == pl.col("minute").max().over("host", "gpu_uuid"))
        & (pl.col("minute") >= pl.lit(now) - STALE_AFTER)
    )
    if latest.height == 0:
        return pl.DataFrame(schema=schema)
    rates = gpu_rates(latest, cloud, cfg, catalog)
    owners = placements(latest["host"], cloud, cfg).select("host", "owner")
    kwh = cfg.energy.price_per_kwh * cfg.energy.pue / 1000.0
    return (
        latest.join(rates, on=["host", "gpu_model"], how="left")
        .join(owners, on="host", how="left")
        .with_columns(
            share=pl.col("seconds") / pl.col("seconds").sum().over("host", "gpu_uuid"),
            workload=pl.coalesce(
                "workload",
                pl.when(pl.col("placement") == "cloud")
                .then(pl.coalesce("owner", pl.lit(UNTAGGED)))
                .otherwise(pl.lit(IDLE)),
            ),
        )
        .select(
            as_of=pl.lit(now).cast(pl.Datetime("us", "UTC")),
            host="host",
            gpu_uuid="gpu_uuid",
            gpu_model="gpu_model",
            workload="workload",
            placement="placement",
            share="share",
            # A MIG instance costs its share of the board; its power is already its share.
            usd_per_hour=pl.col("usd_per_hour") * pl.col("share") * pl.col("board_share"),
            energy_usd_per_hour=pl.when(pl.col("placement") == "local")
            .then(pl.col("power_avg_w").fill_null(0.0) * kwh * pl.col("share"))
            .otherwise(0.0),
            price_basis="price_basis",
            activity_pct=activity(*MINUTE_SIGNALS),
            power_w="power_avg_w",
        )
        .cast(schema)
    )
