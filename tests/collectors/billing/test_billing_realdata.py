"""Every real billing file under tests/fixtures/realdata either imports (a format we claim:
FOCUS, AWS CUR) with per-provider totals equal to what the csv module sums from the file, or is
refused saying what it is and what to export instead (Azure EA cost details, OCI cost reports:
checked, not FOCUS-shaped)."""

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from collectors.billing.cur import read_cur_file
from collectors.billing.focus import read_focus_file
from collectors.errors import InputError
from tables.spool import write_batch
from warehouse.store import BILLING_DAILY_SQL, Warehouse

REAL = Path(__file__).resolve().parents[2] / "fixtures/realdata"
FOCUS = REAL / "focus-sample-1.0/focus_sample.csv"
CUR = REAL / "aws-cur-legacy-focusconv/sample-anonymous-aws-export-dataset.csv"
AZURE = sorted((REAL / "azure-ea-cost-export").glob("*.csv"))
OCI = REAL / "oci-cost-report/reports_cost-csv_0000000030000269.csv"


def _sums(path: Path, provider, cost: str, currency: str) -> dict[tuple[str, str], float]:
    """(provider, currency) -> sum of `cost`, with the csv module (a BOM is the file's trap)."""
    out: dict[tuple[str, str], float] = defaultdict(float)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            out[(provider(row), row[currency])] += float(row[cost] or 0)
    return dict(out)


def _warehouse_totals(tmp_path: Path, frames) -> dict[tuple[str, str], tuple[float, float]]:
    """(provider, currency) -> (EffectiveCost, BilledCost) in the warehouse's daily view."""
    spool = tmp_path / "spool"
    for i, frame in enumerate(frames):
        write_batch(spool, "billing_items", frame, f"real-{i}")
    with Warehouse(tmp_path / "wh.duckdb", spool).open() as wh:
        wh.ingest_spool()
        rows = wh.db.execute(
            "SELECT provider, currency, sum(effective_cost), sum(billed_cost)"
            " FROM (" + BILLING_DAILY_SQL + ") GROUP BY ALL"
        ).fetchall()
    return {(p, c): (e, b) for p, c, e, b in rows}


def test_focus_sample_and_legacy_cur_import_with_per_provider_totals(tmp_path):
    want_eff = _sums(FOCUS, lambda r: r["ProviderName"], "EffectiveCost", "BillingCurrency")
    want_billed = _sums(FOCUS, lambda r: r["ProviderName"], "BilledCost", "BillingCurrency")
    cur_billed = _sums(CUR, lambda r: "AWS", "lineItem/UnblendedCost", "lineItem/CurrencyCode")
    got = _warehouse_totals(tmp_path, [read_focus_file(FOCUS), read_cur_file(CUR)])
    # The CUR and the FOCUS sample are different AWS accounts: both land, each once.
    assert set(got) == {("AWS", "USD"), ("Microsoft", "USD"), ("Oracle", "USD")}
    for key in (("Microsoft", "USD"), ("Oracle", "USD")):
        assert got[key][0] == pytest.approx(want_eff[key], abs=1e-6)
        assert got[key][1] == pytest.approx(want_billed[key], abs=1e-6)
    aws_eff = want_eff[("AWS", "USD")] + cur_billed[("AWS", "USD")]  # CUR: amortized = billed
    aws_billed = want_billed[("AWS", "USD")] + cur_billed[("AWS", "USD")]
    assert got[("AWS", "USD")][0] == pytest.approx(aws_eff, abs=1e-6)
    assert got[("AWS", "USD")][1] == pytest.approx(aws_billed, abs=1e-6)


@pytest.mark.parametrize("path", AZURE, ids=lambda p: p.name)
def test_azure_ea_cost_exports_are_refused_with_what_to_export_instead(path):
    raw = path.read_bytes()
    currencies = {k[1] for k in _sums(path, lambda r: "Azure", _azure_cost(path), _azure_cur(path))}
    assert currencies <= {"USD", "CAD"}  # the CAD one is refused, never added to dollars
    for reader in (read_focus_file, read_cur_file):
        with pytest.raises(InputError) as err:
            reader(path)
        message = str(err.value)
        assert message.startswith(str(path))
        assert "Azure Cost Management cost export" in message
        assert "Cost and usage details (FOCUS)" in message
    if path.name.startswith("EA_"):
        assert raw.startswith(b"\xef\xbb\xbf")  # the BOM did not hide what the file is


def _azure_cost(path: Path) -> str:
    return "Cost" if path.name.startswith("EA_") else "CostInBillingCurrency"


def _azure_cur(path: Path) -> str:
    return "BillingCurrency" if path.name.startswith("EA_") else "BillingCurrencyCode"


def test_the_cad_export_is_the_one_in_cad():
    cad = REAL / "azure-ea-cost-export/sample-anonymous-ea-export-dataset.csv"
    assert set(_sums(cad, lambda r: "Azure", "CostInBillingCurrency", "BillingCurrencyCode")) == {
        ("Azure", "CAD")
    }


def test_the_oci_cost_report_is_refused_with_what_to_export_instead():
    with open(OCI, newline="", encoding="utf-8") as fh:
        first = next(csv.DictReader(fh))
    # The trap that makes a native reader risky: two timestamp shapes in one row.
    assert first["lineItem/intervalUsageStart"] == "2023-11-13T10:00Z"  # no seconds
    assert first["lineItem/intervalUsageEnd"] == "2023-11-13T11:00:00Z"
    for reader in (read_focus_file, read_cur_file):
        with pytest.raises(InputError, match=r"Oracle Cloud \(OCI\) cost report.*FOCUS Reports"):
            reader(OCI)


def test_an_aws_focus_instance_arn_becomes_the_instance_id(tmp_path):
    """AWS's FOCUS exports name an instance by its ARN; the agent on it reports the bare id."""
    header = (
        "BilledCost,EffectiveCost,BillingCurrency,BillingAccountId,BillingPeriodStart,"
        "ChargePeriodStart,ChargePeriodEnd,ProviderName,ResourceId,x_UsageType,Tags\n"
    )
    row = (
        "21.96,21.96,USD,111111111111,2026-11-01,2026-11-20T10:00:00Z,2026-11-20T11:00:00Z,AWS,"
        "{rid},USE1-BoxUsage:p4d.24xlarge,NULL\n"
    )
    p = tmp_path / "focus.csv"
    p.write_text(
        header
        + row.format(rid="arn:aws:ec2:us-east-1:111111111111:instance/i-0d3a9c1e5b7f20001")
        + row.format(rid="arn:aws:s3:::my-bucket")
    )
    f = read_focus_file(p)
    assert f["ResourceId"].to_list() == ["i-0d3a9c1e5b7f20001", "arn:aws:s3:::my-bucket"]
    assert f["InstanceType"].to_list() == ["p4d.24xlarge", "p4d.24xlarge"]
    # The real sample's bare instance ids stay as they are.
    with open(FOCUS, newline="", encoding="utf-8") as fh:
        bare = {r["ResourceId"] for r in csv.DictReader(fh) if r["ResourceId"].startswith("i-")}
    assert bare and bare <= set(read_focus_file(FOCUS)["ResourceId"].drop_nulls().to_list())
