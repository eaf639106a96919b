"""The price catalog (`config/catalog.csv`): GPU classes and cloud instance types.

Prices are data: read offline, validated at start, dated by their `as_of` column (docs/catalog.md).
The optional `aliases` column names the reported GPU models a class answers to besides its own
name (config/gpu_class.py resolves every reported name through it); the optional `for_sale` column
says whether recommendations may propose buying the class.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import cast

import polars as pl

from tables.clouds import CLOUDS

CATALOG_SCHEMA = {
    "kind": pl.String,
    "name": pl.String,
    "provider": pl.String,
    "region": pl.String,
    "gpu_model": pl.String,
    "gpu_count": pl.Int64,
    "gpu_memory_gib": pl.Float64,
    "relative_throughput": pl.Float64,
    "high_end": pl.Boolean,
    "on_demand_usd_per_hour": pl.Float64,
    "spot_usd_per_hour": pl.Float64,
    "purchase_usd_per_gpu": pl.Float64,
    "for_sale": pl.Boolean,
    "source": pl.String,
    "as_of": pl.Date,
    "notes": pl.String,
    "aliases": pl.String,
    "reserved_1y_usd_per_hour": pl.Float64,
    "reserved_3y_usd_per_hour": pl.Float64,
}
REQUIRED = ("kind", "name", "gpu_model", "gpu_count", "gpu_memory_gib", "source", "as_of")
# Columns a catalog may leave out (older catalogs): they read as empty.
# An instance under a 1- or 3-year commitment (No Upfront), paid every hour of the term.
RESERVED_COLUMNS = ("reserved_1y_usd_per_hour", "reserved_3y_usd_per_hour")
OPTIONAL = ("for_sale", "aliases", *RESERVED_COLUMNS)


class CatalogError(ValueError):
    """The catalog file is malformed; the message names the file, row and column."""


def load_catalog(path: str | Path) -> pl.DataFrame:
    """Read and validate the catalog; row numbers in errors count the header as row 1."""
    path = Path(path)
    try:
        raw = pl.read_csv(path, infer_schema=False)
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalog file not found") from None
    except Exception as exc:
        raise CatalogError(f"{path}: not a readable CSV: {exc}") from None
    missing = [c for c in CATALOG_SCHEMA if c not in raw.columns and c not in OPTIONAL]
    if missing:
        raise CatalogError(f"{path}: missing column(s) {', '.join(missing)}")
    raw = raw.with_columns(
        pl.lit(None, pl.String).alias(c) for c in OPTIONAL if c not in raw.columns
    )
    out = {}
    for col, dtype in CATALOG_SCHEMA.items():
        values = raw[col].str.strip_chars().replace("", None)
        try:
            out[col] = _convert(values, dtype)
        except Exception:
            row = _first_bad(values, dtype)
            raise CatalogError(
                f"{path}: row {row + 2}, column {col}: {values[row]!r} is not a valid {dtype}"
            ) from None
    frame = pl.DataFrame(out)
    for col in REQUIRED:
        nulls = frame[col].is_null()
        if nulls.any():
            row = int(nulls.arg_true()[0])
            raise CatalogError(f"{path}: row {row + 2}, column {col}: value required")
    bad_kind = ~frame["kind"].is_in(["gpu", "instance"])
    if bad_kind.any():
        row = int(bad_kind.arg_true()[0])
        raise CatalogError(f"{path}: row {row + 2}, column kind: must be gpu or instance")
    _check_classes(frame, path)
    _check_providers(frame, path)
    return frame


def _check_providers(frame: pl.DataFrame, path: Path) -> None:
    """Every instance names its cloud (tables/clouds.py), and no instance type is listed twice
    (bills and recommendations name a machine by its type alone)."""
    rows = frame.with_row_index("_row").filter(pl.col("kind") == "instance")
    bad = rows.filter(~pl.col("provider").is_in(list(CLOUDS)) | pl.col("provider").is_null())
    if bad.height:
        row, value = int(bad["_row"][0]), bad["provider"][0]
        raise CatalogError(
            f"{path}: row {row + 2}, column provider: instances name their cloud, one of"
            f" {', '.join(CLOUDS)} (got {value!r})"
        )
    twice = rows.filter(pl.col("name").is_duplicated())
    if twice.height:
        row, name = int(twice["_row"][1]), twice["name"][0]
        raise CatalogError(f"{path}: row {row + 2}, column name: instance {name!r} is listed twice")


def _check_classes(frame: pl.DataFrame, path: Path) -> None:
    """Aliases belong to GPU classes, instances name a GPU class, and no reported name can
    resolve to two classes (config/gpu_class.py)."""
    from config.gpu_class import check_class_names  # the resolver's own rules

    frame = frame.with_row_index("_row")
    for col in ("aliases", "for_sale"):
        misplaced = frame.filter((pl.col("kind") == "instance") & pl.col(col).is_not_null())
        if misplaced.height:
            row = int(misplaced["_row"][0])
            raise CatalogError(
                f"{path}: row {row + 2}, column {col}: only gpu rows (GPU classes) take {col}"
            )
    for col in RESERVED_COLUMNS:
        misplaced = frame.filter((pl.col("kind") == "gpu") & pl.col(col).is_not_null())
        if misplaced.height:
            row = int(misplaced["_row"][0])
            raise CatalogError(
                f"{path}: row {row + 2}, column {col}: only instance rows take a reserved price"
            )
    classes = set(frame.filter(pl.col("kind") == "gpu")["gpu_model"].to_list())
    orphans = frame.filter((pl.col("kind") == "instance") & ~pl.col("gpu_model").is_in(classes))
    if orphans.height:
        row, model = int(orphans["_row"][0]), orphans["gpu_model"][0]
        raise CatalogError(
            f"{path}: row {row + 2}, column gpu_model: {model!r} is not a GPU class of the"
            " catalog (add a gpu row for it)"
        )
    problem = check_class_names(frame.filter(pl.col("kind") == "gpu"))
    if problem is not None:
        row, col, message = problem
        raise CatalogError(f"{path}: row {row + 2}, column {col}: {message}")


def _convert(values: pl.Series, dtype) -> pl.Series:
    """Strict conversion of a text column; raises on the first value that does not fit."""
    if dtype == pl.Date:
        return values.str.to_date("%Y-%m-%d", strict=True)
    if dtype == pl.Boolean:
        lowered = values.str.to_lowercase()
        if (lowered.is_not_null() & ~lowered.is_in(["true", "false"])).any():
            raise ValueError("expected true or false")
        return lowered == "true"
    return values.cast(dtype, strict=True)


def _first_bad(values: pl.Series, dtype) -> int:
    for i, v in enumerate(values.to_list()):
        try:
            _convert(pl.Series([v], dtype=pl.String), dtype)
        except Exception:
            return i
    return 0


def catalog_as_of(catalog: pl.DataFrame) -> date:
    """The newest `as_of` date in the catalog."""
    # as_of is a required Date column (checked at load), so a non-empty catalog's newest value is
    # a date; Series.max() is typed for any column.
    return cast(date, catalog["as_of"].max())


def catalog_oldest(catalog: pl.DataFrame) -> date:
    """The oldest `as_of` date in the catalog: how old its stalest price is."""
    return cast(date, catalog["as_of"].min())


def gpu_classes(catalog: pl.DataFrame) -> pl.DataFrame:
    return catalog.filter(pl.col("kind") == "gpu")


def instance_types(catalog: pl.DataFrame) -> pl.DataFrame:
    return catalog.filter(pl.col("kind") == "instance")


CLASSES_LABEL = "gpu classes"  # the rows without a provider: purchase prices and throughput


def catalog_ages(catalog: pl.DataFrame, today: date, max_age_days: int) -> pl.DataFrame:
    """Per cloud (and the GPU classes): rows, the oldest and newest `as_of`, the oldest's age in
    days and whether it is older than `max_age_days` ([catalog] max_age_days)."""
    return (
        catalog.with_columns(
            provider=pl.when(pl.col("kind") == "gpu")
            .then(pl.lit(CLASSES_LABEL))
            .otherwise(pl.col("provider"))
        )
        .group_by("provider")
        .agg(
            rows=pl.len(),
            oldest=pl.col("as_of").min(),
            newest=pl.col("as_of").max(),
        )
        .with_columns(age_days=(pl.lit(today) - pl.col("oldest")).dt.total_days())
        .with_columns(stale=pl.col("age_days") > max_age_days)
        .sort(pl.col("provider") == CLASSES_LABEL, "provider")
    )


# Refreshing prices (`gpuledger catalog refresh`) ------------------------------------------------
@dataclass(frozen=True)
class PriceUpdate:
    """New prices for one instance type (None: the source gave none; the old figure stays)."""

    name: str
    on_demand_usd_per_hour: float | None
    spot_usd_per_hour: float | None
    notes: str


def refreshed_catalog_text(
    text: str,
    updates: list[PriceUpdate],
    *,
    provider: str,
    region: str,
    as_of: date,
    source: str,
) -> tuple[str, list[dict[str, str]]]:
    """The catalog `text` with the prices of `updates` written into the instance rows of
    `provider` in `region` (`as_of`, `source` and `notes` too, where a price came), every other
    row and cell unchanged; and the changes, one dict per changed cell (name, column, old, new)."""
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    by_name = {u.name: u for u in updates}
    changes: list[dict[str, str]] = []
    for row in body:
        u = by_name.get(row[col["name"]]) if row else None
        if u is None or (row[col["kind"]], row[col["provider"]], row[col["region"]]) != (
            "instance",
            provider,
            region,
        ):
            continue
        new = {
            "on_demand_usd_per_hour": u.on_demand_usd_per_hour,
            "spot_usd_per_hour": u.spot_usd_per_hour,
        }
        cells = {k: f"{v:g}" for k, v in new.items() if v is not None}
        if not cells:
            continue
        cells |= {"as_of": as_of.isoformat(), "source": source, "notes": u.notes}
        for column, value in cells.items():
            if row[col[column]] != value:
                changes.append(
                    {"name": u.name, "column": column, "old": row[col[column]], "new": value}
                )
                row[col[column]] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *body])
    return out.getvalue(), changes
