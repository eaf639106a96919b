"""Cost Explorer pulls with botocore's Stubber: paging, throttling and 5xx backoff, restated
(Estimated) days, the window plan, resource-level data, real responses, and the number of
requests a daily run makes (each costs USD 0.01)."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import polars as pl
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from collectors.billing import aws_ce
from collectors.billing.aws_ce import (
    CeAnswerError,
    CeWindow,
    CostExplorer,
    billing_rows,
    group_rows,
    plan_window,
    pull_account,
    usage_request,
)
from tests.collectors.billing.aws_fakes import ce_result

REAL = Path(__file__).resolve().parents[2] / "fixtures/realdata/aws-cost-explorer-responses"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


SESSION = boto3.Session(region_name="us-east-1")


def _client():
    return SESSION.client("ce", region_name="us-east-1")


def _page(results, token=None, group_by=None):
    page = {
        "GroupDefinitions": group_by
        or [
            {"Type": "TAG", "Key": "workload"},
            {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
        ],
        "ResultsByTime": results,
        "DimensionValueAttributes": [],
    }
    if token:
        page["NextPageToken"] = token
    return page


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _ce(client, sleeps=None):
    return CostExplorer(
        client, sleep=sleeps if sleeps is not None else Sleeps(), jitter=lambda: 1.0
    )


# Paging, backoff -----------------------------------------------------------------------------
def test_pages_are_followed_and_each_is_a_request():
    client = _client()
    req = usage_request(date(2026, 11, 20), date(2026, 11, 22), "workload", "222222222222")
    day1 = ce_result("2026-11-20", [("llm", "USE1-BoxUsage:p4d.24xlarge", 21.96)])
    day2 = ce_result("2026-11-21", [("", "USE1-TimedStorage-ByteHrs", 0.5)])
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", _page([day1], token="t1"), req)
        stub.add_response("get_cost_and_usage", _page([day2]), {**req, "NextPageToken": "t1"})
        ce = _ce(client)
        window = CeWindow(date(2026, 11, 20), date(2026, 11, 22))
        pull = pull_account(ce, "222222222222", window, "workload", label="222222222222")
        stub.assert_no_pending_responses()
    assert ce.requests == pull.requests == 2
    f = pull.frame
    assert f["EffectiveCost"].sum() == pytest.approx(22.46)
    gpu = f.filter(pl.col("InstanceType").is_not_null()).row(0, named=True)
    assert gpu["InstanceType"] == "p4d.24xlarge" and gpu["workload"] == "llm"
    assert json.loads(gpu["Tags"]) == {"workload": "llm"}
    assert gpu["ServiceName"] == "Amazon Elastic Compute Cloud"
    assert gpu["ChargePeriodStart"] == datetime(2026, 11, 20, tzinfo=UTC)
    assert gpu["ChargePeriodEnd"] == datetime(2026, 11, 21, tzinfo=UTC)
    assert gpu["source"] == "aws_ce" and gpu["BillingCurrency"] == "USD"
    assert f.filter(pl.col("InstanceType").is_null())["workload"].to_list() == [None]
    assert sorted(f["scope"].to_list()) == [
        "aws_ce|222222222222|2026-11-20",
        "aws_ce|222222222222|2026-11-21",
    ]


def test_the_request_filters_the_account_and_groups_by_tag_and_usage_type():
    req = usage_request(date(2026, 11, 20), date(2026, 11, 24), "team", "222222222222")
    assert req["Granularity"] == "DAILY"
    assert req["GroupBy"] == [
        {"Type": "TAG", "Key": "team"},
        {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
    ]
    assert req["Filter"] == {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["222222222222"]}}
    assert req["TimePeriod"] == {"Start": "2026-11-20", "End": "2026-11-24"}
    assert "AmortizedCost" in req["Metrics"] and "UnblendedCost" in req["Metrics"]


@pytest.mark.parametrize(
    ("code", "status"),
    [("LimitExceededException", 400), ("ThrottlingException", 400), ("InternalServerError", 503)],
)
def test_throttling_and_server_errors_are_retried_with_backoff(code, status):
    client = _client()
    req = usage_request(date(2026, 11, 20), date(2026, 11, 21), "workload", None)
    day = ce_result("2026-11-20", [("llm", "USE1-BoxUsage:g5.xlarge", 1.006)])
    sleeps = Sleeps()
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_and_usage", code, "slow down", status, expected_params=req)
        stub.add_client_error("get_cost_and_usage", code, "slow down", status, expected_params=req)
        stub.add_response("get_cost_and_usage", _page([day]), req)
        ce = _ce(client, sleeps)
        pages = list(ce.pages("get_cost_and_usage", req))
    assert len(pages) == 1
    assert ce.requests == 3 and ce.retries == 2  # every attempt counted: each may be billed
    assert sleeps == [1.0, 2.0]  # exponential (jitter pinned to its top)


def test_access_denied_is_not_retried():
    client = _client()
    req = usage_request(date(2026, 11, 20), date(2026, 11, 21), "workload", None)
    with Stubber(client) as stub:
        stub.add_client_error("get_cost_and_usage", "AccessDeniedException", "no", 400)
        ce = _ce(client)
        with pytest.raises(ClientError, match="AccessDenied"):
            ce.call("get_cost_and_usage", req)
    assert ce.requests == 1


def test_backoff_gives_up_after_its_attempts():
    client = _client()
    sleeps = Sleeps()
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_client_error("get_cost_and_usage", "LimitExceededException", "", 400)
        ce = CostExplorer(client, sleep=sleeps, max_attempts=3, jitter=lambda: 0.0)
        with pytest.raises(ClientError, match="LimitExceeded"):
            ce.call("get_cost_and_usage", usage_request(TODAY, TODAY + timedelta(1), "w", None))
    assert ce.requests == 3 and sleeps == [0.5, 1.0]


def test_botocore_retries_are_off_so_every_request_is_counted():
    client = aws_ce.ce_client(boto3.Session(region_name="us-east-1"))
    assert client.meta.config.retries["total_max_attempts"] == 1


# The plan ------------------------------------------------------------------------------------
def test_a_first_run_rebuilds_the_month_and_later_runs_take_the_trailing_window():
    first = plan_window(TODAY, now=NOW)
    assert (first.start, first.end, first.rebuild) == (date(2026, 11, 1), date(2026, 11, 24), True)
    later = plan_window(TODAY, now=NOW, last_rebuild=NOW - timedelta(days=2))
    assert (later.start, later.end, later.rebuild) == (
        date(2026, 11, 20),
        date(2026, 11, 24),
        False,
    )
    week = plan_window(TODAY, now=NOW, last_rebuild=NOW - timedelta(days=7))
    assert week.start == date(2026, 11, 1) and week.rebuild
    five = plan_window(TODAY, now=NOW, trailing_days=5, last_rebuild=NOW)
    assert five.start == date(2026, 11, 18)


WHOLE_MONTH = ("trailing 3 days (the whole month to date)",)


@pytest.mark.parametrize(
    ("today", "start", "reasons"),
    [
        # Trailing 3 days: the window starts 3 days before today. Up to the 4th, that is on or
        # before the 1st, so the month-to-date rebuild is the trailing window itself.
        (date(2026, 12, 1), date(2026, 11, 28), WHOLE_MONTH),
        (date(2026, 12, 3), date(2026, 11, 30), WHOLE_MONTH),
        (date(2026, 12, 4), date(2026, 12, 1), WHOLE_MONTH),
        (date(2026, 12, 5), date(2026, 12, 1), ("trailing 3 days", "month-to-date rebuild")),
        (date(2027, 1, 1), date(2026, 12, 29), WHOLE_MONTH),
        (date(2028, 3, 1), date(2028, 2, 27), WHOLE_MONTH),  # 27, 28, 29 February, 1 March
    ],
)
def test_early_in_a_month_the_rebuild_is_the_trailing_window(today, start, reasons):
    now = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=12)
    rebuild = plan_window(today, now=now)  # never rebuilt: due
    assert (rebuild.start, rebuild.end) == (start, today + timedelta(days=1))
    assert rebuild.reasons == reasons and rebuild.rebuild  # recorded: the next one in 7 days
    trailing = plan_window(today, now=now, last_rebuild=now)
    if reasons == WHOLE_MONTH:  # one request, the same as the next run's trailing one
        assert (trailing.start, trailing.end) == (rebuild.start, rebuild.end)
    else:
        assert trailing.start == today - timedelta(days=3) > rebuild.start


def test_estimated_days_of_a_closed_month_are_pulled_again_until_final():
    pulled = {
        date(2026, 10, 30): (True, NOW - timedelta(days=3)),  # closed month, still estimated
        date(2026, 10, 31): (True, NOW - timedelta(days=3)),
        date(2026, 10, 29): (False, NOW - timedelta(days=3)),  # final: left alone
        date(2026, 11, 10): (True, NOW - timedelta(days=3)),  # open month: the rebuild's job
    }
    w = plan_window(TODAY, now=NOW, last_rebuild=NOW, days_pulled=pulled)
    assert w.start == date(2026, 10, 30)
    assert any("estimated" in r for r in w.reasons)
    fresh = {d: (e, NOW - timedelta(hours=2)) for d, (e, _) in pulled.items()}
    assert plan_window(TODAY, now=NOW, last_rebuild=NOW, days_pulled=fresh).start == date(
        2026, 11, 20
    )  # pulled 2 hours ago: not again so soon


def test_a_restated_day_is_pulled_again_and_then_left_alone(tmp_path):
    """Day 1: Oct 31 comes back Estimated. In November the plan re-pulls it; AWS now says it is
    final (and restated); the state records that and the next plan leaves it."""
    from warehouse.billing_state import BillingState

    client = _client()
    with BillingState(tmp_path / "state.duckdb") as state:
        oct31 = date(2026, 10, 31)
        state.record_ce_run(
            "222222222222",
            start=oct31,
            end=date(2026, 11, 1),
            days={oct31: True},
            resources_from=None,
            requests=1,
            rebuild=True,
            rows=1,
            now=NOW - timedelta(days=2),
        )
        window = plan_window(
            TODAY,
            now=NOW,
            last_rebuild=NOW - timedelta(days=1),
            days_pulled=state.ce_days("222222222222"),
        )
        assert window.start == oct31
        req = usage_request(oct31, window.end, "workload", "222222222222")
        final = ce_result("2026-10-31", [("llm", "USE1-BoxUsage:p4d.24xlarge", 500.0)])
        with Stubber(client) as stub:
            stub.add_response("get_cost_and_usage", _page([final]), req)
            pull = pull_account(
                _ce(client), "222222222222", window, "workload", label="222222222222"
            )
        assert pull.days[oct31] is False
        state.record_ce_run(
            "222222222222",
            start=window.start,
            end=window.end,
            days=pull.days,
            resources_from=None,
            requests=pull.requests,
            rebuild=False,
            rows=pull.frame.height,
            now=NOW,
        )
        after = plan_window(
            TODAY + timedelta(days=1),
            now=NOW + timedelta(days=1),
            last_rebuild=NOW - timedelta(days=1),
            days_pulled=state.ce_days("222222222222"),
        )
        assert after.start == TODAY + timedelta(days=1) - timedelta(days=3)
        assert state.ce_requests() == 2
    # The restated day's rows replace the earlier ones: same scope.
    assert pull.frame["scope"].to_list() == ["aws_ce|222222222222|2026-10-31"]


# Resource-level data ---------------------------------------------------------------------------
def test_with_resources_ec2_comes_from_the_resource_query_and_nothing_twice():
    client = _client()
    window = plan_window(TODAY, now=NOW, last_rebuild=NOW, with_resources=True)
    assert window.resources_from == date(2026, 11, 20)  # trailing window inside the 14 days
    lo, hi = window.resources_from, window.end
    plain = usage_request(lo, hi, "workload", "222222222222", exclude_ec2=True)
    assert plain["Filter"]["And"][1] == {
        "Not": {"Dimensions": {"Key": "SERVICE", "Values": [aws_ce.EC2_COMPUTE]}}
    }
    tag_req = aws_ce.resources_request(lo, hi, "222222222222", {"Type": "TAG", "Key": "workload"})
    usage_req = aws_ce.resources_request(
        lo, hi, "222222222222", {"Type": "DIMENSION", "Key": "USAGE_TYPE"}
    )
    others = ce_result("2026-11-21", [("llm", "USE1-TimedStorage-ByteHrs", 4.0)])
    owners = {
        "GroupDefinitions": [
            {"Type": "DIMENSION", "Key": "RESOURCE_ID"},
            {"Type": "TAG", "Key": "workload"},
        ],
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": "2026-11-21", "End": "2026-11-22"},
                "Groups": [
                    {"Keys": ["i-0aaa", "workload$llm"], "Metrics": _m(24 * 21.96)},
                    {"Keys": ["i-0bbb", "workload$"], "Metrics": _m(24 * 1.006)},
                ],
                "Estimated": True,
            }
        ],
    }
    usage = {
        "GroupDefinitions": [
            {"Type": "DIMENSION", "Key": "RESOURCE_ID"},
            {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
        ],
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": "2026-11-21", "End": "2026-11-22"},
                "Groups": [
                    {"Keys": ["i-0aaa", "USE1-BoxUsage:p4d.24xlarge"], "Metrics": _m(24 * 21.96)},
                    {"Keys": ["i-0bbb", "USE1-BoxUsage:g5.xlarge"], "Metrics": _m(24 * 1.006)},
                    {
                        "Keys": ["NoResourceId", "USE1-DataTransfer-Regional-Bytes"],
                        "Metrics": _m(0.3),
                    },
                ],
                "Estimated": True,
            }
        ],
    }
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", _page([others]), plain)
        stub.add_response("get_cost_and_usage_with_resources", owners, tag_req)
        stub.add_response("get_cost_and_usage_with_resources", usage, usage_req)
        pull = pull_account(_ce(client), "222222222222", window, "workload", label="222222222222")
        stub.assert_no_pending_responses()
    assert pull.requests == 3
    f = pull.frame
    # 4.00 storage + 527.04 (24 h p4d) + 24.144 (24 h g5) + 0.30 transfer, each once.
    assert f["EffectiveCost"].sum() == pytest.approx(4.0 + 527.04 + 24.144 + 0.3)
    inst = {
        r["ResourceId"]: r
        for r in f.filter(pl.col("ResourceId").is_not_null()).iter_rows(named=True)
    }
    assert set(inst) == {"i-0aaa", "i-0bbb"}
    assert (inst["i-0aaa"]["InstanceType"], inst["i-0aaa"]["workload"]) == ("p4d.24xlarge", "llm")
    assert (inst["i-0bbb"]["InstanceType"], inst["i-0bbb"]["workload"]) == ("g5.xlarge", None)
    assert pull.days[date(2026, 11, 21)] is True


def _m(cost: float) -> dict:
    return {
        "UnblendedCost": {"Amount": str(cost), "Unit": "USD"},
        "AmortizedCost": {"Amount": str(cost), "Unit": "USD"},
        "UsageQuantity": {"Amount": "24", "Unit": "Hrs"},
    }


# Answers checked against the request ---------------------------------------------------------
WINDOW = CeWindow(date(2026, 11, 20), date(2026, 11, 23))  # 20-22 November, DAILY
GPU = "USE1-BoxUsage:p4d.24xlarge"


def _monthly(end: str) -> dict:
    """November's total up to `end` as one period starting on the 1st (what a MONTHLY request
    gets): stored, it would land on 1 November."""
    result = ce_result("2026-11-01", [("llm", GPU, 22 * 527.04)])
    result["TimePeriod"] = {"Start": "2026-11-01", "End": end}
    return result


def _keys(*keys: str) -> dict:
    result = ce_result("2026-11-21", [("llm", GPU, 527.04)])
    result["Groups"][0]["Keys"] = list(keys)
    return result


def _no_cost(day: str) -> dict:
    result = ce_result(day, [("llm", GPU, 527.04)])
    result["Groups"][0]["Metrics"] = {"UsageQuantity": {"Amount": "24", "Unit": "Hrs"}}
    return result


@pytest.mark.parametrize(
    ("page", "why"),
    [
        (_page([_monthly("2026-12-01")]), "the period 2026-11-01..2026-11-30, which lies outside"),
        (
            _page([ce_result("2026-11-19", [("llm", GPU, 1.0)])]),
            "the period 2026-11-19..2026-11-19, which lies outside the requested window",
        ),
        (
            _page(
                [
                    {
                        **ce_result("2026-11-20", []),
                        "TimePeriod": {"Start": "2026-11-20", "End": "2026-11-22"},
                    }
                ]
            ),
            "the period 2026-11-20..2026-11-21, which is not one day",
        ),
        (
            _page([_keys("llm", GPU)]),
            "keys ['llm', 'USE1-BoxUsage:p4d.24xlarge'] that has 'llm' where the TAG 'workload'",
        ),
        (_page([_keys("workload$llm")]), "keys ['workload$llm'] that has 1 key(s)"),
        (_page([_keys("team$llm", GPU)]), "has 'team$llm' where the TAG 'workload'"),
        (
            _page([], group_by=[{"Type": "DIMENSION", "Key": "SERVICE"}]),
            "the answer is grouped by DIMENSION SERVICE",
        ),
        (_page([_no_cost("2026-11-21")]), "without any of the requested cost metrics"),
    ],
    ids=[
        "month",
        "before-window",
        "two-days",
        "bare-tag",
        "one-key",
        "other-tag",
        "grouping",
        "no-cost",
    ],
)
def test_an_answer_that_does_not_match_the_request_is_refused(page, why):
    client = _client()
    req = usage_request(WINDOW.start, WINDOW.end, "workload", "222222222222")
    good = ce_result("2026-11-20", [("llm", GPU, 527.04)])
    with Stubber(client) as stub:
        stub.add_response("get_cost_and_usage", _page([good], token="t1"), req)
        stub.add_response("get_cost_and_usage", page, {**req, "NextPageToken": "t1"})
        ce = _ce(client)
        with pytest.raises(CeAnswerError) as refused:
            pull_account(ce, "222222222222", WINDOW, "workload", label="222222222222")
    message = str(refused.value)
    assert message.startswith(
        "Cost Explorer GetCostAndUsage for account 222222222222, 2026-11-20..2026-11-22 (DAILY, "
        "grouped by TAG workload, DIMENSION USAGE_TYPE): the answer "
    )
    assert why in message
    assert ce.requests == 2  # both pages were asked (and paid for) before the refusal


def test_a_metric_the_answer_does_not_give_stays_null():
    """Three groups of one day: all metrics; only the amortized cost; only the unblended cost.
    BilledCost is NetUnblendedCost else UnblendedCost, EffectiveCost NetAmortizedCost else
    AmortizedCost else the billed cost; what no metric gives is null (never 0): the billed cost of
    the second group, the quantity of the last two, and every ListCost (Cost Explorer has none)."""
    result = ce_result("2026-11-21", [("a", GPU, 10.0), ("b", GPU, 20.0), ("c", GPU, 30.0)])
    full, amortized_only, unblended_only = (g["Metrics"] for g in result["Groups"])
    full["NetAmortizedCost"] = {"Amount": "8.0", "Unit": "USD"}
    del amortized_only["UnblendedCost"], amortized_only["UsageQuantity"]
    del unblended_only["AmortizedCost"], unblended_only["UsageQuantity"]
    request = usage_request(WINDOW.start, WINDOW.end, "workload", None)
    rows, _ = group_rows([_page([result])], request, account="222222222222")
    f = billing_rows(rows, account="222222222222", tag_key="workload").sort("workload")
    assert f["BilledCost"].to_list() == [10.0, None, 30.0]
    assert f["EffectiveCost"].to_list() == [8.0, 20.0, 30.0]
    assert f["PricingQuantity"].to_list() == [1.0, None, None]
    assert f["ListCost"].to_list() == [None, None, None]


def test_a_refused_answer_stores_nothing_for_its_account_and_the_others_are_pulled(tmp_path):
    """pull_aws over two accounts: the first answers a DAILY request with the month's total in
    one period (refused: no spool batch, no pulled days in the state, so the next run asks
    again); the second answers properly and is spooled."""
    from collectors.billing.aws import AwsPullOptions, pull_aws
    from warehouse.billing_state import BillingState

    client = _client()

    class Session:
        region_name = "us-east-1"

        def client(self, name, **_kw):
            return client

    opts = AwsPullOptions(accounts=(("111111111111", "a", ""), ("222222222222", "b", "")))
    good = ce_result("2026-11-22", [("llm", "USE1-BoxUsage:p5.4xlarge", 165.12)])
    with Stubber(client) as stub, BillingState(tmp_path / "state.duckdb") as state:
        stub.add_response("get_cost_and_usage", _page([_monthly("2026-11-24")]))  # month to date
        stub.add_response("get_cost_and_usage", _page([good]))
        report = pull_aws(
            opts, state, tmp_path / "spool", tmp_path / "w", now=NOW, session=Session()
        )
        assert state.ce_days("111111111111") == {}
        assert date(2026, 11, 22) in state.ce_days("222222222222")
    refused, pulled = report.lines
    assert refused.status.startswith(
        "refused: Cost Explorer GetCostAndUsage for account 111111111111, 2026-11-01..2026-11-23"
    )
    assert "the period 2026-11-01..2026-11-23, which is not one day" in refused.status
    assert (refused.rows, refused.ce_requests) == (0, 1)
    assert pulled.status.startswith("pulled") and pulled.rows == 1
    assert report.failed and len(report.batches) == 1
    assert pl.read_parquet(report.batches[0])["BillingAccountId"].unique().to_list() == [
        "222222222222"
    ]


# Real responses ------------------------------------------------------------------------------
def _real(name: str) -> dict:
    return json.loads((REAL / f"sample_chunk_{name}.json").read_text())


def _request(start: str, end: str, granularity: str, *group_keys: str) -> dict:
    """The request a real answer (captured by its authors) came from: UnblendedCost only."""
    return {
        "TimePeriod": {"Start": start, "End": end},
        "Granularity": granularity,
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": k} for k in group_keys],
    }


def test_real_responses_parse_with_their_totals_against_their_requests():
    usages = _real("monthly_usages_per_account")
    want = sum(
        float(g["Metrics"]["UnblendedCost"]["Amount"]) for g in usages["ResultsByTime"][0]["Groups"]
    )
    request = _request("2023-04-01", "2023-05-01", "MONTHLY", "LINKED_ACCOUNT", "USAGE_TYPE")
    rows, estimated = group_rows([usages], request, account="123456789012")
    f = billing_rows(rows, account="123456789012", tag_key="workload")
    assert f["BilledCost"].sum() == pytest.approx(want)
    assert estimated == {date(2023, 4, 1): True}
    types = dict(f.select("SkuId", "InstanceType").iter_rows())
    assert types["EU-BoxUsage:r6a.2xlarge"] == "r6a.2xlarge"
    assert types["EUW3-BoxUsage:m5.xlarge"] == "m5.xlarge"
    assert types["EUC1-VpcEndpoint-Hours"] is None
    assert f["ChargePeriodEnd"][0] == datetime(2023, 5, 1, tzinfo=UTC)  # a monthly request's
    # Only UnblendedCost was asked: no usage quantity, no list price (null, never 0); the
    # effective cost falls back to the billed one (docs/aws.md).
    assert f["PricingQuantity"].null_count() == f["ListCost"].null_count() == f.height
    assert f["EffectiveCost"].to_list() == f["BilledCost"].to_list()
    # Discounts are negative and stay negative.
    charges = _real("monthly_charges_per_account")
    amounts = [
        float(g["Metrics"]["UnblendedCost"]["Amount"])
        for g in charges["ResultsByTime"][0]["Groups"]
    ]
    request = _request("2023-03-01", "2023-04-01", "MONTHLY", "LINKED_ACCOUNT", "RECORD_TYPE")
    f = billing_rows(group_rows([charges], request, account="x")[0], account="x", tag_key="w")
    assert f["BilledCost"].sum() == pytest.approx(sum(amounts))
    assert (f["BilledCost"] < 0).sum() == sum(a < 0 for a in amounts) == 4
    daily = _real("daily_costs_per_account")
    request = _request("2023-04-07", "2023-04-08", "DAILY", "LINKED_ACCOUNT")
    rows, estimated = group_rows([daily], request, account="123456789012")
    assert estimated == {date(2023, 4, 7): True} and rows[0]["LINKED_ACCOUNT"] == "123456789012"
    assert (rows[0]["day"], rows[0]["end"]) == (date(2023, 4, 7), date(2023, 4, 8))


@pytest.mark.parametrize(
    ("name", "window", "period"),
    [
        # Month to date (1-7 April) in one period: 12.28 USD that must not land on 1 April.
        ("monthly_costs_for_account", ("2023-04-01", "2023-04-08"), "2023-04-01..2023-04-07"),
        ("monthly_usages_per_account", ("2023-04-01", "2023-05-01"), "2023-04-01..2023-04-30"),
    ],
)
def test_a_real_monthly_answer_to_a_daily_request_is_refused(name, window, period):
    answer = _real(name)
    keys = [g["Key"] for g in answer["GroupDefinitions"]]
    request = _request(*window, "DAILY", *keys)  # the same window and grouping, asked DAILY
    last = (date.fromisoformat(window[1]) - timedelta(days=1)).isoformat()
    with pytest.raises(CeAnswerError) as refused:
        group_rows([answer], request, account="123456789012")
    message = str(refused.value)
    assert f"account 123456789012, {window[0]}..{last} (DAILY" in message
    assert f"the period {period}, which is not one day" in message
    assert "nothing was stored" in message


def test_a_real_answer_grouped_otherwise_than_asked_is_refused():
    answer = _real("monthly_costs_for_account")  # grouped by SERVICE
    request = usage_request(date(2023, 4, 1), date(2023, 4, 8), "workload", "123456789012")
    request["Granularity"] = "MONTHLY"
    with pytest.raises(CeAnswerError, match="the answer is grouped by DIMENSION SERVICE"):
        group_rows([answer], request, account="123456789012")


# What a daily run costs ----------------------------------------------------------------------
def _daily_run_requests(accounts: list[str], with_resources: bool, *, rebuild: bool) -> int:
    total = 0
    for account in accounts:
        client = _client()
        window = plan_window(
            TODAY,
            now=NOW,
            with_resources=with_resources,
            last_rebuild=None if rebuild else NOW - timedelta(days=1),
            days_pulled={TODAY - timedelta(days=1): (True, NOW - timedelta(days=1))},
        )
        with Stubber(client) as stub:
            stub.add_response("get_cost_and_usage", _page([]))
            if with_resources:
                by_resource = {"Type": "DIMENSION", "Key": "RESOURCE_ID"}
                for second in (
                    {"Type": "TAG", "Key": "workload"},
                    {"Type": "DIMENSION", "Key": "USAGE_TYPE"},
                ):
                    page = _page([], group_by=[by_resource, second])
                    stub.add_response("get_cost_and_usage_with_resources", page)
            pull = pull_account(_ce(client), account, window, "workload", label=account)
            stub.assert_no_pending_responses()
        total += pull.requests
    return total


def test_requests_per_daily_run_for_three_accounts():
    """The figures in docs/aws.md: one page per request (each more page is one more)."""
    three = ["111111111111", "222222222222", "333333333333"]
    assert _daily_run_requests(three, False, rebuild=False) == 3  # USD 0.03
    assert _daily_run_requests(three, False, rebuild=True) == 3  # the weekly rebuild: same
    assert _daily_run_requests(three, True, rebuild=False) == 9  # with resource ids: USD 0.09
    assert _daily_run_requests(three, True, rebuild=True) == 9


@pytest.mark.date_sensitive
def test_a_days_pulls_ask_for_their_windows_and_a_restated_day_replaces_the_first(tmp_path, clock):
    """pull_aws for one account at the pinned clock, then again a day later. The first run
    (never rebuilt) asks from the 1st of the month, or from 3 days back where that is earlier;
    the next day's asks for its trailing 3 days only (Stubber checks each request exactly).
    Yesterday comes back restated the second time ($100 -> $200): the same scope, so the
    warehouse holds $200 for it, once."""
    from collectors.billing.aws import AwsPullOptions, pull_aws
    from tests.clock import pinned_clock
    from warehouse.billing_state import BillingState
    from warehouse.store import Warehouse

    client = _client()

    class Session:
        region_name = "us-east-1"

        def client(self, name, **_kw):
            return client

    opts = AwsPullOptions(accounts=(("222222222222", "b", ""),))
    today, day = clock.date(), clock.date() - timedelta(days=1)
    first = usage_request(
        min(today - timedelta(days=3), today.replace(day=1)),
        today + timedelta(days=1),
        "workload",
        "222222222222",
    )
    second = usage_request(
        today - timedelta(days=2), today + timedelta(days=2), "workload", "222222222222"
    )
    spool_dir = tmp_path / "spool"
    batches = []
    with BillingState(tmp_path / "state.duckdb") as state:
        for request, usd, at in ((first, 100.0, clock), (second, 200.0, clock + timedelta(1))):
            answer = _page([ce_result(day.isoformat(), [("llm", GPU, usd)])])
            with pinned_clock(at), Stubber(client) as stub:
                stub.add_response("get_cost_and_usage", answer, request)
                report = pull_aws(opts, state, spool_dir, tmp_path / "w", session=Session())
                stub.assert_no_pending_responses()
            assert not report.failed and report.ce_requests == 1
            batches += report.batches
    scopes = [pl.read_parquet(b)["scope"].to_list() for b in batches]
    assert scopes == [[f"aws_ce|222222222222|{day}"]] * 2
    with Warehouse(tmp_path / "w.duckdb", spool_dir) as wh:
        wh.ingest_spool()
        got = wh.db.execute("SELECT count(*), sum(BilledCost) FROM billing_items").fetchall()
    assert got == [(1, 200.0)]


def test_a_denied_account_is_reported_and_the_others_still_pulled(tmp_path):
    """pull_aws over two configured accounts: the first answers AccessDenied (named, with the
    permission to grant), the second is pulled and spooled; the state keeps only the second."""
    from collectors.billing.aws import AwsPullOptions, pull_aws
    from warehouse.billing_state import BillingState

    client = _client()

    class Session:
        region_name = "us-east-1"

        def client(self, name, **_kw):
            assert name == "ce"
            return client

    day = ce_result("2026-11-22", [("llm", "USE1-BoxUsage:p5.4xlarge", 165.12)])
    opts = AwsPullOptions(accounts=(("111111111111", "a", ""), ("222222222222", "b", "")))
    with Stubber(client) as stub, BillingState(tmp_path / "state.duckdb") as state:
        stub.add_client_error("get_cost_and_usage", "AccessDeniedException", "not authorized", 400)
        stub.add_response("get_cost_and_usage", _page([day]))
        report = pull_aws(
            opts, state, tmp_path / "spool", tmp_path / "w", now=NOW, session=Session()
        )
        assert state.ce_days("111111111111") == {}
        assert date(2026, 11, 22) in state.ce_days("222222222222")
    denied, pulled = report.lines
    assert denied.status.startswith("error: GetCostAndUsage denied (not authorized)")
    assert "docs/aws.md" in denied.status and denied.ce_requests == 1
    assert pulled.status.startswith("pulled") and pulled.rows == 1
    assert report.failed and report.ce_requests == 2 and len(report.batches) == 1
    assert pl.read_parquet(report.batches[0])["EffectiveCost"].to_list() == [165.12]
