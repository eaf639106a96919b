"""Google Cloud's detailed usage cost export (the BigQuery table `gcp_billing_export_resource_v1_…`,
or that table extracted to Parquet files in Cloud Storage) into the billing shape.

The export's rows are nested (`service.description`, `resource.global_name`, `labels` as a list
of key/value, `credits` as a list with amounts); `flatten` brings a Parquet file's rows to flat
columns, and the BigQuery query (collectors/billing/gcp.py) selects the same flat columns, summed
per day. The mapping follows Google's FOCUS view of the export:

| FOCUS | detailed export |
|---|---|
| ChargePeriodStart, End | `usage_start_time`, `usage_end_time` (UTC) |
| BillingPeriodStart | `invoice.month` (YYYYMM), its first day |
| BillingAccountId, BillingCurrency | `billing_account_id`, `currency` |
| BilledCost, EffectiveCost | `cost` + the sum of `credits.amount` (negative, netted) |
| ListCost | `cost_at_list` |
| ChargeCategory | `cost_type`: regular: Usage, tax: Tax, adjustment, rounding_error: Adjustment |
| ServiceName, SkuId | `service.description`, `sku.id` |
| ResourceId | `resource.global_name` (a VM's: its name, the agent's host id) |
| PricingUnit, PricingQuantity | `usage.pricing_unit`, `usage.amount_in_pricing_units` |
| RegionId | `location.region` |
| Tags | `labels` as a JSON object; the workload is the label `[workloads] tag_key` |

Each row's `scope`: files are taken a billing month at a time, (gcp, billing account, invoice
month); the BigQuery pull scopes per (gcp_bq, billing account, day), since it re-reads days.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from collectors.billing.normalize import instance_id, json_object_from_entries
from collectors.billing.stream import CurrencyGuard, TableReader, require
from collectors.errors import InputError
from collectors.tabular import to_utc
from tables.records import conform

# The export's marker columns (top level of the nested rows).
MARKERS = ("billing_account_id", "usage_start_time", "cost", "currency", "invoice")
# The flat columns `flatten` and the BigQuery query give.
FLAT = pl.Schema(
    {
        "billing_account_id": pl.String(),
        "service_description": pl.String(),
        "sku_id": pl.String(),
        "usage_start_time": pl.Datetime("us", "UTC"),
        "usage_end_time": pl.Datetime("us", "UTC"),
        "region": pl.String(),
        "resource_name": pl.String(),
        "resource_global_name": pl.String(),
        "cost": pl.Float64(),
        "credits": pl.Float64(),
        "cost_at_list": pl.Float64(),
        "currency": pl.String(),
        "pricing_unit": pl.String(),
        "pricing_quantity": pl.Float64(),
        "invoice_month": pl.String(),
        "cost_type": pl.String(),
        "tags": pl.String(),
        "workload": pl.String(),
    }
)
CHARGE_CATEGORY = {
    "regular": "Usage",
    "tax": "Tax",
    "adjustment": "Adjustment",
    "rounding_error": "Adjustment",
}


def is_detailed_export(columns: list[str]) -> bool:
    return all(c in columns for c in MARKERS)


def _field(col: str, name: str, columns: list[str]) -> pl.Expr:
    return pl.col(col).struct.field(name) if col in columns else pl.lit(None, pl.String)


def flatten(frame: pl.DataFrame, tag_key: str) -> pl.DataFrame:
    """Nested export rows (a Parquet extract of the table) as the flat columns."""
    cols = frame.columns
    labels = pl.col("labels") if "labels" in cols else pl.lit(None, pl.List(pl.Struct({})))
    workload = (
        labels.list.eval(
            pl.when(pl.element().struct.field("key") == tag_key).then(
                pl.element().struct.field("value")
            )
        )
        .list.drop_nulls()
        .list.first()
        if "labels" in cols
        else pl.lit(None, pl.String)
    )
    credits = (
        pl.col("credits").list.eval(pl.element().struct.field("amount")).list.sum()
        if "credits" in cols
        else pl.lit(0.0)
    )
    return frame.select(
        "billing_account_id",
        service_description=_field("service", "description", cols),
        sku_id=_field("sku", "id", cols),
        usage_start_time="usage_start_time",
        usage_end_time=pl.col("usage_end_time") if "usage_end_time" in cols else None,
        region=_field("location", "region", cols),
        resource_name=_field("resource", "name", cols),
        resource_global_name=_field("resource", "global_name", cols),
        cost="cost",
        credits=credits,
        cost_at_list=pl.col("cost_at_list") if "cost_at_list" in cols else None,
        currency="currency",
        pricing_unit=_field("usage", "pricing_unit", cols),
        pricing_quantity=_field("usage", "amount_in_pricing_units", cols),
        invoice_month=_field("invoice", "month", cols),
        cost_type=pl.col("cost_type") if "cost_type" in cols else None,
        tags=json_object_from_entries(labels) if "labels" in cols else None,
        workload=workload,
    )


def read_chunks(
    path: str | Path, *, tag_key: str = "workload", reader: TableReader | None = None
) -> Iterator[pl.DataFrame]:
    """The billing rows of one Parquet extract of the detailed export, chunk by chunk."""
    path = Path(path)
    reader = reader or TableReader(path)
    if reader.kind != "parquet" or not is_detailed_export(reader.columns):
        raise InputError(
            path,
            "not a Parquet extract of the Google Cloud detailed usage cost export (needs "
            f"{', '.join(MARKERS)}; CSV cannot hold its nested columns: extract it as Parquet)",
        )
    guard = CurrencyGuard()
    for chunk in reader.chunks():
        yield normalize_gcp(path, flatten(chunk.frame, tag_key), chunk.first_row, guard)


def normalize_gcp(
    path: Path | str,
    flat: pl.DataFrame,
    first: int,
    guard: CurrencyGuard,
    *,
    scope: str = "month",
) -> pl.DataFrame:
    """Flat export rows in the billing shape (`scope`: `month` for files, `day` for BigQuery)."""
    path = Path(path)
    missing = [pl.lit(None, t).alias(k) for k, t in FLAT.items() if k not in flat.columns]
    flat = flat.with_columns(missing).cast(FLAT)
    start = to_utc(path, flat, "usage_start_time", first, naive_is_utc=True)
    require(path, start, "usage_start_time", first)
    for col in ("billing_account_id", "currency", "cost"):
        require(path, flat[col], col, first)
    month = flat["invoice_month"].str.strptime(pl.Date, "%Y%m", strict=False)
    bad = month.is_null() & flat["invoice_month"].is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputError(path, "not a month (YYYYMM)", row=first + i, column="invoice.month")
    out = flat.with_columns(
        start=start,
        period=pl.coalesce(month, start.dt.date().dt.truncate("1mo")),
        net=pl.col("cost") + pl.col("credits").fill_null(0.0),
    )
    guard.check(
        path,
        out.select(BillingAccountId="billing_account_id", BillingCurrency="currency"),
        first,
    )
    return conform(out.select(**_columns(scope)), "billing_items")


def _columns(scope: str) -> dict[str, pl.Expr]:
    """The billing shape's columns over the checked flat rows (`out` of normalize_gcp)."""
    source = "gcp" if scope == "month" else "gcp_bq"
    key = (
        pl.col("period").dt.strftime("%Y-%m-%d")
        if scope == "month"
        else pl.col("start").dt.strftime("%Y-%m-%d")
    )
    return dict(
        ChargePeriodStart=pl.col("start"),
        ChargePeriodEnd=pl.coalesce("usage_end_time", pl.col("start") + pl.duration(days=1)),
        BillingPeriodStart=pl.col("period").cast(pl.Datetime("us", "UTC")),
        BillingAccountId=pl.col("billing_account_id"),
        ProviderName=pl.lit("Google Cloud"),
        ServiceName=pl.col("service_description"),
        ResourceId=instance_id(pl.col("resource_global_name"), pl.col("resource_name")),
        SkuId=pl.col("sku_id"),
        ChargeCategory=pl.col("cost_type").replace_strict(
            CHARGE_CATEGORY, default=None, return_dtype=pl.String
        ),
        PricingUnit=pl.col("pricing_unit"),
        PricingQuantity=pl.col("pricing_quantity"),
        ConsumedQuantity=pl.col("pricing_quantity"),
        BilledCost=pl.col("net"),
        EffectiveCost=pl.col("net"),
        ListCost=pl.col("cost_at_list"),
        BillingCurrency=pl.col("currency"),
        Tags=pl.col("tags"),
        RegionId=pl.col("region"),
        workload=pl.col("workload"),
        source=pl.lit(source),
        scope=pl.concat_str([pl.lit(source), pl.col("billing_account_id"), key], separator="|"),
    )
