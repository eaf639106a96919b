"""`gpuledger import samples`: GPU samples exported by the agent or another tool (DESIGN.md §3).

Every column `gpuledger collect --format csv` writes comes back as written, so the product takes
its own output back: MIG rows (`parent_gpu_uuid`, `mig_profile`), the DCGM profiling columns,
`activity_kind` and `source`. The measures (`util_pct`, memory, power) may be empty only where
the row says why: a MIG instance (NVML reports none), another activity signal (`sm_active_pct`,
for utilization), or a stated `activity_kind` (the agent's own output, where the GPU did not
report it). `ts` is always required and checked as every record time is (tables/timestamps.py).

A file of any size is read in chunks (collectors/streaming.py): `iter_samples_file` hands over
each chunk validated, so memory is bounded by the chunk, not the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from collectors.errors import InputError
from collectors.streaming import CHUNK_ROWS, TableStream
from collectors.tabular import as_text, record_time, to_float
from tables.records import ACTIVITY_KINDS, GPU_SAMPLE_REQUIRED, conform
from tables.timestamps import SAMPLE_SKEW

PROFILING_COLUMNS = ("sm_active_pct", "sm_occupancy_pct", "tensor_active_pct", "dram_active_pct")
PERCENT_COLUMNS = ("util_pct", *PROFILING_COLUMNS)
NONNEGATIVE_COLUMNS = ("mem_used_mib", "mem_total_mib", "power_w")
MEASURES = ("util_pct", *NONNEGATIVE_COLUMNS)
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
# Every column an import reads (others in the file are ignored).
READ_COLUMNS = (
    *GPU_SAMPLE_REQUIRED,
    "gpu_index",
    *OPTIONAL_NUMERIC,
    *OPTIONAL_TEXT,
    "activity_kind",
    "source",
)


def iter_samples_file(
    path: str | Path, *, now: datetime | None = None, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pl.DataFrame]:
    """The file's samples in the gpu_samples shape, chunk by chunk, each validated; raises
    InputError naming the file, row and column. `now` is the clock sample times are checked
    against (one for the whole file)."""
    path = Path(path)
    table = TableStream(path, chunk_rows=chunk_rows)
    missing = [c for c in GPU_SAMPLE_REQUIRED if c not in table.columns]
    if missing:
        raise InputError(path, f"missing required column(s): {', '.join(missing)}")
    now = now or datetime.now(UTC)
    rows = 0
    for chunk in table.chunks([c for c in table.columns if c in READ_COLUMNS]):
        rows += chunk.frame.height
        yield samples_chunk(path, chunk.frame, chunk.first_row, now)
    if rows == 0:
        raise InputError(path, "no rows")


def read_samples_file(path: str | Path, *, now: datetime | None = None) -> pl.DataFrame:
    """Read and validate one samples file whole (`iter_samples_file`, for small files)."""
    return pl.concat(list(iter_samples_file(path, now=now)), how="vertical")


def samples_chunk(path: Path, frame: pl.DataFrame, first: int, now: datetime) -> pl.DataFrame:
    """Validate one chunk of a samples file (file row `first` is its row 0) into the
    gpu_samples shape."""
    ts = record_time(path, frame, "ts", first, naive_is_utc=False, skew=SAMPLE_SKEW, now=now)
    out: dict[str, pl.Series] = {"ts": ts}
    for col in ("host", "gpu_uuid", "gpu_model"):
        text = as_text(frame, col)
        _require(path, text, col, first)
        out[col] = text
    for col in (*MEASURES, *OPTIONAL_NUMERIC):
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
    _require_measures(path, out, kinds, first)
    return _with_kinds(pl.DataFrame(out), kinds, sources, "sm_active_pct" in out)


def _with_kinds(
    result: pl.DataFrame, kinds: pl.Series | None, sources: pl.Series | None, has_sm: bool
) -> pl.DataFrame:
    """`activity_kind` and `source` as stated, else the import's defaults."""
    result = result.with_columns(
        activity_kind=(kinds if kinds is not None else pl.lit(None, pl.String)),
        source=(sources if sources is not None else pl.lit(None, pl.String)),
    )
    result = result.with_columns(pl.col("source").fill_null("import"))
    # Without a stated kind, SM active in an export most often comes from DCGM.
    result = result.with_columns(
        pl.col("activity_kind").fill_null(
            pl.when(pl.col("sm_active_pct").is_not_null() if has_sm else False)
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


def _require_measures(
    path: Path, out: dict[str, pl.Series], kinds: pl.Series | None, first: int
) -> None:
    """Utilization, memory and power are required on every row but those that say why one is
    missing: a MIG instance, a stated activity kind, and for utilization another activity
    signal (see the module docstring). An empty one elsewhere is a refused row, never a NULL."""
    explained = pl.Series([False] * len(out["ts"]))
    if "parent_gpu_uuid" in out:
        explained = explained | out["parent_gpu_uuid"].is_not_null()
    if kinds is not None:
        explained = explained | kinds.is_not_null()
    for col in MEASURES:
        why = explained
        if col == "util_pct" and "sm_active_pct" in out:
            why = why | out["sm_active_pct"].is_not_null()
        missing = out[col].is_null() & ~why
        if missing.any():
            i = int(missing.arg_true()[0])
            also = ", or with sm_active_pct" if col == "util_pct" else ""
            raise InputError(
                path,
                "value required (may be empty only on MIG rows with parent_gpu_uuid, or with "
                f"activity_kind{also})",
                row=i + first,
                column=col,
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
