"""Money helpers shared by the recommendations and the report: GPU classes of the catalog, and the
way figures are written in words. Reported model names resolve to classes in config/gpu_class.py."""

from __future__ import annotations

import math

import polars as pl


def usd(value: float | None, *, cents: bool = True) -> str:
    """`$16,030.80` (negative: `-$12.00`); `n/a` for a missing figure."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"${abs(value):,.2f}" if cents else f"${abs(value):,.0f}"
    return f"-{text}" if value < 0 else text


def rate(value: float) -> str:
    """A unit price with the digits it needs: `$21.96`, `$1.861`, `$0.8048`."""
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    if "." in text and len(text.split(".")[1]) < 2:
        text += "0"
    return f"${text}"


def pct(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value * 100:.{digits}f} %"


# GPU classes ---------------------------------------------------------------------------------
def gpu_classes(catalog: pl.DataFrame) -> pl.DataFrame:
    """One row per GPU class: gpu_model, memory, relative throughput, high-end, purchase price
    and whether it is for sale (config/gpu_class.py resolves reported names to these)."""
    classes = catalog.filter(pl.col("kind") == "gpu")
    for name, dtype in (("for_sale", pl.Boolean), ("aliases", pl.String)):
        if name not in classes.columns:
            classes = classes.with_columns(pl.lit(None, dtype).alias(name))
    return classes.select(
        "gpu_model",
        "gpu_memory_gib",
        "relative_throughput",
        "high_end",
        "purchase_usd_per_gpu",
        "for_sale",
        "aliases",
    )


def cloud_price_per_gpu(
    catalog: pl.DataFrame, gpu_model: str, *, clouds: tuple[str, ...] = ()
) -> tuple[float, str] | None:
    """The cheapest on-demand price per GPU-hour of a class among the catalog's instances (of
    `clouds` where given), and the instance type that gives it."""
    rows = (
        catalog.filter(
            (pl.col("kind") == "instance")
            & (pl.col("gpu_model") == gpu_model)
            & pl.col("on_demand_usd_per_hour").is_not_null()
            & (pl.col("provider").is_in(list(clouds)) if clouds else pl.lit(True))
        )
        .with_columns(per_gpu=pl.col("on_demand_usd_per_hour") / pl.col("gpu_count"))
        .sort("per_gpu", "name")
    )
    if rows.height == 0:
        return None
    return float(rows["per_gpu"][0]), str(rows["name"][0])
