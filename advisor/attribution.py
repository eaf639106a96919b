"""GPU time per workload: allocated and busy GPU-seconds per workload, GPU and hour (DESIGN.md §2).

Pure functions, frames in and frames out. The input is the warehouse's per-minute rollups, whose
`workload` is the GPU's dominant workload (collectors record the process with the most SM share,
else the most memory). Where several workloads shared a GPU in a minute, the per-process samples
say how much each had: the minute is split by their SM share where NVML reported one, else by
their memory share, else evenly. GPU time with no process is `__idle__` here; the ledger decides
who pays for it (local: `__idle__` itself; cloud: the instance's owner).

A MIG instance is attributed like a GPU: its minute rows are already its share of the board
(warehouse/mig.py). `activity_seconds` are the seconds with an activity signal: busy fraction =
busy_seconds / activity_seconds, unknown where that is 0.
"""

from __future__ import annotations

import polars as pl

from tables.units import IDLE

GPU_MINUTE = ["minute", "host", "gpu_uuid"]

HOURLY_SCHEMA = pl.Schema(
    {
        "hour": pl.Datetime("us", "UTC"),
        "host": pl.String(),
        "gpu_uuid": pl.String(),
        "gpu_model": pl.String(),
        "workload": pl.String(),
        "seconds": pl.Float64(),
        "busy_seconds": pl.Float64(),
        "energy_j": pl.Float64(),
        "mem_peak_mib": pl.Float64(),
        "mem_total_mib": pl.Float64(),
        "activity_seconds": pl.Float64(),  # of `seconds`, those with an activity signal
        "parent_gpu_uuid": pl.String(),  # a MIG instance's board (warehouse/mig.py)
        "mig_profile": pl.String(),
    }
)
# Columns hourly_usage takes from minute rows when they have them (older frames lack them).
_OPTIONAL: dict[str, pl.DataType] = {
    "mem_used_max_mib": pl.Float64(),
    "mem_total_mib": pl.Float64(),
    "energy_j": pl.Float64(),
    "parent_gpu_uuid": pl.String(),
    "mig_profile": pl.String(),
}


def minute_shares(process_minutes: pl.DataFrame) -> pl.DataFrame:
    """Each workload's share of a shared GPU-minute, with its memory in that minute.

    `process_minutes`: minute, host, gpu_uuid, workload, sm_pct_sum, sm_samples, used_mib_sum,
    samples (warehouse.results.PROCESS_SHARES_SQL). SM share wins where any process of the minute
    had SM samples and they add up to more than zero (NVML reports 0 % for a process that ran no
    kernel); memory share otherwise; an even split when neither is known.
    """
    if process_minutes.height == 0:
        return pl.DataFrame(
            schema={
                "minute": pl.Datetime("us", "UTC"),
                "host": pl.String,
                "gpu_uuid": pl.String,
                "workload": pl.String,
                "share": pl.Float64,
                "mem_mib": pl.Float64,
            }
        )
    sm = pl.col("sm_pct_sum").fill_null(0.0)
    mem = pl.col("used_mib_sum").fill_null(0.0)
    return (
        process_minutes.with_columns(
            sm_total=sm.sum().over(GPU_MINUTE),
            mem_total=mem.sum().over(GPU_MINUTE),
            n=pl.len().over(GPU_MINUTE),
        )
        .with_columns(
            share=pl.when(pl.col("sm_total") > 0)
            .then(sm / pl.col("sm_total"))
            .when(pl.col("mem_total") > 0)
            .then(mem / pl.col("mem_total"))
            .otherwise(1.0 / pl.col("n")),
            mem_mib=pl.col("used_mib_sum") / pl.col("samples"),
        )
        .select(*GPU_MINUTE, "workload", "share", "mem_mib")
    )


def _with_optional(minutes: pl.DataFrame) -> pl.DataFrame:
    """`minutes` with the optional columns it lacks: nulls, and `activity_seconds` = `seconds`
    (frames from before it existed had a signal in every second)."""
    for name, dtype in _OPTIONAL.items():
        if name not in minutes.columns:
            minutes = minutes.with_columns(pl.lit(None, dtype).alias(name))
    if "activity_seconds" not in minutes.columns:
        minutes = minutes.with_columns(activity_seconds=pl.col("seconds"))
    return minutes


def split_shared_minutes(minutes: pl.DataFrame, shares: pl.DataFrame) -> pl.DataFrame:
    """Minute rows with every shared GPU-minute's allocated time split across its workloads.

    Unallocated rows (no workload) stay as they are; the sums of seconds, busy seconds and energy
    are unchanged (the shares of a GPU-minute add up to one).
    """
    if shares.height == 0 or minutes.height == 0:
        return minutes
    minutes = _with_optional(minutes)
    allocated = pl.col("workload").is_not_null()
    keys = shares.select(GPU_MINUTE).unique()
    shared = minutes.filter(allocated).join(keys, on=GPU_MINUTE, how="semi")
    if shared.height == 0:
        return minutes
    rest = pl.concat(
        [
            minutes.filter(~allocated),
            minutes.filter(allocated).join(keys, on=GPU_MINUTE, how="anti"),
        ]
    )
    split = (
        shared.group_by(GPU_MINUTE)
        .agg(
            gpu_model=pl.col("gpu_model").first(),
            seconds=pl.col("seconds").sum(),
            busy_seconds=pl.col("busy_seconds").sum(),
            activity_seconds=pl.col("activity_seconds").fill_null(pl.col("seconds")).sum(),
            energy_j=pl.col("energy_j").sum(),
            mem_used_max_mib=pl.col("mem_used_max_mib").max(),
            mem_total_mib=pl.col("mem_total_mib").max(),
            parent_gpu_uuid=pl.col("parent_gpu_uuid").first(),
            mig_profile=pl.col("mig_profile").first(),
        )
        .join(shares, on=GPU_MINUTE, how="inner")
        .with_columns(
            seconds=pl.col("seconds") * pl.col("share"),
            busy_seconds=pl.col("busy_seconds") * pl.col("share"),
            activity_seconds=pl.col("activity_seconds") * pl.col("share"),
            energy_j=pl.col("energy_j") * pl.col("share"),
            mem_used_max_mib=pl.coalesce("mem_mib", pl.col("mem_used_max_mib") * pl.col("share")),
        )
        .select(rest.columns)
    )
    return pl.concat([rest, split.cast(rest.schema)])


def hourly_usage(minutes: pl.DataFrame, shares: pl.DataFrame | None = None) -> pl.DataFrame:
    """Allocated and busy GPU-seconds per hour, GPU and workload (`__idle__`: no process).

    `minutes`: gpu_minute rows (minute, host, gpu_uuid, gpu_model, workload, seconds,
    busy_seconds, activity_seconds, energy_j, mem_used_max_mib, mem_total_mib, parent_gpu_uuid,
    mig_profile); `shares`: `minute_shares` output. A MIG instance's rows are already its share
    of the board (warehouse/mig.py): it is attributed like a GPU. Rows without
    `activity_seconds` (frames from before it existed) had a signal in every second.
    """
    if minutes.height == 0:
        return pl.DataFrame(schema=HOURLY_SCHEMA)
    minutes = _with_optional(minutes)
    split = split_shared_minutes(minutes, shares) if shares is not None else minutes
    return (
        split.with_columns(
            hour=pl.col("minute").dt.truncate("1h"),
            workload=pl.col("workload").fill_null(IDLE),
        )
        .group_by("hour", "host", "gpu_uuid", "workload")
        .agg(
            gpu_model=pl.col("gpu_model").drop_nulls().first(),
            seconds=pl.col("seconds").sum(),
            busy_seconds=pl.col("busy_seconds").fill_null(0.0).sum(),
            energy_j=pl.col("energy_j").fill_null(0.0).sum(),
            mem_peak_mib=pl.col("mem_used_max_mib").max(),
            mem_total_mib=pl.col("mem_total_mib").max(),
            # Unknown on old rows (null): the busy seconds were counted over all of them.
            activity_seconds=pl.col("activity_seconds").fill_null(pl.col("seconds")).sum(),
            parent_gpu_uuid=pl.col("parent_gpu_uuid").drop_nulls().first(),
            mig_profile=pl.col("mig_profile").drop_nulls().first(),
        )
        .filter(pl.col("seconds") > 0)
        .select(list(HOURLY_SCHEMA))
        .cast(HOURLY_SCHEMA)
        .sort("hour", "host", "gpu_uuid", "workload")
    )
