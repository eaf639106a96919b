"""`gpuledger import focus`: FOCUS 1.0-1.2 cost exports from any provider (CSV, gzip, Parquet).

FOCUS times are UTC; nulls appear as the text `NULL` or as empty cells; negative costs are legal
(credits, adjustments); `Tags` is JSON text. Rows are normalized into the billing shape of
tables/records.py. Each row's `scope` is (provider, billing account, billing period): a later
import of the same period replaces the earlier rows, so a re-import or a restated export never
counts twice. A VM's `ResourceId` (an EC2 instance ARN, an Azure VM's ARM id, a Compute Engine
instance) becomes the host id the agent reports on that VM (normalize.instance_id), so the bill
joins the telemetry.

Files are read in bounded chunks (collectors/billing/stream.py): a file of several GB is
streamed, each chunk validated, and an error anywhere refuses the whole file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from collectors.billing import formats as billing_formats
from collectors.billing.normalize import (
    INSTANCE_TYPE_RE,
    instance_id,
    instance_type_from_usage,
)
from collectors.billing.stream import CurrencyGuard, TableReader, require
from collectors.errors import InputError
from collectors.tabular import as_text, record_time, to_float, to_utc
from tables.records import conform
from tables.timestamps import BILL_SKEW

__all__ = ["INSTANCE_TYPE_RE", "read_focus_chunks", "read_focus_file", "workload_from_tags"]

REQUIRED = (
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "BillingAccountId",
    "BillingPeriodStart",
    "ChargePeriodStart",
    "ChargePeriodEnd",
)
TEXT_COLUMNS = (
    "BillingAccountId",
    "ServiceName",
    "ResourceId",
    "SkuId",
    "ChargeCategory",
    "PricingUnit",
    "BillingCurrency",
    "RegionId",
)
OPTIONAL_NUMERIC = ("ListCost", "PricingQuantity", "ConsumedQuantity")
PROVIDER_COLUMNS = ("ProviderName", "ServiceProviderName")
# Where the instance type may be read: the charge description, AWS's x_UsageType.
# ResourceName: a Compute Engine instance's name, its agent's host id (normalize.instance_id).
# The commitment that covered a charge (a reservation or savings plan): never proposed again.
EXTRA_COLUMNS = (
    "Tags",
    "ChargeDescription",
    "x_UsageType",
    "ResourceName",
    "CommitmentDiscountId",
    "CommitmentDiscountType",
)


def read_focus_file(path: str | Path, *, tag_key: str = "workload") -> pl.DataFrame:
    """Read and validate one FOCUS file into billing rows; raises InputError."""
    return pl.concat(list(read_focus_chunks(path, tag_key=tag_key)), how="vertical")


def read_focus_chunks(
    path: str | Path, *, tag_key: str = "workload", reader: TableReader | None = None
) -> Iterator[pl.DataFrame]:
    """The billing rows of one FOCUS file, chunk by chunk, each validated; raises InputError
    (also after some chunks were yielded: the caller discards what it got)."""
    path = Path(path)
    reader = reader or TableReader(path)
    provider_col = check_focus_columns(path, reader.columns)
    wanted = [
        c
        for c in (*REQUIRED, *TEXT_COLUMNS, *OPTIONAL_NUMERIC, provider_col, *EXTRA_COLUMNS)
        if c in reader.columns
    ]
    guard = CurrencyGuard()
    rows = 0
    for chunk in reader.chunks(wanted):
        rows += chunk.frame.height
        yield normalize_focus(path, chunk.frame, chunk.first_row, provider_col, tag_key, guard)
    if rows == 0:
        raise InputError(path, "no rows")


def check_focus_columns(path: Path, columns: list[str]) -> str:
    """The provider column's name; refuses a file that is not FOCUS, saying what it is."""
    fmt = billing_formats.identify(columns)
    if fmt in ("cur_legacy", "cur_snake"):
        raise InputError(path, billing_formats.CUR_IS_NOT_FOCUS)
    foreign = billing_formats.foreign_format(columns)
    if foreign:
        raise InputError(path, foreign)
    provider_col = next((c for c in PROVIDER_COLUMNS if c in columns), None)
    missing = [c for c in REQUIRED if c not in columns]
    if provider_col is None:
        missing.append("ProviderName")
    if missing or provider_col is None:  # no provider column is among the missing
        raise InputError(
            path, f"missing required FOCUS column(s): {', '.join(missing)} (is this a FOCUS file?)"
        )
    return provider_col


def normalize_focus(
    path: Path,
    frame: pl.DataFrame,
    first: int,
    provider_col: str,
    tag_key: str,
    guard: CurrencyGuard,
) -> pl.DataFrame:
    """One validated chunk in the billing shape."""
    out = _checked_columns(path, frame, first, provider_col)
    tags = _optional_text(frame, "Tags", name="Tags")
    out["Tags"] = tags
    result = pl.DataFrame(out)
    guard.check(path, result, first)
    description = _optional_text(frame, "ChargeDescription")
    usage_type = _optional_text(frame, "x_UsageType")
    name = _optional_text(frame, "ResourceName")
    result = result.with_columns(
        CommitmentDiscountId=pl.lit(_optional_text(frame, "CommitmentDiscountId")),
        CommitmentDiscountType=pl.lit(_optional_text(frame, "CommitmentDiscountType")),
        ResourceId=instance_id(pl.col("ResourceId"), pl.lit(name))
        if "ResourceId" in result.columns
        else pl.lit(None, pl.String),
        InstanceType=pl.coalesce(
            pl.lit(description).str.extract(INSTANCE_TYPE_RE, 1),
            instance_type_from_usage(pl.lit(usage_type)),
        ),
        workload=workload_from_tags(path, tags, tag_key, first),
        source=pl.lit("focus"),
        scope=pl.concat_str(
            [
                pl.lit("focus"),
                pl.col("ProviderName").fill_null(""),
                pl.col("BillingAccountId"),
                pl.col("BillingPeriodStart").dt.strftime("%Y-%m-%d"),
            ],
            separator="|",
        ),
    )
    return conform(result, "billing_items")


def _checked_columns(
    path: Path, frame: pl.DataFrame, first: int, provider_col: str
) -> dict[str, pl.Series]:
    """The chunk's times, money and text columns, parsed; a required one missing a value is an
    error naming the file, row and column."""
    out: dict[str, pl.Series] = {}
    # The record's time is checked as every import checks it (tables/timestamps.py).
    out["ChargePeriodStart"] = record_time(
        path, frame, "ChargePeriodStart", first, naive_is_utc=True, skew=BILL_SKEW
    )
    for col in ("ChargePeriodEnd", "BillingPeriodStart"):
        out[col] = to_utc(path, frame, col, first, naive_is_utc=True)
        require(path, out[col], col, first)
    for col in ("BilledCost", "EffectiveCost", *OPTIONAL_NUMERIC):
        if col in frame.columns:
            out[col] = to_float(path, frame, col, first)
    for col in ("BilledCost", "EffectiveCost"):
        require(path, out[col], col, first)
    for col in TEXT_COLUMNS:
        if col in frame.columns:
            out[col] = as_text(frame, col)
    out["ProviderName"] = as_text(frame, provider_col)
    require(path, out["BillingCurrency"], "BillingCurrency", first)
    require(path, out["BillingAccountId"], "BillingAccountId", first)
    return out


def _optional_text(frame: pl.DataFrame, col: str, name: str = "") -> pl.Series:
    """Column `col` as text, or nulls where the file has no such column."""
    if col in frame.columns:
        return as_text(frame, col)
    return pl.Series(name, [None] * frame.height, dtype=pl.String)


def workload_from_tags(path: Path, tags: pl.Series, tag_key: str, first: int) -> pl.Series:
    """The workload tag's value per row (AWS user tags may carry a `user:` prefix)."""
    values: list[str | None] = []
    for i, text in enumerate(tags.to_list()):
        if text is None:
            values.append(None)
            continue
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            raise InputError(path, "Tags is not valid JSON", row=i + first, column="Tags") from None
        if not isinstance(parsed, dict):
            raise InputError(path, "Tags must be a JSON object", row=i + first, column="Tags")
        value = parsed.get(tag_key, parsed.get(f"user:{tag_key}"))
        values.append(str(value) if value not in (None, "") else None)
    return pl.Series("workload", values, dtype=pl.String)


# The format's entry point (collectors/billing/sources.py): `gpuledger import focus`, S3 exports.
read_chunks = read_focus_chunks
