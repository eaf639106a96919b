"""`gpuledger import samples`: GPU samples exported by the agent or another tool (DESIGN.md §3).

Every column `gpuledger collect --format csv` writes comes back as written, so the product takes
its own output back: MIG rows (`parent_gpu_uuid`, `mig_profile`), the DCGM profiling columns,
`activity_kind` and `source`. `util_pct` may be empty only where the row says why there is no
utilization: a MIG instance (NVML reports none), another activity signal (`sm_active_pct`), or
a stated `activity_kind` (the agent's own output, where the GPU did not report it).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from collectors.errors import InputError
from collectors.tabular import as_text, read_table, to_float, to_utc
from tables.records import ACTIVITY_KINDS, GPU_SAMPLE_REQUIRED, conform

PROFILING_COLUMNS = ("sm_active_pct", "sm_occupancy_pct", "tensor_active_pct", "dram_active_pct")
PERCENT_COLUMNS = ("util_pct", *PROFILING_COLUMNS)
NONNEGATIVE_COLUMNS = ("mem_used_mib", "mem_total_mib", "power_w")
OPTIONAL_NUMERIC = (
    *PROFILING_COLUMNS,
    "energy_mj",
    "sm_clock_mhz",
    "temperature_c",
    "power_limit_w",
    "ecc_errors",
    "xid_error",
)
OPTIONAL_TEXT = ("parent_gpu_uuid", "mig_profile", "workload")
# What a file's `source` column may say: the collectors that write samples, and import itself.
SOURCES = ("nvml", "smi", "prometheus", "demo", "import")


def read_samples_file(path: str | Path) -> pl.DataFrame:
    """Read and validate one samples file into the gpu_samples shape; raises InputError."""
    path = Path(path)
    frame, first = read_table(path)
    if frame.height == 0:
        raise InputError(path, "no rows")
    missing = [c for c in GPU_SAMPLE_REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(path, f"missing required column(s): {', '.join(missing)}")
    out: dict[str, pl.Series] = {"ts": to_utc(path, frame, "ts", first, naive_is_utc=False)}
    for col in ("host", "gpu_uuid", "gpu_model"):
        text = as_text(frame, col)
        _require(path, text, col, first)
        out[col] = text
    for col in ("util_pct", "mem_used_mib", "mem_total_mib", "power_w", *OPTIONAL_NUMERIC):
        if col in frame.columns:
            out[col] = to_float(path, frame, col, first)
    for col in PERCENT_COLUMNS:
        if col in out:
            _check_range(path, out[col], col, first, 0.0, 100.0)
    for col in NONNEGATIVE_COLUMNS:
        _check_range(path, out[col], col, first, 0.0, None)
    over = out["mem_used_mib"] > out["mem_total_mib"]
    if over.fill_null(False).any():
        i = int(over.fill_null(False).arg_true()[0])
        raise InputError(
            path, "memory used exceeds memory total", row=i + first, column="mem_used_mib"
        )
    if "gpu_index" in frame.columns:
        idx = to_float(path, frame, "gpu_index", first)
        out["gpu_index"] = idx.cast(pl.Int32, strict=False)
    for col in OPTIONAL_TEXT:
        if col in frame.columns:
            out[col] = as_text(frame, col)
    kinds = _one_of(path, frame, "activity_kind", ACTIVITY_KINDS, first)
    sources = _one_of(path, frame, "source", SOURCES, first)
    _require_util(path, out, kinds, first)
    result = pl.DataFrame(out).with_columns(
        activity_kind=(kinds if kinds is not None else pl.lit(None, pl.String)),
        source=(sources if sources is not None else pl.lit(None, pl.String)),
    )
    result = result.with_columns(pl.col("source").fill_null("import"))
    # Without a stated kind, SM active in an export most often comes from DCGM.
    result = result.with_columns(
        pl.col("activity_kind").fill_null(
            pl.when(pl.col("sm_active_pct").is_not_null() if "sm_active_pct" in out else False)
            .then(pl.lit("dcgm"))
            .otherwise(pl.lit("nvml_util"))
        )
    )
    return conform(result, "gpu_samples")


def _one_of(
    path: Path, frame: pl.DataFrame, column: str, allowed: tuple[str, ...], first: int
) -> pl.Series | None:
    """An optional text column whose values must be among `allowed` (empty is allowed)."""
    if column not in frame.columns:
        return None
    values = as_text(frame, column)
    bad = values.is_not_null() & ~values.is_in(list(allowed))
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputError(path, f"must be one of {', '.join(allowed)}", row=i + first, column=column)
    return values


def _require_util(
    path: Path, out: dict[str, pl.Series], kinds: pl.Series | None, first: int
) -> None:
    """`util_pct` is required on every row but those that say why it is missing: a MIG instance,
    another activity signal, or a stated activity kind (see the module docstring)."""
    util = out["util_pct"]
    explained = pl.Series([False] * len(util))
    for col in ("parent_gpu_uuid", "sm_active_pct"):
        if col in out:
            explained = explained | out[col].is_not_null()
    if kinds is not None:
        explained = explained | kinds.is_not_null()
    missing = util.is_null() & ~explained
    if missing.any():
        i = int(missing.arg_true()[0])
        raise InputError(
            path,
            "value required (may be empty only on MIG rows with parent_gpu_uuid, or with "
            "sm_active_pct or activity_kind)",
            row=i + first,
            column="util_pct",
        )


def _require(path: Path, values: pl.Series, column: str, first: int) -> None:
    nulls = values.is_null()
    if nulls.any():
        i = int(nulls.arg_true()[0])
        raise InputError(path, "value required", row=i + first, column=column)


def _check_range(
    path: Path, values: pl.Series, column: str, first: int, lo: float, hi: float | None
) -> None:
    bad = values < lo
    if hi is not None:
        bad = bad | (values > hi)
    bad = bad.fill_null(False) | values.is_nan().fill_null(False)
    if bad.any():
        i = int(bad.arg_true()[0])
        limit = f"between {lo:g} and {hi:g}" if hi is not None else f"at least {lo:g}"
        raise InputError(
            path, f"{values[i]} is out of range (must be {limit})", row=i + first, column=column
        )
