"""Local spare capacity: per host and GPU class, how much of its time was `__idle__`, in which
hours of the week, at what power, and which workloads keep it busy."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from advisor.recommend.usage import (
    Window,
    busy_fraction,
    hour_of_week,
    with_activity,
    with_class,
)


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


def local_capacity(usage: pl.DataFrame, classes: pl.DataFrame, window: Window) -> LocalCapacity:
    """Spare capacity of every local (host, GPU class) from its `__idle__` time."""
    local = with_activity(usage).filter(pl.col("placement") == "local")
    if local.height == 0:
        return LocalCapacity.empty()
    local = with_class(local, classes)
    busy = (
        local.filter(~pl.col("idle"))
        .group_by("host", "gpu_class", "workload")
        .agg(busy_fraction=busy_fraction())
    )
    return LocalCapacity(_per_class(local), _spare_by_hour(local, window), busy)


def _per_class(local: pl.DataFrame) -> pl.DataFrame:
    """Per (host, class): its GPUs, seconds, spare share and power per GPU."""
    return (
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


def _spare_by_hour(local: pl.DataFrame, window: Window) -> dict[tuple[str, str], dict[int, float]]:
    """(host, class) -> hour of the week -> idle GPUs on average over the window."""
    counts = window.hour_of_week_counts()
    idle = (
        local.filter(pl.col("idle"))
        .with_columns(how=hour_of_week())
        .group_by("host", "gpu_class", "how")
        .agg(gpu_hours=pl.col("seconds").sum() / 3600.0)
    )
    spare: dict[tuple[str, str], dict[int, float]] = {}
    for host, klass, how, hours in idle.iter_rows():
        spare.setdefault((host, klass), {})[how] = hours / max(counts.get(how, 1), 1)
    return spare


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
