"""Money helpers shared by the recommendations and the report: GPU classes of the catalog, and the
way figures are written in words."""

from __future__ import annotations

import math
import re

import polars as pl

HOURS_PER_MONTH = 730.0
MIB_PER_GIB = 1024.0


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
    """One row per GPU class: gpu_model, memory, relative throughput, purchase price."""
    return catalog.filter(pl.col("kind") == "gpu").select(
        "gpu_model",
        "gpu_memory_gib",
        "relative_throughput",
        "high_end",
        "purchase_usd_per_gpu",
    )


def match_class(
    model: str | None, mem_total_gib: float | None, classes: pl.DataFrame
) -> str | None:
    """The catalog class of a reported GPU model: the exact name, else the classes whose name (or
    its part before `-`, "A100" of "A100-80GB") the model names as a whole word, the one whose
    memory is nearest the GPU's ("NVIDIA A100-SXM4-40GB" with 40 GiB -> A100-40GB)."""
    if not model:
        return None
    names = classes["gpu_model"].to_list()
    by_upper = {n.upper(): n for n in names}
    if model.upper() in by_upper:
        return by_upper[model.upper()]
    memory = dict(classes.select("gpu_model", "gpu_memory_gib").iter_rows())
    found = []
    for name in names:
        for token in {name, name.split("-")[0]}:
            if re.search(rf"(?i)(^|[^a-z0-9]){re.escape(token)}([^a-z0-9]|$)", model):
                found.append(name)
                break
    if not found:
        return None
    if mem_total_gib is None or len(found) == 1:
        return max(found, key=len)
    return min(found, key=lambda n: (abs((memory.get(n) or 0) - mem_total_gib), -len(n)))


def cloud_price_per_gpu(catalog: pl.DataFrame, gpu_model: str) -> tuple[float, str] | None:
    """The cheapest on-demand price per GPU-hour of a class among the catalog's instances, and
    the instance type that gives it."""
    rows = (
        catalog.filter(
            (pl.col("kind") == "instance")
            & (pl.col("gpu_model") == gpu_model)
            & pl.col("on_demand_usd_per_hour").is_not_null()
        )
        .with_columns(per_gpu=pl.col("on_demand_usd_per_hour") / pl.col("gpu_count"))
        .sort("per_gpu", "name")
    )
    if rows.height == 0:
        return None
    return float(rows["per_gpu"][0]), str(rows["name"][0])
