"""Azure: cost details (EA actual/amortized, the real exports with their BOM and CAD) read into the
billing shape; Cost Management exports pulled from Blob Storage (Azurite on 127.0.0.1) by ETag,
a restated month replacing its rows, never counted twice."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from collectors.billing import azure_cost
from collectors.billing.azure import AzurePullOptions, pull_azure
from collectors.errors import InputError
from tests.collectors.billing.emulators import azurite  # noqa: F401  (fixture)
from warehouse.billing_state import BillingState
from warehouse.store import Warehouse

REAL = Path(__file__).resolve().parents[2] / "fixtures/realdata/azure-ea-cost-export"
ACTUAL = REAL / "EA_ActualCost_Small.csv"
AMORTIZED = REAL / "EA_AmortizedCost_Small.csv"
CAD = REAL / "sample-anonymous-ea-export-dataset.csv"
HEADER = ACTUAL.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
VM = (
    "/subscriptions/sub-1/resourceGroups/ml/providers/Microsoft.Compute/virtualMachines/GPU-Train-1"
)


def _csv_sum(path: Path, column: str, where=lambda r: True) -> float:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return sum(float(r[column] or 0) for r in csv.DictReader(fh) if where(r))


def ea_csv(rows: list[dict[str, str]], *, gz: bool = False) -> bytes:
    """An EA cost details file with the real export's 55 columns (a BOM, as Azure writes it)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HEADER, lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in HEADER})
    data = ("\ufeff" + buf.getvalue()).encode()
    return gzip.compress(data) if gz else data


def ea_row(cost: float, *, day: str = "11/05/2026", resource: str = VM, **kw: str) -> dict:
    row = {
        "BillingAccountId": "8611537",
        "BillingPeriodStartDate": "11/01/2026",
        "BillingPeriodEndDate": "11/30/2026",
        "SubscriptionId": "sub-1",
        "Date": day,
        "MeterCategory": "Virtual Machines",
        "MeterId": "m-1",
        "Quantity": "1",
        "Cost": str(cost),
        "PayGPrice": str(cost),
        "BillingCurrency": "USD",
        "ResourceLocation": "EastUS",
        "ResourceId": resource,
        "AdditionalInfo": '{"ServiceType":"Standard_NC24ads_A100_v4","VMName":"GPU-Train-1"}',
        "Tags": '"workload": "train","env": "prod"',
        "UnitOfMeasure": "1 Hour",
        "ChargeType": "Usage",
        "PricingModel": "OnDemand",
    }
    row.update(kw)
    return row


# The normaliser, on the real exports ---------------------------------------------------------
@pytest.mark.parametrize("path", [ACTUAL, AMORTIZED, CAD], ids=lambda p: p.name)
def test_the_real_exports_keep_every_dollar_in_its_currency(path):
    """Per currency, the rows' EffectiveCost equals the file's cost column summed by the csv
    module (EA_*: `Cost` in USD; the anonymized one: `CostInBillingCurrency` in CAD)."""
    rows = azure_cost.read_azure_file(path)
    cost = "Cost" if path.name.startswith("EA_") else "CostInBillingCurrency"
    currency = "BillingCurrency" if path.name.startswith("EA_") else "BillingCurrencyCode"
    with open(path, newline="", encoding="utf-8-sig") as fh:
        want: dict[str, float] = {}
        for r in csv.DictReader(fh):
            want[r[currency]] = want.get(r[currency], 0.0) + float(r[cost] or 0)
    got = dict(rows.group_by("BillingCurrency").agg(pl.col("EffectiveCost").sum()).iter_rows())
    assert got == pytest.approx(want)
    assert set(rows["ProviderName"]) == {"Microsoft"} and set(rows["source"]) == {"azure"}
    if path == CAD:
        assert set(got) == {"CAD"}  # never read as dollars


def test_the_basis_decides_billed_and_effective_cost():
    """Actual: both are the cost (a reservation purchase stays on its day). Amortized: the
    effective cost is the cost; reservation lines have no invoice amount (null, not 0)."""
    actual = azure_cost.read_azure_file(ACTUAL)
    assert actual["BilledCost"].to_list() == actual["EffectiveCost"].to_list()
    assert actual["BilledCost"].sum() == pytest.approx(_csv_sum(ACTUAL, "Cost"))
    purchase = actual.filter(pl.col("ChargeCategory") == "Purchase")
    assert purchase.height >= 1 and purchase["BilledCost"].sum() == pytest.approx(
        _csv_sum(ACTUAL, "Cost", lambda r: r["ChargeType"] == "Purchase")
    )
    amortized = azure_cost.read_azure_file(AMORTIZED)  # "Amortized" in its name
    reserved = amortized.filter(pl.col("BilledCost").is_null())
    want_reserved = _csv_sum(
        AMORTIZED,
        "Cost",
        lambda r: (
            r["PricingModel"] in ("Reservation", "SavingsPlan")
            or r["ChargeType"].startswith("Unused")
        ),
    )
    assert reserved.height > 0
    assert reserved["EffectiveCost"].sum() == pytest.approx(want_reserved)
    assert amortized["BilledCost"].sum() == pytest.approx(
        _csv_sum(AMORTIZED, "Cost") - want_reserved
    )


def test_a_vm_line_becomes_its_hosts_row(tmp_path):
    """ARM VM id -> the lower-cased VM name (the agent's host id); ServiceType -> instance
    type; EA's brace-less tags -> JSON with the workload; the day from MM/DD/YYYY; scope per
    (account, subscription, month)."""
    f = tmp_path / "export.csv"
    f.write_bytes(ea_row_file := ea_csv([ea_row(12.5)]))
    assert ea_row_file.startswith(b"\xef\xbb\xbf")
    (row,) = azure_cost.read_azure_file(f).iter_rows(named=True)
    assert row["ResourceId"] == "gpu-train-1"
    assert row["InstanceType"] == "Standard_NC24ads_A100_v4"
    assert row["workload"] == "train" and json.loads(row["Tags"])["env"] == "prod"
    assert row["ChargePeriodStart"] == datetime(2026, 11, 5, tzinfo=UTC)
    assert row["ChargePeriodEnd"] == datetime(2026, 11, 6, tzinfo=UTC)
    assert row["RegionId"] == "eastus" and row["ListCost"] == pytest.approx(12.5)
    assert row["scope"] == "azure|8611537|sub-1|2026-11-01"


def test_bad_values_name_the_file_row_and_the_files_own_column(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_bytes(ea_csv([ea_row(1.0), ea_row(1.0, Cost="lots")]))
    with pytest.raises(InputError, match=r"bad.csv: row 3, column Cost: 'lots' is not a number"):
        azure_cost.read_azure_file(f)
    f.write_bytes(ea_csv([ea_row(1.0, day="2026-13-45")]))
    with pytest.raises(InputError, match=r"row 2, column Date: .*is not a date"):
        azure_cost.read_azure_file(f)
    f.write_text("MeterCategory,MeterId,SubscriptionId,Cost\nVM,1,s,1.0\n")
    with pytest.raises(InputError, match="missing Azure cost details column"):
        azure_cost.read_azure_file(f)


# Blob Storage, against Azurite ----------------------------------------------------------------
PREFIX = "exports/gpu-amortized/"


@pytest.fixture
def container(azurite):  # noqa: F811
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"costs{datetime.now(UTC).strftime('%H%M%S%f')}"
    client = service.create_container(name)
    yield client
    client.delete_container()


def _run(container, run: str, files: dict[str, bytes], *, manifest: bool = True) -> None:
    """One export run of November 2026: its files, then its manifest (as Azure writes them)."""
    folder = f"{PREFIX}20261101-20261130/{run}/"
    for name, body in files.items():
        container.upload_blob(folder + name, body, overwrite=True)
    if manifest:
        doc = {
            "exportConfig": {"type": "AmortizedCost", "exportName": "gpu-amortized"},
            "blobs": [{"blobName": f"{container.container_name}/{folder}{n}"} for n in files],
        }
        container.upload_blob(folder + "manifest.json", json.dumps(doc), overwrite=True)


def _pull(container, tmp_path):
    opts = AzurePullOptions(storage_account="devstoreaccount1", export_prefix=PREFIX)
    with BillingState(tmp_path / "state.duckdb") as state:
        return pull_azure(opts, state, tmp_path / "spool", tmp_path / "work", container=container)


def _stored(tmp_path) -> dict[str, float]:
    """currency -> sum(EffectiveCost) in the warehouse."""
    with Warehouse(tmp_path / "wh.duckdb", tmp_path / "spool").open() as wh:
        wh.ingest_spool()
        rows = wh.db.execute(
            "SELECT BillingCurrency, round(sum(EffectiveCost), 6) FROM billing_items GROUP BY 1"
        ).fetchall()
    return dict(rows)


def test_a_pulled_month_is_taken_once_and_a_restated_run_replaces_it(container, tmp_path):
    """Run 1: two parts, $12.5 + $7.5 = $20. Pulled again: unchanged, nothing downloaded.
    Run 2 restates the month: one part of $30 - $4 credit = $26, which replaces the $20."""
    _run(
        container,
        "run-1",
        {
            "part_0_0001.csv.gz": ea_csv([ea_row(12.5)], gz=True),
            "part_0_0002.csv": ea_csv([ea_row(7.5, day="11/06/2026")]),
        },
    )
    first = _pull(container, tmp_path)
    assert [(ln.period, ln.status, ln.rows) for ln in first.lines] == [("2026-11", "taken", 2)]
    assert first.lines[0].account == f"azure://devstoreaccount1/{container.container_name}"
    assert _stored(tmp_path) == {"USD": 20.0}

    again = _pull(container, tmp_path)
    assert [(ln.status, ln.rows) for ln in again.lines] == [("unchanged", 0)]
    assert again.batches == [] and _stored(tmp_path) == {"USD": 20.0}

    _run(
        container,
        "run-2",
        {"part_0_0001.csv.gz": ea_csv([ea_row(30.0), ea_row(-4.0, ChargeType="Refund")], gz=True)},
    )
    third = _pull(container, tmp_path)
    assert [(ln.status, ln.rows) for ln in third.lines] == [("taken", 2)]
    assert _stored(tmp_path) == {"USD": 26.0}


def test_without_a_manifest_only_the_newest_run_file_counts(container, tmp_path):
    """Older exports add one file per run to the date-range folder: $5 then, a second later
    (Blob Storage keeps whole seconds), a restated $8; only the newest ($8) is taken."""
    folder = f"{PREFIX}20261101-20261130/"
    container.upload_blob(folder + "gpu-amortized_b.csv", ea_csv([ea_row(5.0)]))
    time.sleep(1.05)
    container.upload_blob(folder + "gpu-amortized_a.csv", ea_csv([ea_row(8.0)]))
    (line,) = _pull(container, tmp_path).lines
    assert (line.status, line.rows) == ("taken", 1)
    assert _stored(tmp_path) == {"USD": 8.0}


def test_a_bad_file_refuses_its_month_and_cad_stays_cad(container, tmp_path):
    """October is the real CAD export (27 rows); November's file is truncated gzip: refused
    with the blob's name, nothing of it stored; the CAD never lands in USD."""
    container.upload_blob(f"{PREFIX}20261001-20261031/r/part_0_0001.csv", CAD.read_bytes())
    whole = ea_csv([ea_row(1.0)] * 200, gz=True)
    container.upload_blob(f"{PREFIX}20261101-20261130/r/part_0_0001.csv.gz", whole[:60])
    report = _pull(container, tmp_path)
    by_period = {ln.period: ln for ln in report.lines}
    assert (by_period["2026-10"].status, by_period["2026-10"].rows) == ("taken", 27)
    bad = by_period["2026-11"]
    assert bad.bad_input and bad.status.startswith("refused: azure://devstoreaccount1/")
    assert "part_0_0001.csv.gz" in bad.status and "gzip" in bad.status
    assert _stored(tmp_path) == {"CAD": pytest.approx(_csv_sum(CAD, "CostInBillingCurrency"))}
