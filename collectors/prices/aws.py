"""AWS prices for the catalog's instance types: on-demand from the Price List API (the `pricing`
client, which answers in us-east-1 only) and spot from EC2's spot price history.

On-demand: GetProducts for each instance type, Linux, shared tenancy, no pre-installed
software, capacity in use, in the region; the hourly USD of the OnDemand price dimension.
Spot: DescribeSpotPriceHistory for Linux/UNIX from `now`: the latest price of each zone, and
their median across the zones. Both page through NextToken. Credentials come only from boto3's
chain.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PRICING_REGION = "us-east-1"  # the Price List API's endpoint
SPOT_PRODUCT = "Linux/UNIX"
_FIXED_FILTERS = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "licenseModel": "No License required",
}


@dataclass(frozen=True)
class AwsPrice:
    """What the APIs said for one instance type (None: no price there)."""

    instance_type: str
    on_demand_usd_per_hour: float | None
    spot_usd_per_hour: float | None
    spot_zones: int = 0


def product_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """GetProducts filters for one Linux, shared-tenancy instance type in `region`."""
    fields = {"instanceType": instance_type, "regionCode": region, **_FIXED_FILTERS}
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in fields.items()]


def hourly_on_demand(price_item: str | dict[str, Any]) -> float | None:
    """The hourly USD of a Price List product's OnDemand terms (None without one above 0)."""
    item = json.loads(price_item) if isinstance(price_item, str) else price_item
    prices = [
        float(dim["pricePerUnit"]["USD"])
        for term in item.get("terms", {}).get("OnDemand", {}).values()
        for dim in term.get("priceDimensions", {}).values()
        if dim.get("unit") == "Hrs" and "USD" in dim.get("pricePerUnit", {})
    ]
    positive = [p for p in prices if p > 0]
    return min(positive) if positive else None


def on_demand_prices(client: Any, instance_types: Iterable[str], region: str) -> dict[str, float]:
    """instance type -> hourly on-demand USD in `region` (types without a price are left out)."""
    out: dict[str, float] = {}
    for itype in instance_types:
        kwargs: dict[str, Any] = {
            "ServiceCode": "AmazonEC2",
            "Filters": product_filters(itype, region),
            "FormatVersion": "aws_v1",
        }
        found: list[float] = []
        while True:
            page = client.get_products(**kwargs)
            found += [p for p in map(hourly_on_demand, page.get("PriceList", [])) if p]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        if found:
            out[itype] = min(found)
    return out


def spot_prices(
    client: Any, instance_types: Iterable[str], now: datetime
) -> dict[str, tuple[float, int]]:
    """instance type -> (median across zones of each zone's latest spot price, zones)."""
    kwargs: dict[str, Any] = {
        "InstanceTypes": sorted(set(instance_types)),
        "ProductDescriptions": [SPOT_PRODUCT],
        "StartTime": now,
    }
    latest: dict[tuple[str, str], tuple[datetime, float]] = {}
    while True:
        page = client.describe_spot_price_history(**kwargs)
        for h in page.get("SpotPriceHistory", []):
            key = (h["InstanceType"], h["AvailabilityZone"])
            if key not in latest or h["Timestamp"] > latest[key][0]:
                latest[key] = (h["Timestamp"], float(h["SpotPrice"]))
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    by_type: dict[str, list[float]] = {}
    for (itype, _zone), (_ts, price) in latest.items():
        by_type.setdefault(itype, []).append(price)
    return {t: (statistics.median(p), len(p)) for t, p in by_type.items()}


def aws_prices(
    pricing: Any, ec2: Any, instance_types: list[str], region: str, now: datetime
) -> list[AwsPrice]:
    """On-demand and spot prices of `instance_types` in `region` (`pricing`: a Price List
    client in us-east-1; `ec2`: an EC2 client in `region`)."""
    od = on_demand_prices(pricing, instance_types, region)
    spot = spot_prices(ec2, instance_types, now) if instance_types else {}
    return [
        AwsPrice(t, od.get(t), spot[t][0] if t in spot else None, spot[t][1] if t in spot else 0)
        for t in instance_types
    ]


def clients(region: str, profile: str = "") -> tuple[Any, Any]:
    """A Price List client (us-east-1) and an EC2 client in `region`, on boto3's chain."""
    import boto3

    session = boto3.Session(profile_name=profile or None)
    return session.client("pricing", region_name=PRICING_REGION), session.client(
        "ec2", region_name=region
    )
