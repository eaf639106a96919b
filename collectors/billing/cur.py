"""`gpuledger import cur`: AWS Cost and Usage Reports into the billing shape (FOCUS columns).

Three spellings of the same report are read:
- legacy CUR CSV (gzip or plain): `lineItem/UnblendedCost`, `resourceTags/user:workload`, …;
- legacy CUR Parquet: the same columns in snake_case, tags as `resource_tags_user_workload`;
- CUR 2.0 (Data Exports, Parquet or gzip CSV): snake_case with `resource_tags` as one map column
  (a map in Parquet, JSON text in CSV).

Money on every basis (DESIGN.md §2):
- BilledCost: `lineItem/NetUnblendedCost` where the report has it (after negotiated discounts),
  else `lineItem/UnblendedCost`: what the invoice says.
- EffectiveCost: amortized, the formula of AWS's CUR query library: reserved and Savings Plans
  usage at its effective cost, upfront fees spread over that usage (so they count 0 on the fee
  line), unused commitment on the recurring-fee line, everything else as billed.
- ListCost: `pricing/publicOnDemandCost`.

Credits and refunds are negative and legal (ChargeCategory `Credit`). Each row's `scope` is
(payer account, usage account, billing period): a restated report of a period replaces that
period's earlier rows for the same accounts, so nothing counts twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from collectors.billing import formats as billing_formats
from collectors.billing.normalize import (
    instance_id,
    instance_type_from_usage,
    json_object,
    json_object_from_entries,
)
from collectors.billing.stream import CurrencyGuard, TableReader, require
from collectors.errors import InputError
from collectors.tabular import as_text, record_time, to_float, to_utc
from tables.records import conform
from tables.timestamps import BILL_SKEW

# Canonical field -> (legacy CSV name, snake_case name of CUR 2.0 and legacy Parquet).
FIELDS: dict[str, tuple[str, str]] = {
    "start": ("lineItem/UsageStartDate", "line_item_usage_start_date"),
    "end": ("lineItem/UsageEndDate", "line_item_usage_end_date"),
    "period": ("bill/BillingPeriodStartDate", "bill_billing_period_start_date"),
    "payer": ("bill/PayerAccountId", "bill_payer_account_id"),
    "usage_account": ("lineItem/UsageAccountId", "line_item_usage_account_id"),
    "line_type": ("lineItem/LineItemType", "line_item_line_item_type"),
    "product_code": ("lineItem/ProductCode", "line_item_product_code"),
    "product_name": ("product/ProductName", "product_product_name"),
    "usage_type": ("lineItem/UsageType", "line_item_usage_type"),
    "resource": ("lineItem/ResourceId", "line_item_resource_id"),
    "unblended": ("lineItem/UnblendedCost", "line_item_unblended_cost"),
    "net_unblended": ("lineItem/NetUnblendedCost", "line_item_net_unblended_cost"),
    "usage_amount": ("lineItem/UsageAmount", "line_item_usage_amount"),
    "currency": ("lineItem/CurrencyCode", "line_item_currency_code"),
    "public_cost": ("pricing/publicOnDemandCost", "pricing_public_on_demand_cost"),
    "pricing_unit": ("pricing/unit", "pricing_unit"),
    "ri_effective": ("reservation/EffectiveCost", "reservation_effective_cost"),
    "net_ri_effective": ("reservation/NetEffectiveCost", "reservation_net_effective_cost"),
    "ri_unused_upfront": (
        "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
        "reservation_unused_amortized_upfront_fee_for_billing_period",
    ),
    "ri_unused_recurring": ("reservation/UnusedRecurringFee", "reservation_unused_recurring_fee"),
    "ri_arn": ("reservation/ReservationARN", "reservation_reservation_a_r_n"),
    "sp_effective": (
        "savingsPlan/SavingsPlanEffectiveCost",
        "savings_plan_savings_plan_effective_cost",
    ),
    "net_sp_effective": (
        "savingsPlan/NetSavingsPlanEffectiveCost",
        "savings_plan_net_savings_plan_effective_cost",
    ),
    "sp_arn": ("savingsPlan/SavingsPlanARN", "savings_plan_savings_plan_a_r_n"),
    "sp_commitment": ("savingsPlan/TotalCommitmentToDate", "savings_plan_total_commitment_to_date"),
    "sp_used": ("savingsPlan/UsedCommitment", "savings_plan_used_commitment"),
    "instance_type": ("product/instanceType", "product_instance_type"),
    "region_code": ("product/regionCode", "product_region_code"),
    "region": ("product/region", "product_region"),
    "sku": ("product/sku", "product_sku"),
}
REQUIRED = ("start", "end", "period", "line_type", "unblended", "currency")
TIMES = ("start", "end", "period")
MONEY = (
    "unblended",
    "net_unblended",
    "public_cost",
    "ri_effective",
    "net_ri_effective",
    "ri_unused_upfront",
    "ri_unused_recurring",
    "sp_effective",
    "net_sp_effective",
    "sp_commitment",
    "sp_used",
    "usage_amount",
)
# CUR 2.0 map columns.
TAG_MAP = "resource_tags"
PRODUCT_MAP = "product"
LEGACY_TAG_PREFIX = "resourceTags/"
SNAKE_TAG_PREFIX = "resource_tags_"

# lineItem/LineItemType -> FOCUS ChargeCategory.
CHARGE_CATEGORY = {
    "Usage": "Usage",
    "DiscountedUsage": "Usage",
    "SavingsPlanCoveredUsage": "Usage",
    "SavingsPlanNegation": "Usage",
    "Tax": "Tax",
    "Credit": "Credit",
    "Refund": "Credit",
    "BundledDiscount": "Credit",
    "Discount": "Credit",
    "EdpDiscount": "Credit",
    "PrivateRateDiscount": "Credit",
    "DistributorDiscount": "Credit",
    "Fee": "Purchase",
    "RIFee": "Purchase",
    "SavingsPlanRecurringFee": "Purchase",
    "SavingsPlanUpfrontFee": "Purchase",
}


class CurColumns:
    """Which spelling a file uses, and the file's name for each canonical field."""

    def __init__(self, path: Path, columns: list[str], tag_key: str) -> None:
        fmt = billing_formats.identify(columns)
        if fmt == "focus":
            raise InputError(path, billing_formats.FOCUS_IS_NOT_CUR)
        if fmt not in ("cur_legacy", "cur_snake"):
            foreign = billing_formats.foreign_format(columns)
            raise InputError(
                path,
                foreign
                or "not an AWS Cost and Usage Report: no lineItem/UnblendedCost and "
                "lineItem/UsageStartDate columns (legacy CUR) nor line_item_unblended_cost and "
                "line_item_usage_start_date (CUR 2.0)",
            )
        self.flavor = fmt
        present = set(columns)
        index = 0 if fmt == "cur_legacy" else 1
        self.names = {k: v[index] for k, v in FIELDS.items() if v[index] in present}
        missing = [FIELDS[k][index] for k in REQUIRED if k not in self.names]
        if "payer" not in self.names and "usage_account" not in self.names:
            missing.append(FIELDS["payer"][index])
        if missing:
            raise InputError(path, f"missing required CUR column(s): {', '.join(missing)}")
        self.tag_map = TAG_MAP if TAG_MAP in present else None
        self.product_map = PRODUCT_MAP if PRODUCT_MAP in present else None
        prefix = LEGACY_TAG_PREFIX if fmt == "cur_legacy" else SNAKE_TAG_PREFIX
        self.tag_columns = {
            c[len(prefix) :]: c
            for c in columns
            if c.startswith(prefix) and len(c) > len(prefix) and c != TAG_MAP
        }
        snake_key = re.sub(r"[^0-9A-Za-z]", "_", tag_key)
        self.workload_keys = list(
            dict.fromkeys((f"user:{tag_key}", f"user_{snake_key}", tag_key, snake_key))
        )

    def wanted(self) -> list[str]:
        cols = [*self.names.values(), *self.tag_columns.values()]
        cols += [c for c in (self.tag_map, self.product_map) if c]
        return cols


def read_cur_file(path: str | Path, *, tag_key: str = "workload") -> pl.DataFrame:
    """Read and validate one CUR file into billing rows; raises InputError."""
    return pl.concat(list(read_cur_chunks(path, tag_key=tag_key)), how="vertical")


def read_cur_chunks(
    path: str | Path, *, tag_key: str = "workload", reader: TableReader | None = None
) -> Iterator[pl.DataFrame]:
    """The billing rows of one CUR file, chunk by chunk, each validated; raises InputError
    (also after some chunks were yielded: the caller discards what it got)."""
    path = Path(path)
    reader = reader or TableReader(path)
    cols = CurColumns(path, reader.columns, tag_key)
    guard = CurrencyGuard()
    rows = 0
    for chunk in reader.chunks(cols.wanted()):
        rows += chunk.frame.height
        yield normalize_cur(path, chunk.frame, chunk.first_row, cols, guard)
    if rows == 0:
        raise InputError(path, "no rows")


def _check_scalar(path: Path, frame: pl.DataFrame, columns: list[str]) -> None:
    """A nested type where a value belongs (a Parquet file with a wrong column type)."""
    for c in columns:
        dtype = frame[c].dtype
        if dtype.is_nested() or isinstance(dtype, pl.Map | pl.Struct | pl.List | pl.Array):
            raise InputError(
                path, f"has type {dtype}, expected text, a number or a timestamp", column=c
            )


def normalize_cur(
    path: Path, frame: pl.DataFrame, first: int, cols: CurColumns, guard: CurrencyGuard
) -> pl.DataFrame:
    """One validated chunk of a CUR in the billing shape."""
    names = cols.names
    parsed = _Parsed.of(path, frame, first, cols)
    num, txt = parsed.num, parsed.txt
    account = pl.coalesce(txt("payer"), txt("usage_account"))
    tags, workload = _tags(path, frame, first, cols)
    billed = pl.coalesce(num("net_unblended"), num("unblended"))
    line_type = txt("line_type")
    result = pl.select(
        ChargePeriodStart=pl.lit(parsed.v["start"]),
        ChargePeriodEnd=pl.lit(parsed.v["end"]),
        BillingPeriodStart=pl.lit(parsed.v["period"]),
        BillingAccountId=account,
        ProviderName=pl.lit("AWS"),
        ServiceName=pl.coalesce(_product_name(parsed, frame, cols), txt("product_code")),
        ResourceId=instance_id(txt("resource")),
        SkuId=txt("sku"),
        ChargeCategory=line_type.replace_strict(
            CHARGE_CATEGORY, default="Adjustment", return_dtype=pl.String
        ),
        PricingUnit=txt("pricing_unit"),
        PricingQuantity=num("usage_amount"),
        ConsumedQuantity=num("usage_amount"),
        BilledCost=billed,
        EffectiveCost=_effective_cost(parsed, billed),
        ListCost=num("public_cost"),
        BillingCurrency=txt("currency"),
        Tags=pl.lit(tags),
        RegionId=pl.coalesce(txt("region_code"), txt("region")),
        InstanceType=pl.coalesce(txt("instance_type"), instance_type_from_usage(txt("usage_type"))),
        workload=pl.lit(workload),
        source=pl.lit("cur"),
        scope=pl.concat_str(
            [
                pl.lit("cur"),
                account,
                pl.coalesce(txt("usage_account"), account),
                pl.lit(parsed.v["period"]).dt.strftime("%Y-%m-%d"),
            ],
            separator="|",
        ),
    )
    if result.height != frame.height:  # every column above is a full-length series or a literal
        raise AssertionError("CUR normalization changed the row count")
    result = result.with_columns(**_commitment(line_type, txt))
    require(path, result["BillingAccountId"], names.get("payer", ""), first)
    guard.check(path, result, first)
    return conform(result, "billing_items")


@dataclass(frozen=True)
class _Parsed:
    """A chunk's CUR columns parsed, by CurColumns key: times and money (`v`), text (`text`)."""

    v: dict[str, pl.Series]
    text: dict[str, pl.Series]

    @classmethod
    def of(cls, path: Path, frame: pl.DataFrame, first: int, cols: CurColumns) -> _Parsed:
        """Parse and check: a required value missing is an error naming file, row and column."""
        names = cols.names
        _check_scalar(path, frame, [*names.values(), *cols.tag_columns.values()])
        v: dict[str, pl.Series] = {}
        v["start"] = record_time(  # the record's time, as every import checks it
            path, frame, names["start"], first, naive_is_utc=True, skew=BILL_SKEW
        )
        for key in TIMES[1:]:
            v[key] = to_utc(path, frame, names[key], first, naive_is_utc=True)
            require(path, v[key], names[key], first)
        for key in MONEY:
            if key in names:
                v[key] = to_float(path, frame, names[key], first)
        require(path, v["unblended"], names["unblended"], first)
        text = {k: as_text(frame, c) for k, c in names.items() if k not in TIMES and k not in MONEY}
        require(path, text["currency"], names["currency"], first)
        require(path, text["line_type"], names["line_type"], first)
        return cls(v, text)

    def num(self, key: str) -> pl.Expr:
        return pl.lit(self.v[key]) if key in self.v else pl.lit(None, pl.Float64)

    def txt(self, key: str) -> pl.Expr:
        return pl.lit(self.text[key]) if key in self.text else pl.lit(None, pl.String)


def _effective_cost(parsed: _Parsed, billed: pl.Expr) -> pl.Expr:
    """EffectiveCost, amortized (the module docstring): covered usage at its effective cost,
    unused commitment on the recurring-fee line, upfront fees and negations 0, else billed."""
    num, line_type = parsed.num, parsed.txt("line_type")
    return (
        pl.when(line_type == "SavingsPlanCoveredUsage")
        .then(pl.coalesce(num("net_sp_effective"), num("sp_effective"), billed))
        .when(line_type == "SavingsPlanRecurringFee")
        .then(
            pl.when(num("sp_commitment").is_not_null())
            .then(num("sp_commitment") - num("sp_used").fill_null(0.0))
            .otherwise(billed)
        )
        .when(line_type.is_in(["SavingsPlanNegation", "SavingsPlanUpfrontFee"]))
        .then(0.0)
        .when(line_type == "DiscountedUsage")
        .then(pl.coalesce(num("net_ri_effective"), num("ri_effective"), billed))
        .when(line_type == "RIFee")
        .then(
            pl.when(
                num("ri_unused_upfront").is_not_null() | num("ri_unused_recurring").is_not_null()
            )
            .then(
                num("ri_unused_upfront").fill_null(0.0) + num("ri_unused_recurring").fill_null(0.0)
            )
            .otherwise(billed)
        )
        .when((line_type == "Fee") & parsed.txt("ri_arn").is_not_null())
        .then(0.0)
        .otherwise(billed)
    )


def _commitment(line_type: pl.Expr, txt: Callable[[str], pl.Expr]) -> dict[str, pl.Expr]:
    """The commitment that covered a usage line, as FOCUS names it: a reservation's ARN on
    DiscountedUsage, a savings plan's on SavingsPlanCoveredUsage (none elsewhere)."""
    reserved = line_type == "DiscountedUsage"
    planned = line_type == "SavingsPlanCoveredUsage"
    return {
        "CommitmentDiscountId": pl.when(reserved)
        .then(txt("ri_arn"))
        .when(planned)
        .then(txt("sp_arn"))
        .otherwise(pl.lit(None, pl.String)),
        "CommitmentDiscountType": pl.when(reserved & txt("ri_arn").is_not_null())
        .then(pl.lit("Reservation"))
        .when(planned & txt("sp_arn").is_not_null())
        .then(pl.lit("Savings Plan"))
        .otherwise(pl.lit(None, pl.String)),
    }


def _product_name(parsed: _Parsed, frame: pl.DataFrame, cols: CurColumns) -> pl.Expr:
    """The product name column, else the one in the product map (CUR 2.0)."""
    product_name = parsed.txt("product_name")
    if cols.product_map and isinstance(frame[cols.product_map].dtype, pl.Map):
        product_name = pl.coalesce(
            product_name, pl.lit(frame[cols.product_map]).map.get("product_name")
        )
    return product_name


def _tags(
    path: Path, frame: pl.DataFrame, first: int, cols: CurColumns
) -> tuple[pl.Series, pl.Series]:
    """Tags as JSON object text, and the workload tag's value, per row."""
    n = frame.height
    if cols.tag_map is not None:
        s = frame[cols.tag_map]
        if isinstance(s.dtype, pl.Map):
            tags = frame.select(
                json_object_from_entries(pl.col(cols.tag_map).map.entries())
            ).to_series()
            workload = frame.select(
                pl.coalesce([pl.col(cols.tag_map).map.get(k) for k in cols.workload_keys])
            ).to_series()
            return tags.alias("Tags"), _blank_null(workload)
        if s.dtype.is_nested():
            raise InputError(
                path, f"has type {s.dtype}, expected a map or JSON text", column=cols.tag_map
            )
        text = as_text(frame, cols.tag_map)
        parsed = text.str.json_path_match("$")
        bad = parsed.is_null() & text.is_not_null() & (text != "{}")
        if bad.any():
            i = int(bad.arg_true()[0])
            raise InputError(
                path, "resource_tags is not a JSON object", row=first + i, column=cols.tag_map
            )
        workload = pl.select(
            pl.coalesce([pl.lit(text).str.json_path_match(f'$["{k}"]') for k in cols.workload_keys])
        ).to_series()
        tags = text.set(text == "{}", None)
        return tags.alias("Tags"), _blank_null(workload)
    if not cols.tag_columns:
        empty = pl.Series([None] * n, dtype=pl.String)
        return empty.alias("Tags"), empty.alias("workload")
    values = {key: as_text(frame, c) for key, c in cols.tag_columns.items()}
    tags = pl.select(json_object({k: pl.lit(s) for k, s in values.items()})).to_series()
    found = [values[k] for k in cols.workload_keys if k in values]
    workload = (
        pl.select(pl.coalesce([pl.lit(s) for s in found])).to_series()
        if found
        else pl.Series([None] * n, dtype=pl.String)
    )
    return tags.alias("Tags"), _blank_null(workload)


def _blank_null(s: pl.Series) -> pl.Series:
    s = s.cast(pl.String).str.strip_chars()
    return s.set(s == "", None).alias("workload")


# The format's entry point (collectors/billing/sources.py): `gpuledger import cur`, S3 exports.
read_chunks = read_cur_chunks
