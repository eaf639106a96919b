"""Units, the constants every floor agrees on, and the activity rule (DESIGN.md §2).

Imports nothing of gpuledger's: the definitions in `tables/` name their columns' units from
`UNITS`, and every package takes the workload names and conversions from here.
"""

from __future__ import annotations

import polars as pl

# The unit of a column, by the short name its definition gives ("" = none: names, flags, text).
UNITS: dict[str, str] = {
    "": "no unit (a name, a flag, text or a count of rows)",
    "USD": "US dollars (money the bill gives in another currency is never summed with them)",
    "currency": "money in the currency its row names (FOCUS BillingCurrency)",
    "USD/h": "US dollars per hour",
    "USD/month": "US dollars per month of 730 hours",
    "GiB": "gibibytes (1,024 MiB)",
    "MiB": "mebibytes",
    "s": "seconds",
    "h": "hours",
    "GPU-s": "GPU-seconds: seconds a GPU (or a MIG instance's share of its board) was held",
    "GPU-h": "GPU-hours",
    "GPU-h/month": "GPU-hours per month of 730 hours",
    "GPUs": "GPUs (may be a fraction: a MIG instance's share of its board)",
    "%": "percent, 0 to 100",
    "fraction": "a fraction, 0 to 1",
    "W": "watts",
    "J": "joules",
    "mJ": "millijoules",
    "kWh": "kilowatt-hours",
    "MHz": "megahertz",
    "°C": "degrees Celsius",
    "days": "days",
    "months": "months",
    "count": "a number of things: rows, files, requests, attempts",
    "bytes": "bytes",
}

# Workload names the ledger books time and money to (DESIGN.md §2 "Workload").
IDLE = "__idle__"  # local GPU time with no process on the GPU
UNTAGGED = "untagged"  # cloud money whose resource carries no workload tag
UNATTRIBUTED_PREFIX = "unattributed:"  # + the user of a process no workload rule matched


def unattributed(user: str | None) -> str:
    """The workload of a process no rule matched: `unattributed:<user>`."""
    return f"{UNATTRIBUTED_PREFIX}{user}"


# Conversions.
HOURS_PER_MONTH = 730.0  # a month, as every monthly figure is scaled (8,760 h / 12)
HOURS_PER_YEAR = 8760.0  # depreciation years are counted in these
SECONDS_PER_HOUR = 3600.0
MIB_PER_GIB = 1024.0
BYTES_PER_MIB = 1024 * 1024
J_PER_KWH = 3.6e6


# The activity rule (DESIGN.md §2 "Activity"): SM active where the GPU reports it (NVML GPM,
# DCGM), else NVML's utilization.gpu; null (unknown, never 0) where it reports neither. Samples
# name the two `sm_active_pct` and `util_pct`; the minute rollups `sm_active_avg` and `util_avg`.
SAMPLE_SIGNALS = ("sm_active_pct", "util_pct")
MINUTE_SIGNALS = ("sm_active_avg", "util_avg")


def activity(sm_active: str = "sm_active_pct", util: str = "util_pct") -> pl.Expr:
    """The activity rule as a Polars expression, in percent (null where unknown)."""
    return pl.coalesce(sm_active, util)


def activity_sql(sm_active: str = "sm_active_pct", util: str = "util_pct") -> str:
    """The activity rule as a DuckDB SQL expression, in percent (NULL where unknown)."""
    return f"coalesce({sm_active}, {util})"
