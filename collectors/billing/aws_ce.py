"""AWS Cost Explorer pulls: daily cost per workload tag and usage type, into the billing shape.

Every Cost Explorer request costs $0.01, so a pull asks for as little as it can and counts what it
asked (`CostExplorer.requests`, every HTTP attempt, retries included: botocore's own retries are
switched off so none goes uncounted):
- one `GetCostAndUsage` per account per run, DAILY, grouped by the workload tag and USAGE_TYPE
  (the usage type names the instance type of instance hours: `USE1-BoxUsage:p4d.24xlarge`),
  filtered to the account (LINKED_ACCOUNT), each `NextPageToken` page one more request;
- the window is a trailing one (today and the `trailing_days` before it: Cost Explorer restates
  recent days), widened to the month's start once every `rebuild_days` (month-to-date rebuild: in
  a month's first days the trailing window already holds it, and the same one request serves
  both) and back to the oldest day of a closed month that AWS still called `Estimated` when it
  was pulled;
- with `with_resources`, the last 14 days of EC2 compute come from
  `GetCostAndUsageWithResources` (grouped by RESOURCE_ID and USAGE_TYPE, plus one request grouped
  by RESOURCE_ID and the tag for each instance's workload), and the plain query excludes EC2
  compute for those days, so no dollar is in both;
- `LimitExceededException`, throttling and 5xx answers are retried with exponential backoff.

Every answer is checked against its request before anything is kept (`check_page`): each period
must lie in the requested window and be one unit of the requested granularity (a month-long
period answering a DAILY request is refused: a month's total never lands on its first day), the
group definitions and every group's keys must be the requested GroupBy (a tag key `workload$...`
for a TAG group), and a group must carry at least one requested cost metric. An answer that does
not match raises `CeAnswerError` naming the account, the window and what did not match; the
account's pull then stores nothing. A metric the answer does not give stays null, never 0.

Rows are scoped per (account, day): a re-pulled day replaces its earlier rows.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import polars as pl
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

from collectors.billing.normalize import instance_type_from_usage, json_object
from collectors.billing.provider import Window, WindowPull, all_days, month_start, plan_window
from tables.records import UTC_TS, conform, empty

__all__ = ["CePull", "CeWindow", "CostExplorer", "month_start", "plan_window", "pull_account"]

log = logging.getLogger(__name__)

METRICS = (
    "UnblendedCost",
    "NetUnblendedCost",
    "AmortizedCost",
    "NetAmortizedCost",
    "UsageQuantity",
)
EC2_COMPUTE = "Amazon Elastic Compute Cloud - Compute"
RESOURCE_DAYS = 14  # GetCostAndUsageWithResources covers today and the 13 days before
RETRY_CODES = frozenset(
    {"LimitExceededException", "ThrottlingException", "TooManyRequestsException", "Throttling"}
)
NO_RESOURCE = frozenset({"", "NoResourceId", "No resource id"})
USD_PER_REQUEST = 0.01


def ce_client(session: Any) -> Any:
    """A Cost Explorer client (its endpoint is us-east-1) without botocore's own retries."""
    return session.client(
        "ce",
        region_name="us-east-1",
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


class CostExplorer:
    """Cost Explorer calls with paging, backoff and a request count."""

    def __init__(
        self,
        client: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 6,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.sleep = sleep
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.jitter = jitter
        self.requests = 0
        self.retries = 0

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One request, retried on throttling and server errors with exponential backoff."""
        for attempt in range(self.max_attempts):
            self.requests += 1
            try:
                return getattr(self.client, operation)(**request)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
                if code not in RETRY_CODES and status < 500:
                    raise
                why = f"{code or 'HTTP'} {status}"
                if attempt == self.max_attempts - 1:
                    raise
            except (ConnectionError, ReadTimeoutError) as exc:
                why = type(exc).__name__
                if attempt == self.max_attempts - 1:
                    raise
            delay = min(self.max_delay_s, self.base_delay_s * 2**attempt)
            delay *= 0.5 + 0.5 * self.jitter()
            self.retries += 1
            log.warning("Cost Explorer %s: %s; retrying in %.1fs", operation, why, delay)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def pages(self, operation: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every page of a request, following `NextPageToken`."""
        token: str | None = None
        while True:
            req = dict(request)
            if token:
                req["NextPageToken"] = token
            resp = self.call(operation, req)
            yield resp
            token = resp.get("NextPageToken")
            if not token:
                return


# Planning: the generic window of collectors/billing/provider.py ------------------------------
CeWindow = Window


# Requests -------------------------------------------------------------------------------------
def _and(*filters: dict[str, Any] | None) -> dict[str, Any] | None:
    parts = [f for f in filters if f]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"And": parts}


def _account_filter(account_id: str | None) -> dict[str, Any] | None:
    if not account_id:
        return None
    return {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [account_id]}}


_EC2 = {"Dimensions": {"Key": "SERVICE", "Values": [EC2_COMPUTE]}}


def usage_request(
    start: date, end: date, tag_key: str, account_id: str | None, *, exclude_ec2: bool = False
) -> dict[str, Any]:
    """GetCostAndUsage, daily, grouped by the workload tag and the usage type."""
    req: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": list(METRICS),
        "GroupBy": [
            {"Type": "TAG", "Key": tag_key},
            {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
        ],
    }
    flt = _and(_account_filter(account_id), {"Not": _EC2} if exclude_ec2 else None)
    if flt:
        req["Filter"] = flt
    return req


def resources_request(
    start: date, end: date, account_id: str | None, second_group: dict[str, str]
) -> dict[str, Any]:
    """GetCostAndUsageWithResources for EC2 compute, grouped by RESOURCE_ID and `second_group`."""
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": list(METRICS),
        "GroupBy": [{"Type": "DIMENSION", "Key": "RESOURCE_ID"}, second_group],
        "Filter": _and(_account_filter(account_id), _EC2),
    }


# Responses -> rows ----------------------------------------------------------------------------
def _tag_value(key: str) -> str | None:
    """`workload$llm` -> `llm`; `workload$` (untagged) -> None."""
    _, _, value = key.partition("$")
    return value or None


def _amount(metrics: dict[str, Any], name: str) -> tuple[float | None, str | None]:
    m = metrics.get(name)
    if not isinstance(m, dict) or m.get("Amount") in (None, ""):
        return None, None
    return float(m["Amount"]), m.get("Unit")


# Checking an answer against its request --------------------------------------------------------
class CeAnswerError(ValueError):
    """A Cost Explorer answer that does not match its request: refused, nothing is stored."""


def _period(value: Any) -> tuple[date, date] | None:
    try:
        return date.fromisoformat(value["Start"][:10]), date.fromisoformat(value["End"][:10])
    except (KeyError, TypeError, ValueError):
        return None


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def _period_problem(p0: date, p1: date, start: date, end: date, granularity: str) -> str | None:
    """Why the period [p0, p1) cannot answer a `granularity` request for [start, end), or None."""
    if p0 >= p1 or p0 < start or p1 > end:
        return "lies outside the requested window"
    if granularity == "DAILY" and p1 - p0 != timedelta(days=1):
        return (
            "is not one day, as the DAILY request asked (a longer period's total is never booked "
            "on its first day)"
        )
    if granularity == "MONTHLY" and (
        (p0 != start and p0.day != 1) or p1 != min(end, _next_month(p0))
    ):
        return "is not one calendar month of the window, as the MONTHLY request asked"
    return None


def _describe(group_by: list[dict[str, str]]) -> str:
    return ", ".join(f"{g['Type']} {g['Key']}" for g in group_by) or "no grouping"


def _keys_problem(keys: Any, group_by: list[dict[str, str]]) -> str | None:
    """Why a group's Keys do not have the requested shape; None: they do."""
    if not isinstance(keys, list) or len(keys) != len(group_by):
        return f"has {len(keys) if isinstance(keys, list) else 'no'} key(s)"
    for g, key in zip(group_by, keys, strict=True):
        if not isinstance(key, str):
            return f"has a key that is not text ({key!r})"
        if g["Type"] in ("TAG", "COST_CATEGORY") and not key.startswith(f"{g['Key']}$"):
            return f"has {key!r} where the {g['Type']} {g['Key']!r} ('{g['Key']}$value') belongs"
    return None


def check_page(
    page: dict[str, Any], request: dict[str, Any], *, account: str, operation: str
) -> None:
    """Raise CeAnswerError unless `page` answers `request` (see the module docstring)."""
    window = request["TimePeriod"]
    start, end = date.fromisoformat(window["Start"]), date.fromisoformat(window["End"])
    granularity = request.get("Granularity", "DAILY")
    group_by = request.get("GroupBy", [])
    cost_metrics = [m for m in request.get("Metrics", []) if m.endswith("Cost")]

    def refuse(what: str) -> CeAnswerError:
        return CeAnswerError(
            f"Cost Explorer {operation} for account {account}, {start}..{end - timedelta(days=1)} "
            f"({granularity}, grouped by {_describe(group_by)}): the answer {what}; nothing was "
            "stored for this account"
        )

    definitions = page.get("GroupDefinitions")
    if definitions:
        got = [{"Type": d.get("Type"), "Key": d.get("Key")} for d in definitions]
        if got != [{"Type": g["Type"], "Key": g["Key"]} for g in group_by]:
            raise refuse(f"is grouped by {_describe(got)}")
    for result in page.get("ResultsByTime", []):
        period = _period(result.get("TimePeriod"))
        if period is None:
            raise refuse(f"has a period that is not two dates: {result.get('TimePeriod')!r}")
        p0, p1 = period
        problem = _period_problem(p0, p1, start, end, granularity)
        if problem:
            raise refuse(f"has the period {p0}..{p1 - timedelta(days=1)}, which {problem}")
        for group in result.get("Groups", []):
            keys = group.get("Keys")
            problem = _keys_problem(keys, group_by)
            if problem:
                raise refuse(f"has a group on {p0} with keys {keys!r} that {problem}")
            metrics = group.get("Metrics") or {}
            if cost_metrics and all(_amount(metrics, m)[0] is None for m in cost_metrics):
                raise refuse(
                    f"has a group on {p0} ({keys!r}) without any of the requested cost metrics "
                    f"({', '.join(cost_metrics)})"
                )


def group_rows(
    pages: list[dict[str, Any]],
    request: dict[str, Any],
    *,
    account: str,
    operation: str = "GetCostAndUsage",
) -> tuple[list[dict[str, Any]], dict[date, bool]]:
    """Flat rows (day, end, keys by group key name, metrics) and each period's Estimated flag,
    from pages checked against `request` (`check_page`). A group's keys are named by the
    request's GroupBy; a tag group is named `TAG`. A metric an answer does not give is None."""
    for page in pages:
        check_page(page, request, account=account, operation=operation)
    names = [g["Key"] if g["Type"] != "TAG" else "TAG" for g in request.get("GroupBy", [])]
    rows: list[dict[str, Any]] = []
    estimated: dict[date, bool] = {}
    for page in pages:
        for result in page.get("ResultsByTime", []):
            period = _period(result["TimePeriod"])
            assert period is not None  # check_page refused a page with an unreadable period
            day, end = period
            estimated[day] = estimated.get(day, False) or bool(result.get("Estimated", False))
            for group in result.get("Groups", []):
                keys = dict(zip(names, group["Keys"], strict=True))
                row: dict[str, Any] = {"day": day, "end": end, **keys}
                metrics = group.get("Metrics") or {}
                for metric in METRICS:
                    row[metric], unit = _amount(metrics, metric)
                    row[f"{metric}_unit"] = unit
                rows.append(row)
    return rows, estimated


def billing_rows(
    rows: list[dict[str, Any]],
    *,
    account: str,
    tag_key: str,
    resource_workloads: dict[tuple[date, str], str | None] | None = None,
) -> pl.DataFrame:
    """Cost Explorer group rows in the billing shape."""
    if not rows:
        return empty("billing_items")
    resource_workloads = resource_workloads or {}
    records = [rec for r in rows if (rec := _group_record(r, resource_workloads)) is not None]
    if not records:
        return empty("billing_items")
    frame = pl.DataFrame(records, schema=_RECORD_SCHEMA, orient="row")
    instance_type = instance_type_from_usage(pl.col("usage_type"))
    return conform(
        frame.select(
            ChargePeriodStart=pl.col("day").cast(UTC_TS),
            ChargePeriodEnd=pl.col("end").cast(UTC_TS),
            BillingPeriodStart=pl.col("day").dt.truncate("1mo").cast(UTC_TS),
            BillingAccountId=pl.lit(account),
            ProviderName=pl.lit("AWS"),
            ServiceName=pl.when(instance_type.is_not_null()).then(
                pl.lit("Amazon Elastic Compute Cloud")
            ),
            ResourceId=pl.col("resource"),
            SkuId=pl.col("usage_type"),
            PricingUnit=pl.col("unit"),
            PricingQuantity=pl.col("quantity"),
            ConsumedQuantity=pl.col("quantity"),
            BilledCost=pl.col("billed"),
            EffectiveCost=pl.col("effective"),
            BillingCurrency=pl.col("currency"),
            Tags=json_object({tag_key: pl.col("workload")}),
            InstanceType=instance_type,
            workload=pl.col("workload"),
            source=pl.lit("aws_ce"),
            scope=pl.concat_str(
                [pl.lit("aws_ce"), pl.lit(account), pl.col("day").dt.strftime("%Y-%m-%d")],
                separator="|",
            ),
        ),
        "billing_items",
    )


# One Cost Explorer group, as `_group_record` gives it.
_RECORD_SCHEMA = {
    "day": pl.Date,
    "end": pl.Date,
    "usage_type": pl.String,
    "resource": pl.String,
    "workload": pl.String,
    "billed": pl.Float64,
    "effective": pl.Float64,
    "quantity": pl.Float64,
    "unit": pl.String,
    "currency": pl.String,
}


def _group_record(
    r: dict[str, Any], resource_workloads: dict[tuple[date, str], str | None]
) -> dict[str, Any] | None:
    """One group row's money, quantity, resource and workload (None: a group of zeros)."""
    billed = r["NetUnblendedCost"] if r["NetUnblendedCost"] is not None else r["UnblendedCost"]
    effective = next(
        (r[m] for m in ("NetAmortizedCost", "AmortizedCost") if r[m] is not None), billed
    )
    quantity = r["UsageQuantity"]
    if not billed and not effective and not quantity:
        return None  # Cost Explorer lists zero groups; they carry nothing (None: not given)
    currency = next((r[f"{m}_unit"] for m in METRICS[:4] if r[f"{m}_unit"] is not None), None)
    resource = r.get("RESOURCE_ID")
    resource = None if resource in NO_RESOURCE else resource
    workload = (
        _tag_value(r["TAG"]) if "TAG" in r else resource_workloads.get((r["day"], resource or ""))
    )
    return {
        "day": r["day"],
        "end": r["end"],
        "usage_type": r.get("USAGE_TYPE"),
        "resource": resource,
        "workload": workload,
        "billed": billed,  # a metric the answer did not give stays null, never 0
        "effective": effective,
        "quantity": quantity,
        "unit": r["UsageQuantity_unit"],
        "currency": currency or "USD",
    }


# One account's pull: its rows, the days it covered with their Estimated flag, its requests.
CePull = WindowPull


def pull_account(
    ce: CostExplorer, account_id: str | None, window: CeWindow, tag_key: str, *, label: str
) -> CePull:
    """Pull one account's window (all its requests; see the module docstring)."""
    before = ce.requests
    frames: list[pl.DataFrame] = []
    days: dict[date, bool] = {}

    def fetch(operation: str, request: dict[str, Any]) -> list[dict[str, Any]]:
        name = "".join(part.title() for part in operation.split("_"))
        rows, est = group_rows(
            list(ce.pages(operation, request)), request, account=label, operation=name
        )
        for d, e in est.items():
            days[d] = days.get(d, False) or e
        return rows

    split = window.resources_from or window.end
    if window.start < split:
        rows = fetch("get_cost_and_usage", usage_request(window.start, split, tag_key, account_id))
        frames.append(billing_rows(rows, account=label, tag_key=tag_key))
    if window.resources_from is not None:
        lo, hi = window.resources_from, window.end
        rows = fetch(
            "get_cost_and_usage", usage_request(lo, hi, tag_key, account_id, exclude_ec2=True)
        )
        frames.append(billing_rows(rows, account=label, tag_key=tag_key))
        by_tag = {"Type": "TAG", "Key": tag_key}
        owners = resource_owners(
            fetch(
                "get_cost_and_usage_with_resources", resources_request(lo, hi, account_id, by_tag)
            )
        )
        by_usage = {"Type": "DIMENSION", "Key": "USAGE_TYPE"}
        rows = fetch(
            "get_cost_and_usage_with_resources", resources_request(lo, hi, account_id, by_usage)
        )
        frames.append(billing_rows(rows, account=label, tag_key=tag_key, resource_workloads=owners))
    # Days the answer did not list (no cost at all) were still pulled.
    frame = pl.concat(frames, how="vertical") if frames else empty("billing_items")
    return CePull(frame, all_days(window, days), ce.requests - before)


def resource_owners(rows: list[dict[str, Any]]) -> dict[tuple[date, str], str | None]:
    """(day, resource id) -> the workload tag value carrying most of that resource's cost."""
    best: dict[tuple[date, str], tuple[float, str | None]] = {}
    for r in rows:
        resource = r.get("RESOURCE_ID")
        if resource in NO_RESOURCE or resource is None:
            continue
        cost = r["UnblendedCost"] or 0.0
        key = (r["day"], resource)
        value = _tag_value(r.get("TAG", ""))
        if key not in best or cost > best[key][0]:
            best[key] = (cost, value)
    return {k: v for k, (_, v) in best.items()}
