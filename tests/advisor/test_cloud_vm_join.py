"""An Azure VM and a Compute Engine instance join their bill lines in the ledger as an EC2
instance does: the agent's host id (detected from DMI facts, no network) equals the ResourceId
the bill readers give the VM, so the VM's money is split by its GPU-seconds; CAD is never added
to dollars."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from advisor.ledger import daily_ledger
from collectors.billing import azure_cost, gcp_billing
from collectors.gpu.nvml import AZURE_CHASSIS_ASSET_TAG, GCE_PRODUCT_NAME, detect_host_id
from tables.spool import write_batch
from tests.collectors.billing.test_azure import ea_csv, ea_row
from tests.collectors.billing.test_gcp import detailed_parquet
from warehouse.store import Warehouse

DAY = datetime(2026, 11, 5, tzinfo=UTC)
NO_RATES = pl.DataFrame(
    schema={
        "host": pl.String,
        "gpu_model": pl.String,
        "capital_usd_per_gpu_hour": pl.Float64,
        "ops_usd_per_gpu_hour": pl.Float64,
    }
)


def _host(monkeypatch, hostname: str, dmi: dict[str, str]) -> str:
    monkeypatch.setattr("socket.gethostname", lambda: hostname)
    return detect_host_id(metadata_reader=lambda: None, dmi_reader=dmi.get)


def _minutes(host: str, runs: list[tuple[str | None, int]]) -> pl.DataFrame:
    """One A100 on `host`: each (workload, minutes) run after the other, 50 % busy."""
    rows, t = [], DAY + timedelta(hours=10)
    for workload, n in runs:
        for _ in range(n):
            rows.append((t, host, "GPU-1", "NVIDIA A100 80GB PCIe", workload, 60.0, 30.0, 0.0))
            t += timedelta(minutes=1)
    return pl.DataFrame(
        rows,
        schema=[
            "minute",
            "host",
            "gpu_uuid",
            "gpu_model",
            "workload",
            "seconds",
            "busy_seconds",
            "energy_j",
        ],
        orient="row",
    )


def _ledger(tmp_path, bills: list[pl.DataFrame], usage: pl.DataFrame) -> pl.DataFrame:
    for i, frame in enumerate(bills):
        write_batch(tmp_path / "spool", "billing_items", frame, f"bill-{i}")
    with Warehouse(tmp_path / "wh.duckdb", tmp_path / "spool").open() as wh:
        wh.ingest_spool()
        daily = wh.billing_daily(DAY, DAY + timedelta(days=1))
    return daily_ledger(usage, daily, NO_RATES, price_per_kwh=0.0, pue=1.0)


def _by_workload(out: pl.DataFrame) -> dict[str, dict]:
    return {r["workload"]: r for r in out.iter_rows(named=True)}


def test_an_azure_vm_joins_its_bill_lines(tmp_path, monkeypatch):
    """The VM GPU-Train-1 (Azure DMI tag; hostname = VM name) runs train 30 min, eval 15 min and
    nothing 15 min; its day costs $12 (tagged train). Split as for EC2: eval 12 x 15/60 = $3,
    train its 30 min + the idle 15 min it owns = 12 x 45/60 = $9. A CAD line of the same VM
    (CAD 100) is not added: the dollars stay 12."""
    host = _host(monkeypatch, "GPU-Train-1", {"chassis_asset_tag": AZURE_CHASSIS_ASSET_TAG})
    assert host == "gpu-train-1"
    usd = tmp_path / "usd.csv"
    usd.write_bytes(ea_csv([ea_row(12.0)]))
    cad = tmp_path / "cad.csv"
    cad.write_bytes(ea_csv([ea_row(100.0, BillingCurrency="CAD", BillingAccountId="9")]))
    bills = [azure_cost.read_azure_file(usd), azure_cost.read_azure_file(cad)]
    assert {b["ResourceId"][0] for b in bills} == {host}
    out = _ledger(tmp_path, bills, _minutes(host, [("train", 30), ("eval", 15), (None, 15)]))
    rows = _by_workload(out)
    assert set(out["placement"]) == {"cloud"} and set(out["host"]) == {host}
    assert rows["train"]["cost_usd"] == pytest.approx(9.0)
    assert rows["train"]["idle_cost_usd"] == pytest.approx(3.0)
    assert rows["eval"]["cost_usd"] == pytest.approx(3.0)
    assert out["cost_usd"].sum() == pytest.approx(12.0)


def test_a_compute_engine_instance_joins_its_bill_lines(tmp_path, monkeypatch):
    """trainer-1 (GCE DMI product name; hostname its FQDN) runs train 45 min and eval 15 min;
    its detailed-export line is $10 with a -$2 credit = $8, labelled train: train
    8 x 45/60 = $6, eval 8 x 15/60 = $2."""
    host = _host(
        monkeypatch,
        "trainer-1.us-central1-a.c.ml-prod.internal",
        {"product_name": GCE_PRODUCT_NAME + "\n"},
    )
    assert host == "trainer-1"
    f = tmp_path / "gcp.parquet"
    f.write_bytes(detailed_parquet([(10.0, -2.0, "202611", 5)]))
    bills = list(gcp_billing.read_chunks(f))
    assert bills[0]["ResourceId"][0] == host
    out = _ledger(tmp_path, bills, _minutes(host, [("train", 45), ("eval", 15)]))
    rows = _by_workload(out)
    assert rows["train"]["cost_usd"] == pytest.approx(6.0)
    assert rows["eval"]["cost_usd"] == pytest.approx(2.0)
    assert rows["train"]["gpu_hours"] == pytest.approx(0.75)
    assert out["cost_usd"].sum() == pytest.approx(8.0)
    assert date(2026, 11, 5) in set(out["day"])
