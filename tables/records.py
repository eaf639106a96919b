"""The normalized record shapes every collector emits.

Collectors produce Polars frames with exactly these columns and dtypes (`conform` adds the
optional ones as nulls and casts), keyed by GPU UUID, never by index. The warehouse stores them
as they are; `import samples` files are validated into the same shape.
"""

from __future__ import annotations

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")

# Which activity signal a sample carries (DESIGN.md §2 "Activity").
ACTIVITY_KINDS = ("gpm", "dcgm", "nvml_util")

GPU_SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "ts": UTC_TS,
    "host": pl.String(),
    "gpu_uuid": pl.String(),
    "gpu_index": pl.Int32(),
    "gpu_model": pl.String(),
    "util_pct": pl.Float64(),  # NVML utilization.gpu (any kernel running), 0-100
    "sm_active_pct": pl.Float64(),  # GPM or DCGM SM active, 0-100, null when unknown
    "activity_kind": pl.String(),  # one of ACTIVITY_KINDS
    "mem_used_mib": pl.Float64(),
    "mem_total_mib": pl.Float64(),
    "power_w": pl.Float64(),
    "energy_mj": pl.Float64(),  # total energy counter since driver load, millijoules
    "sm_clock_mhz": pl.Float64(),
    "temperature_c": pl.Float64(),
    "sm_occupancy_pct": pl.Float64(),
    "tensor_active_pct": pl.Float64(),
    "dram_active_pct": pl.Float64(),
    "parent_gpu_uuid": pl.String(),  # set on MIG instances: the physical GPU
    "mig_profile": pl.String(),
    "workload": pl.String(),  # null: no process on the GPU
    "source": pl.String(),  # nvml | smi | prometheus | demo | import
}

# Columns an `import samples` file must have (DESIGN.md §3).
GPU_SAMPLE_REQUIRED = (
    "ts",
    "host",
    "gpu_uuid",
    "gpu_model",
    "util_pct",
    "mem_used_mib",
    "mem_total_mib",
    "power_w",
)

PROCESS_SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "ts": UTC_TS,
    "host": pl.String(),
    "gpu_uuid": pl.String(),
    "pid": pl.Int64(),
    "user": pl.String(),
    "command": pl.String(),
    "container": pl.String(),
    "pod": pl.String(),
    "namespace": pl.String(),
    "used_mib": pl.Float64(),
    "sm_pct": pl.Float64(),  # per-process SM share, null when NVML gives none
    "workload": pl.String(),
    "source": pl.String(),
}

HEALTH_SCHEMA: dict[str, pl.DataType] = {
    "ts": UTC_TS,
    "host": pl.String(),
    "gpu_uuid": pl.String(),
    "kind": pl.String(),  # gpu_lost | unknown_error | driver_missing | ...
    "message": pl.String(),
    "source": pl.String(),
}

# FOCUS-shaped billing rows (DESIGN.md §2 "Cloud cost"; issue 4 lists the columns).
BILLING_SCHEMA: dict[str, pl.DataType] = {
    "ChargePeriodStart": UTC_TS,
    "ChargePeriodEnd": UTC_TS,
    "BillingPeriodStart": UTC_TS,
    "BillingAccountId": pl.String(),
    "ProviderName": pl.String(),
    "ServiceName": pl.String(),
    "ResourceId": pl.String(),
    "SkuId": pl.String(),
    "ChargeCategory": pl.String(),
    "PricingUnit": pl.String(),
    "PricingQuantity": pl.Float64(),
    "ConsumedQuantity": pl.Float64(),
    "BilledCost": pl.Float64(),
    "EffectiveCost": pl.Float64(),
    "ListCost": pl.Float64(),
    "BillingCurrency": pl.String(),
    "Tags": pl.String(),  # JSON object text
    "RegionId": pl.String(),
    "InstanceType": pl.String(),  # from the SKU/usage type where the source tells it
    "workload": pl.String(),  # the value of the workload tag, null if untagged
    "source": pl.String(),  # focus | cur | aws_ce | demo
    "scope": pl.String(),  # replace key: a later batch with the same scope replaces these rows
}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "gpu_samples": GPU_SAMPLE_SCHEMA,
    "process_samples": PROCESS_SAMPLE_SCHEMA,
    "health": HEALTH_SCHEMA,
    "billing_items": BILLING_SCHEMA,
}


def conform(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Return `frame` with exactly the columns of `kind`, in order, missing ones as nulls."""
    schema = SCHEMAS[kind]
    if frame.width == 0:  # selecting literals from a frame without columns would make a row
        return empty(kind)
    unknown = set(frame.columns) - set(schema)
    if unknown:
        raise ValueError(f"{kind}: unknown columns {sorted(unknown)}")
    return frame.select(
        [
            pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )


def empty(kind: str) -> pl.DataFrame:
    """An empty frame of `kind`."""
    return pl.DataFrame(schema=SCHEMAS[kind])


class Batch:
    """What one collector tick yields: GPU samples, per-process samples and health records."""

    __slots__ = ("gpu_samples", "process_samples", "health")

    def __init__(
        self,
        gpu_samples: pl.DataFrame | None = None,
        process_samples: pl.DataFrame | None = None,
        health: pl.DataFrame | None = None,
    ) -> None:
        self.gpu_samples = (
            conform(gpu_samples, "gpu_samples") if gpu_samples is not None else empty("gpu_samples")
        )
        self.process_samples = (
            conform(process_samples, "process_samples")
            if process_samples is not None
            else empty("process_samples")
        )
        self.health = conform(health, "health") if health is not None else empty("health")

    def frames(self) -> dict[str, pl.DataFrame]:
        """The non-empty frames by spool kind."""
        out = {
            "gpu_samples": self.gpu_samples,
            "process_samples": self.process_samples,
            "health": self.health,
        }
        return {k: v for k, v in out.items() if v.height}
