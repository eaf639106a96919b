"""AWS stand-ins for the billing tests: moto's ThreadedMotoServer on 127.0.0.1 (a real HTTP
endpoint that boto3 reaches through AWS_ENDPOINT_URL), Cost Explorer answers seeded through
moto's own API, and builders of small CUR files.

Import the fixtures into a test module:
`from tests.collectors.billing.aws_fakes import aws, moto_server`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

# Legacy CUR columns the synthetic files carry (a real report has many more; these are enough).
LEGACY_COLUMNS = [
    "identity/LineItemId",
    "bill/PayerAccountId",
    "bill/BillingPeriodStartDate",
    "lineItem/UsageAccountId",
    "lineItem/LineItemType",
    "lineItem/UsageStartDate",
    "lineItem/UsageEndDate",
    "lineItem/ProductCode",
    "lineItem/UsageType",
    "lineItem/ResourceId",
    "lineItem/UsageAmount",
    "lineItem/CurrencyCode",
    "lineItem/UnblendedCost",
    "lineItem/NetUnblendedCost",
    "pricing/publicOnDemandCost",
    "pricing/unit",
    "product/ProductName",
    "product/instanceType",
    "product/regionCode",
    "reservation/EffectiveCost",
    "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
    "reservation/UnusedRecurringFee",
    "reservation/ReservationARN",
    "savingsPlan/SavingsPlanEffectiveCost",
    "savingsPlan/TotalCommitmentToDate",
    "savingsPlan/UsedCommitment",
    "resourceTags/user:workload",
    "resourceTags/user:team",
]


def legacy_row(**values: Any) -> dict[str, str]:
    """One legacy CUR row: a GPU instance hour unless overridden (short names: `cost`, …)."""
    short = {
        "id": "identity/LineItemId",
        "payer": "bill/PayerAccountId",
        "period": "bill/BillingPeriodStartDate",
        "account": "lineItem/UsageAccountId",
        "type": "lineItem/LineItemType",
        "start": "lineItem/UsageStartDate",
        "end": "lineItem/UsageEndDate",
        "product": "lineItem/ProductCode",
        "usage_type": "lineItem/UsageType",
        "resource": "lineItem/ResourceId",
        "amount": "lineItem/UsageAmount",
        "currency": "lineItem/CurrencyCode",
        "cost": "lineItem/UnblendedCost",
        "net": "lineItem/NetUnblendedCost",
        "public": "pricing/publicOnDemandCost",
        "instance_type": "product/instanceType",
        "ri_effective": "reservation/EffectiveCost",
        "ri_unused_upfront": "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
        "ri_unused_recurring": "reservation/UnusedRecurringFee",
        "ri_arn": "reservation/ReservationARN",
        "sp_effective": "savingsPlan/SavingsPlanEffectiveCost",
        "sp_commitment": "savingsPlan/TotalCommitmentToDate",
        "sp_used": "savingsPlan/UsedCommitment",
        "workload": "resourceTags/user:workload",
        "team": "resourceTags/user:team",
    }
    row = {c: "" for c in LEGACY_COLUMNS}
    row.update(
        {
            "identity/LineItemId": "li-1",
            "bill/PayerAccountId": "111111111111",
            "bill/BillingPeriodStartDate": "2026-11-01T00:00:00.000Z",
            "lineItem/UsageAccountId": "222222222222",
            "lineItem/LineItemType": "Usage",
            "lineItem/UsageStartDate": "2026-11-20T10:00:00.000Z",
            "lineItem/UsageEndDate": "2026-11-20T11:00:00.000Z",
            "lineItem/ProductCode": "AmazonEC2",
            "lineItem/UsageType": "USE1-BoxUsage:p4d.24xlarge",
            "lineItem/ResourceId": "i-0d3a9c1e5b7f20001",
            "lineItem/UsageAmount": "1.0",
            "lineItem/CurrencyCode": "USD",
            "lineItem/UnblendedCost": "21.96",
            "pricing/publicOnDemandCost": "21.96",
            "pricing/unit": "Hrs",
            "product/ProductName": "Amazon Elastic Compute Cloud",
            "product/instanceType": "p4d.24xlarge",
            "product/regionCode": "us-east-1",
        }
    )
    for k, v in values.items():
        row[short.get(k, k)] = "" if v is None else str(v)
    return row


def legacy_csv(rows: list[dict[str, str]], *, gz: bool = False) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LEGACY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = buf.getvalue().encode()
    return gzip.compress(data) if gz else data


# Moto -----------------------------------------------------------------------------------------
@dataclass
class MotoAws:
    """A running moto server; `session()` is a boto3 session that reaches it."""

    url: str

    def session(self) -> boto3.Session:
        return boto3.Session(region_name="us-east-1")

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def seed_cost_and_usage(self, results: list[dict[str, Any]], account_id: str) -> None:
        """Queue GetCostAndUsage answers for `account_id` (moto's /moto-api/static/ce API: each
        distinct request takes the next one)."""
        body = json.dumps({"account_id": account_id, "results": results}).encode()
        req = urllib.request.Request(
            f"{self.url}/moto-api/static/ce/cost-and-usage-results",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        assert urllib.request.urlopen(req, timeout=10).status == 201


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> MotoAws:
    """The moto server, reset, with boto3 pointed at it for this test only."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    fake = MotoAws(moto_server)
    fake.reset()
    return fake


def ce_result(
    day: str, groups: list[tuple[str, str, float]], *, estimated: bool = False, unit: str = "USD"
) -> dict[str, Any]:
    """One day of a GetCostAndUsage answer grouped by (tag, usage type): (tag value, usage
    type, cost) per group; amortized cost = unblended cost, usage quantity 1."""
    end = _next_day(day)
    return {
        "TimePeriod": {"Start": day, "End": end},
        "Total": {},
        "Groups": [
            {
                "Keys": [f"workload${tag}", usage],
                "Metrics": {
                    "UnblendedCost": {"Amount": str(cost), "Unit": unit},
                    "AmortizedCost": {"Amount": str(cost), "Unit": unit},
                    "UsageQuantity": {"Amount": "1", "Unit": "Hrs"},
                },
            }
            for tag, usage, cost in groups
        ],
        "Estimated": estimated,
    }


def _next_day(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
