"""`gpuledger import azure`: Azure Cost Management cost details (EA and MCA "actual" and
"amortized" exports, CSV, gzip or not) into the billing shape (FOCUS columns).

Column names differ between agreements (EA `Cost`, `BillingCurrency`; older EA
`CostInBillingCurrency`, `BillingCurrencyCode`; MCA camelCase `costInBillingCurrency`): they are
matched without regard to case. The mapping follows Microsoft's FOCUS conversion of these
datasets (Cost Management "Cost and usage details (FOCUS)" columns):

| FOCUS | cost details |
|---|---|
| ChargePeriodStart, End | `Date` (MM/DD/YYYY or ISO), the day from 00:00 UTC to the next |
| BillingPeriodStart | `BillingPeriodStartDate` |
| BillingAccountId | `BillingAccountId` |
| BillingCurrency | `BillingCurrency` / `BillingCurrencyCode` (one per account; CAD stays CAD) |
| BilledCost | actual cost (`Cost` / `CostInBillingCurrency` of an actual-cost export) |
| EffectiveCost | amortized cost (the same column of an amortized-cost export) |
| ListCost | `PayGPrice` x `Quantity` |
| ChargeCategory | `ChargeType`: Usage, Purchase, Tax; Refund: Credit; RoundingAdjustment:
  Adjustment; UnusedReservation and UnusedSavingsPlan: Usage (the commitment's unused part) |
| ServiceName, SkuId | `MeterCategory`, `MeterId` |
| ResourceId | `ResourceId` (a VM's ARM id: its name, the agent's host id) |
| PricingUnit, PricingQuantity | `UnitOfMeasure`, `Quantity` |
| RegionId | `ResourceLocation`, lower-cased |
| Tags | `Tags` (EA writes the object without its braces: they are added) |
| InstanceType | `ServiceType` of a VM line's `AdditionalInfo` (`Standard_NC24ads_A100_v4`) |

One export is either actual or amortized cost and the file does not say which (the columns are
the same). The basis is the export's (the pull reads its manifest), else the file name's
("…Amortized…", "…Actual…"), else actual. From an actual-cost file BilledCost = EffectiveCost =
the cost (a commitment purchase stays on its purchase day); from an amortized one EffectiveCost
is the cost and BilledCost the same for pay-as-you-go and spot lines, unknown (null) for
reservation and savings-plan lines, whose invoice amount the file does not carry. Export the
amortized cost (or FOCUS, which has both) for the ledger's EffectiveCost.

Each row's `scope` is (azure, billing account, subscription, billing period): a later export of
the same period replaces the earlier rows of that subscription, so a re-import, a restated export
or an actual and an amortized export of the same month never count twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import polars as pl

from collectors.billing.focus import workload_from_tags
from collectors.billing.normalize import instance_id
from collectors.billing.stream import CurrencyGuard, TableReader, require
from collectors.errors import InputError
from collectors.tabular import as_text, to_float
from tables.records import UTC_TS, conform

Basis = Literal["actual", "amortized"]

# Canonical field -> the names it has in EA and MCA exports (compared lower-cased).
FIELDS: dict[str, tuple[str, ...]] = {
    "date": ("date", "usagedatetime"),
    "period": ("billingperiodstartdate",),
    "account": ("billingaccountid",),
    "subscription": ("subscriptionid", "subscriptionguid"),
    "cost": ("costinbillingcurrency", "cost", "pretaxcost"),
    "currency": ("billingcurrency", "billingcurrencycode", "currency"),
    "quantity": ("quantity",),
    "unit": ("unitofmeasure",),
    "resource": ("resourceid", "instanceid"),
    "service": ("metercategory",),
    "sku": ("meterid",),
    "region": ("resourcelocation",),
    "tags": ("tags",),
    "charge_type": ("chargetype",),
    "pricing_model": ("pricingmodel",),
    "additional": ("additionalinfo",),
    "payg_price": ("paygprice",),
}
REQUIRED = ("date", "period", "account", "subscription", "cost", "currency")
CHARGE_CATEGORY = {
    "usage": "Usage",
    "purchase": "Purchase",
    "tax": "Tax",
    "refund": "Credit",
    "roundingadjustment": "Adjustment",
    "unusedreservation": "Usage",
    "unusedsavingsplan": "Usage",
}
COMMITMENT_MODELS = ("reservation", "savingsplan", "savings plan")


def columns_of(names: list[str]) -> dict[str, str]:
    """Canonical field -> the file's column name, for the fields the file has."""
    lower = {n.lower(): n for n in names}
    out: dict[str, str] = {}
    for field_name, candidates in FIELDS.items():
        found = next((lower[c] for c in candidates if c in lower), None)
        if found is not None:
            out[field_name] = found
    return out


def basis_of_name(name: str, default: Basis = "actual") -> Basis:
    """The cost basis a file or export name tells ("…Amortized…", "…Actual…"), else `default`."""
    low = name.lower()
    if "amortized" in low:
        return "amortized"
    if "actual" in low:
        return "actual"
    return default


def read_azure_file(
    path: str | Path, *, tag_key: str = "workload", basis: Basis | None = None
) -> pl.DataFrame:
    """Read and validate one Azure cost details file into billing rows; raises InputError."""
    return pl.concat(list(read_chunks(path, tag_key=tag_key, basis=basis)), how="vertical")


def read_chunks(
    path: str | Path,
    *,
    tag_key: str = "workload",
    reader: TableReader | None = None,
    basis: Basis | None = None,
) -> Iterator[pl.DataFrame]:
    """The billing rows of one cost details file, chunk by chunk, each validated; raises
    InputError (also after some chunks were yielded: the caller discards what it got)."""
    path = Path(path)
    reader = reader or TableReader(path)
    cols = columns_of(reader.columns)
    missing = [FIELDS[f][0] for f in REQUIRED if f not in cols]
    if missing:
        raise InputError(
            path,
            f"missing Azure cost details column(s): {', '.join(missing)} (an Azure Cost "
            "Management 'actual' or 'amortized' cost export?)",
        )
    chosen: Basis = basis or basis_of_name(path.name)
    guard = CurrencyGuard()
    rows = 0
    for chunk in reader.chunks(list(cols.values())):
        rows += chunk.frame.height
        frame = chunk.frame.rename({v: k for k, v in cols.items()})
        try:
            yield normalize_azure(path, frame, chunk.first_row, chosen, tag_key, guard)
        except InputError as exc:  # name the file's own column, not our field
            raise _in_file_terms(exc, path, cols) from None
    if rows == 0:
        raise InputError(path, "no rows")


def _in_file_terms(exc: InputError, path: Path, cols: dict[str, str]) -> InputError:
    """The error with the file's column name in place of the canonical field's."""
    where = InputError(path, "", row=exc.row, column=exc.column)
    problem = str(exc)[len(str(where)) :]
    return InputError(path, problem, row=exc.row, column=cols.get(exc.column, exc.column))


def _day(path: Path, frame: pl.DataFrame, column: str, first: int) -> pl.Series:
    """A date column (MM/DD/YYYY as EA writes it, or ISO) as a day; errors name the row."""
    text = as_text(frame, column)
    day = pl.select(
        pl.coalesce(
            text.str.to_date("%m/%d/%Y", strict=False),
            text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
        )
    ).to_series()
    bad = day.is_null() & text.is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputError(
            path,
            f"{text[i]!r} is not a date (MM/DD/YYYY or YYYY-MM-DD)",
            row=first + i,
            column=column,
        )
    require(path, day, column, first)
    return day


def _text(frame: pl.DataFrame, field_name: str) -> pl.Series:
    if field_name in frame.columns:
        return as_text(frame, field_name)
    return pl.Series(field_name, [None] * frame.height, dtype=pl.String)


def _tags(frame: pl.DataFrame) -> pl.Series:
    """Tags as JSON object text (EA's `"k": "v","k2": "v2"` gets its braces)."""
    raw = _text(frame, "tags")
    return pl.select(
        pl.when(raw.str.starts_with("{"))
        .then(raw)
        .otherwise(pl.concat_str([pl.lit("{"), raw, pl.lit("}")]))
        .alias("Tags")
    ).to_series()


def _money(
    path: Path, frame: pl.DataFrame, first: int, basis: Basis
) -> tuple[pl.Series, pl.Series, pl.Series]:
    """BilledCost, EffectiveCost and ListCost by the file's basis (the module docstring)."""
    cost = to_float(path, frame, "cost", first)
    require(path, cost, "cost", first)
    quantity = to_float(path, frame, "quantity", first) if "quantity" in frame.columns else None
    payg = to_float(path, frame, "payg_price", first) if "payg_price" in frame.columns else None
    listed = (
        (payg * quantity).alias("ListCost")
        if payg is not None and quantity is not None
        else pl.Series("ListCost", [None] * frame.height, dtype=pl.Float64)
    )
    if basis == "actual":
        return cost.alias("BilledCost"), cost.alias("EffectiveCost"), listed
    model = _text(frame, "pricing_model").str.to_lowercase()
    charge = _text(frame, "charge_type").str.to_lowercase()
    commitment = model.is_in(list(COMMITMENT_MODELS)).fill_null(False) | charge.str.starts_with(
        "unused"
    ).fill_null(False)
    billed = pl.select(pl.when(~commitment).then(cost)).to_series().alias("BilledCost")
    return billed, cost.alias("EffectiveCost"), listed


def normalize_azure(
    path: Path,
    frame: pl.DataFrame,
    first: int,
    basis: Basis,
    tag_key: str,
    guard: CurrencyGuard,
) -> pl.DataFrame:
    """One validated chunk in the billing shape."""
    day = _day(path, frame, "date", first)
    period = _day(path, frame, "period", first)
    for f in ("account", "subscription", "currency"):
        require(path, _text(frame, f), f, first)
    billed, effective, listed = _money(path, frame, first, basis)
    tags = _tags(frame)
    out = pl.DataFrame(
        {
            "day": day,
            "BillingPeriodStart": period,
            "BillingAccountId": _text(frame, "account"),
            "subscription": _text(frame, "subscription"),
            "BillingCurrency": _text(frame, "currency"),
            "BilledCost": billed,
            "EffectiveCost": effective,
            "ListCost": listed,
            "Tags": tags,
        }
    )
    guard.check(path, out, first)
    return conform(out.select(**_columns(path, frame, first, tag_key, tags)), "billing_items")


def _columns(
    path: Path, frame: pl.DataFrame, first: int, tag_key: str, tags: pl.Series
) -> dict[str, pl.Expr]:
    """The billing shape's columns over the checked money frame (`out` of normalize_azure)."""
    service = _text(frame, "service")
    additional = _text(frame, "additional")
    quantity = _quantity(path, frame, first)
    return dict(
        ChargePeriodStart=pl.col("day").cast(UTC_TS),
        ChargePeriodEnd=(pl.col("day") + pl.duration(days=1)).cast(UTC_TS),
        BillingPeriodStart=pl.col("BillingPeriodStart").cast(UTC_TS),
        BillingAccountId=pl.col("BillingAccountId"),
        ProviderName=pl.lit("Microsoft"),
        ServiceName=pl.lit(service),
        ResourceId=instance_id(pl.lit(_text(frame, "resource"))),
        SkuId=pl.lit(_text(frame, "sku")),
        ChargeCategory=pl.lit(_text(frame, "charge_type"))
        .str.to_lowercase()
        .replace_strict(CHARGE_CATEGORY, default=None, return_dtype=pl.String),
        PricingUnit=pl.lit(_text(frame, "unit")),
        PricingQuantity=pl.lit(quantity),
        ConsumedQuantity=pl.lit(quantity),
        BilledCost=pl.col("BilledCost"),
        EffectiveCost=pl.col("EffectiveCost"),
        ListCost=pl.col("ListCost"),
        BillingCurrency=pl.col("BillingCurrency"),
        Tags=pl.col("Tags"),
        RegionId=pl.lit(_text(frame, "region")).str.to_lowercase(),
        InstanceType=pl.when(pl.lit(service) == "Virtual Machines").then(
            pl.lit(additional).str.json_path_match("$.ServiceType")
        ),
        workload=pl.lit(workload_from_tags(path, tags, tag_key, first)),
        source=pl.lit("azure"),
        scope=pl.concat_str(
            [
                pl.lit("azure"),
                pl.col("BillingAccountId"),
                pl.col("subscription"),
                pl.col("BillingPeriodStart").dt.strftime("%Y-%m-%d"),
            ],
            separator="|",
        ),
    )


def _quantity(path: Path, frame: pl.DataFrame, first: int) -> pl.Series:
    if "quantity" in frame.columns:
        return to_float(path, frame, "quantity", first)
    return pl.Series("quantity", [None] * frame.height, dtype=pl.Float64)
