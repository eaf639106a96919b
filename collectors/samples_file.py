"""`gpuledger import samples`: GPU samples exported by the agent or another tool (DESIGN.md §3)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from collectors.errors import InputError
from collectors.schema import ACTIVITY_KINDS, GPU_SAMPLE_REQUIRED, conform
from collectors.tabular import as_text, read_table, to_float, to_utc

PERCENT_COLUMNS = ("util_pct", "sm_active_pct")
NONNEGATIVE_COLUMNS = ("mem_used_mib", "mem_total_mib", "power_w")
OPTIONAL_NUMERIC = ("sm_active_pct", "energy_mj", "sm_clock_mhz", "temperature_c")


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
    _require(path, out["util_pct"], "util_pct", first)
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
    if "workload" in frame.columns:
        out["workload"] = as_text(frame, "workload")
    kinds = as_text(frame, "activity_kind") if "activity_kind" in frame.columns else None
    if kinds is not None:
        bad = kinds.is_not_null() & ~kinds.is_in(list(ACTIVITY_KINDS))
        if bad.any():
            i = int(bad.arg_true()[0])
            raise InputError(
                path,
                f"must be one of {', '.join(ACTIVITY_KINDS)}",
                row=i + first,
                column="activity_kind",
            )
    result = pl.DataFrame(out).with_columns(
        activity_kind=(kinds if kinds is not None else pl.lit(None, pl.String)),
        source=pl.lit("import"),
    )
    # Without a stated kind, SM active in an export most often comes from DCGM.
    result = result.with_columns(
        pl.col("activity_kind").fill_null(
            pl.when(pl.col("sm_active_pct").is_not_null() if "sm_active_pct" in out else False)
            .then(pl.lit("dcgm"))
            .otherwise(pl.lit("nvml_util"))
        )
    )
    return conform(result, "gpu_samples")


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
