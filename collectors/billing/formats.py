"""Which billing format a file is, judged from its column names, and why we refuse the ones we
do not claim.

We claim FOCUS 1.x (any provider), AWS Cost and Usage Reports (legacy CUR with `lineItem/…`
columns, CUR 2.0 and legacy CUR Parquet with snake_case columns) and Azure Cost Management cost
details (EA/MCA actual or amortized cost exports). Native exports of other clouds are recognised
only to say what they are and which export to ask for instead: a refusal that names the fix
beats a list of missing FOCUS columns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Format = Literal["focus", "cur_legacy", "cur_snake", "azure_cost"]

# Columns every FOCUS 1.0-1.2 file has (ProviderName was ServiceProviderName in 1.0-preview).
FOCUS_MARKERS = ("BilledCost", "EffectiveCost", "ChargePeriodStart", "BillingCurrency")
CUR_LEGACY_MARKERS = ("lineItem/UnblendedCost", "lineItem/UsageStartDate")
CUR_SNAKE_MARKERS = ("line_item_unblended_cost", "line_item_usage_start_date")

_AZURE_MARKERS = ("MeterCategory", "MeterId", "SubscriptionId")
_OCI_MARKERS = ("lineItem/intervalUsageStart", "lineItem/tenantId")

AZURE_REFUSAL = (
    "this is an Azure Cost Management cost export (EA/MCA 'actual' or 'amortized' cost details: "
    "MeterCategory, SubscriptionId, Cost columns), not FOCUS: import it with "
    "`gpuledger import azure` (or create an export of type 'Cost and usage details (FOCUS)' in "
    "Cost Management > Exports and import that with `gpuledger import focus`)"
)
OCI_REFUSAL = (
    "this is an Oracle Cloud (OCI) cost report (lineItem/intervalUsageStart, cost/myCost columns), "
    "not FOCUS. OCI writes FOCUS reports into the same usage-report bucket (reports/FOCUS Reports/"
    "…): import those with `gpuledger import focus`"
)
CUR_IS_NOT_FOCUS = (
    "this is an AWS Cost and Usage Report, not FOCUS: import it with `gpuledger import cur`"
)
FOCUS_IS_NOT_CUR = "this is a FOCUS file, not an AWS CUR: import it with `gpuledger import focus`"


def identify(columns: Iterable[str]) -> Format | None:
    """The claimed format whose marker columns are all present, or None."""
    names = {c.lstrip("\ufeff").strip() for c in columns}
    if all(c in names for c in CUR_LEGACY_MARKERS):
        return "cur_legacy"
    if all(c in names for c in CUR_SNAKE_MARKERS):
        return "cur_snake"
    if all(c in names for c in FOCUS_MARKERS):
        return "focus"
    if _is_azure_cost(names):
        return "azure_cost"
    return None


def _is_azure_cost(names: set[str]) -> bool:
    """Azure cost details, whatever the agreement's spelling (EA PascalCase, MCA camelCase)."""
    low = {n.lower() for n in names}
    return all(c.lower() in low for c in _AZURE_MARKERS) and bool(
        low & {"cost", "costinbillingcurrency", "pretaxcost"}
    )


def foreign_format(columns: Iterable[str]) -> str | None:
    """Why a file of another cloud's native format is refused, or None when it is none we know."""
    names = {c.lstrip("\ufeff").strip() for c in columns}
    if all(c in names for c in _OCI_MARKERS):
        return OCI_REFUSAL
    if _is_azure_cost(names):
        return AZURE_REFUSAL
    return None
