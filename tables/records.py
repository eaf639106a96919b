"""The normalized record shapes every collector emits: the four spool kinds.

Collectors produce Polars frames with exactly these columns and dtypes (`conform` adds the
optional ones as nulls and casts), keyed by GPU UUID, never by index. The warehouse stores them
as they are (warehouse tables of the same names, `tables/stored.py`); `import samples` files are
validated into the same shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from tables.columns import UTC_TS, Column, Table

__all__ = [
    "ACTIVITY_KINDS",
    "BILLING_ITEMS",
    "BILLING_SCHEMA",
    "GPU_SAMPLES",
    "GPU_SAMPLE_REQUIRED",
    "GPU_SAMPLE_SCHEMA",
    "HEALTH",
    "HEALTH_SCHEMA",
    "PROCESS_SAMPLES",
    "PROCESS_SAMPLE_SCHEMA",
    "RECORDS",
    "SCHEMAS",
    "UTC_TS",
    "Batch",
    "conform",
    "empty",
    "read_spool_file",
    "scan_spool_files",
]

# Which activity signal a sample carries (DESIGN.md §2 "Activity").
ACTIVITY_KINDS = ("gpm", "dcgm", "nvml_util")

_S = pl.String()
_F = pl.Float64()

GPU_SAMPLES = Table(
    "gpu_samples",
    (
        Column("ts", UTC_TS, "", "when the GPU was read (UTC)"),
        Column("host", _S, "", "the agent's host id (on EC2 the instance id = FOCUS ResourceId)"),
        Column("gpu_uuid", _S, "", "the GPU's UUID (a MIG instance's own UUID)"),
        Column("gpu_index", pl.Int32(), "", "the driver's index of the GPU on its host", "gpu"),
        Column("gpu_model", _S, "", "the model name the source reports", "model"),
        Column("util_pct", _F, "%", "NVML utilization.gpu: time any kernel ran"),
        Column("sm_active_pct", _F, "%", "SM active (GPM or DCGM), null when unknown"),
        Column("activity_kind", _S, "", "which signal the sample carries: one of ACTIVITY_KINDS"),
        Column("mem_used_mib", _F, "MiB", "memory.used (never utilization.memory)", "memory GiB"),
        Column("mem_total_mib", _F, "MiB", "the GPU's memory", "of GiB"),
        Column("power_w", _F, "W", "power draw", "power W"),
        Column("energy_mj", _F, "mJ", "total energy counter since the driver loaded"),
        Column("sm_clock_mhz", _F, "MHz", "SM clock"),
        Column("temperature_c", _F, "°C", "GPU temperature"),
        Column("sm_occupancy_pct", _F, "%", "SM occupancy (DCGM profiling)"),
        Column("tensor_active_pct", _F, "%", "tensor pipes active (DCGM profiling)"),
        Column("dram_active_pct", _F, "%", "memory interface active (DCGM profiling)"),
        Column("parent_gpu_uuid", _S, "", "on a MIG instance: the physical board's UUID"),
        Column("mig_profile", _S, "", "on a MIG instance: its profile, e.g. 3g.40gb"),
        Column("workload", _S, "", "the workload of the GPU's process; null: no process"),
        Column("source", _S, "", "nvml | smi | prometheus | demo | import"),
        Column(
            "power_limit_w",
            _F,
            "W",
            "the enforced power limit (NVML, nvidia-smi power.limit, DCGM POWER_MGMT_LIMIT)",
            "limit W",
            since=14,
        ),
        Column(
            "ecc_errors",
            _F,
            "count",
            "uncorrected ECC errors since the driver loaded (volatile); null where not reported",
            "ECC errors",
            since=14,
        ),
        Column(
            "xid_error",
            _F,
            "",
            "the last XID error the GPU reported (DCGM XID_ERRORS); null where not reported",
            "last XID",
            since=14,
        ),
    ),
    "one row per GPU per instant, as a collector read it",
    key=("host", "gpu_uuid", "ts"),
)

PROCESS_SAMPLES = Table(
    "process_samples",
    (
        Column("ts", UTC_TS, "", "when the process was seen (UTC)"),
        Column("host", _S, "", "the agent's host id"),
        Column("gpu_uuid", _S, "", "the GPU the process runs on"),
        Column("pid", pl.Int64(), "", "process id (null where dcgm-exporter names only a pod)"),
        Column("user", _S, "", "the process's user"),
        Column("command", _S, "", "its command line"),
        Column("container", _S, "", "its container, where known"),
        Column("pod", _S, "", "its Kubernetes pod, where known"),
        Column("namespace", _S, "", "its Kubernetes namespace, where known"),
        Column("used_mib", _F, "MiB", "GPU memory the process holds"),
        Column("sm_pct", _F, "%", "the process's SM share; null when NVML gives none"),
        Column("workload", _S, "", "the workload its rules assign (unattributed:<user> if none)"),
        Column("source", _S, "", "nvml | smi | prometheus | demo | import"),
    ),
    "one row per process on a GPU per instant",
    # dcgm-exporter names pods, not pids: two pods on one GPU at one instant are two rows.
    key=("host", "gpu_uuid", "ts", "pid", "pod", "container"),
)

HEALTH = Table(
    "health",
    (
        Column("ts", UTC_TS, "", "when it happened (UTC)"),
        Column("host", _S, "", "the agent's host id"),
        Column("gpu_uuid", _S, "", "the GPU concerned, null for the whole host"),
        Column("kind", _S, "", "gpu_lost | unknown_error | driver_missing | ..."),
        Column("message", _S, "", "what the source said"),
        Column("source", _S, "", "the collector that saw it"),
    ),
    "what went wrong reading a GPU",
    key=("host", "gpu_uuid", "ts", "kind"),
)

# FOCUS-shaped billing rows (DESIGN.md §2 "Cloud cost"). The FOCUS columns keep their FOCUS names
# by design; money here is in BillingCurrency. EffectiveCost becomes `effective_cost` per day in
# the billing_daily reading (tables/stored.py) and the ledger's `cost_usd` for cloud rows.
BILLING_ITEMS = Table(
    "billing_items",
    (
        Column("ChargePeriodStart", UTC_TS, "", "FOCUS: start of the charge period"),
        Column("ChargePeriodEnd", UTC_TS, "", "FOCUS: end of the charge period"),
        Column("BillingPeriodStart", UTC_TS, "", "FOCUS: the billing period (month) it is in"),
        Column("BillingAccountId", _S, "", "FOCUS: the paying account"),
        Column("ProviderName", _S, "", "FOCUS: AWS, Microsoft, Google Cloud, ..."),
        Column("ServiceName", _S, "", "FOCUS: the service charged"),
        Column("ResourceId", _S, "", "FOCUS: the resource (an instance id = the agent's host)"),
        Column("SkuId", _S, "", "FOCUS: the SKU"),
        Column("ChargeCategory", _S, "", "FOCUS: Usage | Purchase | Tax | Credit | Adjustment"),
        Column("PricingUnit", _S, "", "FOCUS: the unit PricingQuantity counts"),
        Column("PricingQuantity", _F, "", "FOCUS: quantity in PricingUnit"),
        Column("ConsumedQuantity", _F, "", "FOCUS: quantity consumed"),
        Column("BilledCost", _F, "currency", "FOCUS: what the invoice charges (BillingCurrency)"),
        Column(
            "EffectiveCost",
            _F,
            "currency",
            "FOCUS: amortized cost after discounts (BillingCurrency)",
        ),
        Column("ListCost", _F, "currency", "FOCUS: cost at list price (BillingCurrency)"),
        Column("BillingCurrency", _S, "", "FOCUS: the currency of the three costs"),
        Column("Tags", _S, "", "FOCUS: resource tags as JSON object text"),
        Column("RegionId", _S, "", "FOCUS: the region"),
        Column("InstanceType", _S, "", "the instance type, where the SKU or usage type tells it"),
        Column("workload", _S, "", "the value of the workload tag, null if untagged"),
        Column("source", _S, "", "focus | cur | aws_ce | demo"),
        Column("scope", _S, "", "replace key: a later batch with the same scope replaces these"),
        Column(
            "CommitmentDiscountId",
            _S,
            "",
            "FOCUS: the commitment (reservation, savings plan) that covered the charge",
            since=10,
        ),
        Column(
            "CommitmentDiscountType",
            _S,
            "",
            "FOCUS: what kind of commitment it is (e.g. Reservation, Savings Plan)",
            since=10,
        ),
    ),
    "one bill line in FOCUS shape",
)
# The commitment a bill line was covered by (migration 10): stored after the batch column.
COMMITMENT_COLUMNS = ("CommitmentDiscountId", "CommitmentDiscountType")

RECORDS: dict[str, Table] = {
    t.name: t for t in (GPU_SAMPLES, PROCESS_SAMPLES, HEALTH, BILLING_ITEMS)
}

# The Polars shapes by spool kind, as other code has always imported them.
GPU_SAMPLE_SCHEMA: dict[str, pl.DataType] = GPU_SAMPLES.polars_schema
PROCESS_SAMPLE_SCHEMA: dict[str, pl.DataType] = PROCESS_SAMPLES.polars_schema
HEALTH_SCHEMA: dict[str, pl.DataType] = HEALTH.polars_schema
BILLING_SCHEMA: dict[str, pl.DataType] = BILLING_ITEMS.polars_schema
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "gpu_samples": GPU_SAMPLE_SCHEMA,
    "process_samples": PROCESS_SAMPLE_SCHEMA,
    "health": HEALTH_SCHEMA,
    "billing_items": BILLING_SCHEMA,
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


def read_spool_file(path: str | Path, kind: str) -> pl.DataFrame:
    """A spool file of `kind` with exactly the kind's columns: those the file lacks (an older
    agent's batch, written before a column existed) as nulls."""
    schema = pl.Schema(SCHEMAS[kind])
    return pl.read_parquet(path, columns=list(schema), schema=schema, missing_columns="insert")


def scan_spool_files(paths: list[Path], kind: str, **options: Any) -> pl.LazyFrame:
    """`read_spool_file` for many files at once, lazily (`options` go to `pl.scan_parquet`)."""
    schema = pl.Schema(SCHEMAS[kind])
    return pl.scan_parquet(paths, schema=schema, missing_columns="insert", **options)


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
