"""`gpuledger import focus`: FOCUS 1.0-1.2 cost exports from any provider (CSV, gzip, Parquet).

FOCUS times are UTC; nulls appear as the text `NULL` or as empty cells; negative costs are legal
(credits, adjustments); `Tags` is JSON text. Rows are normalized into the billing shape of
collectors/schema.py. Each row's `scope` is (provider, billing account, billing period): a later
import of the same period replaces the earlier rows, so a re-import or a restated export never
counts twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from collectors.errors import InputError
from collectors.schema import conform
from collectors.tabular import as_text, read_table, to_float, to_utc

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
# An EC2 instance type inside a charge description ("... p4d.24xlarge Instance Hour").
INSTANCE_TYPE_RE = (
    r"\b([a-z][a-z0-9-]*\.(?:[0-9]*x?large|metal(?:-[0-9]+xl)?|medium|small|micro|nano))\b"
)


def read_focus_file(path: str | Path, *, tag_key: str = "workload") -> pl.DataFrame:
    """Read and validate one FOCUS file into billing rows; raises InputError."""
    path = Path(path)
    frame, first = read_table(path)
    if frame.height == 0:
        raise InputError(path, "no rows")
    provider_col = next(
        (c for c in ("ProviderName", "ServiceProviderName") if c in frame.columns), None
    )
    missing = [c for c in REQUIRED if c not in frame.columns]
    if provider_col is None:
        missing.append("ProviderName")
    if missing:
        raise InputError(
            path, f"missing required FOCUS column(s): {', '.join(missing)} (is this a FOCUS file?)"
        )
    out: dict[str, pl.Series] = {}
    for col in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart"):
        out[col] = to_utc(path, frame, col, first, naive_is_utc=True)
        _require(path, out[col], col, first)
    for col in ("BilledCost", "EffectiveCost", *OPTIONAL_NUMERIC):
        if col in frame.columns:
            out[col] = to_float(path, frame, col, first)
    for col in ("BilledCost", "EffectiveCost"):
        _require(path, out[col], col, first)
    for col in TEXT_COLUMNS:
        if col in frame.columns:
            out[col] = as_text(frame, col)
    out["ProviderName"] = as_text(frame, provider_col)
    _require(path, out["BillingCurrency"], "BillingCurrency", first)
    _require(path, out["BillingAccountId"], "BillingAccountId", first)
    tags = (
        as_text(frame, "Tags")
        if "Tags" in frame.columns
        else pl.Series("Tags", [None] * frame.height, pl.String)
    )
    out["Tags"] = tags
    result = pl.DataFrame(out)
    _check_one_currency_per_account(path, result, first)
    description = (
        as_text(frame, "ChargeDescription")
        if "ChargeDescription" in frame.columns
        else pl.Series([None] * frame.height, dtype=pl.String)
    )
    result = result.with_columns(
        InstanceType=description.str.extract(INSTANCE_TYPE_RE, 1),
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


def _require(path: Path, values: pl.Series, column: str, first: int) -> None:
    nulls = values.is_null()
    if nulls.any():
        i = int(nulls.arg_true()[0])
        raise InputError(path, "value required", row=i + first, column=column)


def _check_one_currency_per_account(path: Path, frame: pl.DataFrame, first: int) -> None:
    """Two currencies in one billing account cannot be right (and must never be added)."""
    firsts = (
        frame.with_row_index("row")
        .group_by("BillingAccountId")
        .agg(pl.col("BillingCurrency").first().alias("currency"))
    )
    joined = frame.with_row_index("row").join(firsts, on="BillingAccountId")
    bad = joined.filter(pl.col("BillingCurrency") != pl.col("currency")).sort("row")
    if bad.height:
        r = bad.row(0, named=True)
        raise InputError(
            path,
            f"billing account {r['BillingAccountId']!r} has two currencies "
            f"({r['currency']} and {r['BillingCurrency']})",
            row=int(r["row"]) + first,
            column="BillingCurrency",
        )


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
