"""The commitment that covered a bill line (FOCUS CommitmentDiscountId and Type; CUR's
reservation or savings plan ARN on covered usage) is kept from the file to the warehouse, and the
instance it covers is read with it, so recommendations never tell it to commit again."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from collectors.billing.cur import read_cur_file
from collectors.billing.focus import read_focus_file
from tables import spool
from tests.collectors.billing.aws_fakes import LEGACY_COLUMNS, legacy_row
from warehouse.results import instance_types
from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[3]
FOCUS = ROOT / "tests/fixtures/realdata/focus-sample-1.0/focus_sample.csv"
SP = "arn:aws:savingsplans::111111111111:savingsplan/0abc"
RI = "arn:aws:ec2:us-east-1:111111111111:reserved-instances/1def"


def test_the_real_focus_sample_names_its_savings_plan_lines():
    """The FinOps Foundation sample: 4 usage lines covered by a Savings Plan (3 on EC2
    instances), every other line covered by nothing."""
    f = read_focus_file(FOCUS)
    covered = f.filter(pl.col("CommitmentDiscountId").is_not_null())
    assert covered.height == 4
    assert set(covered["CommitmentDiscountType"]) == {"Savings Plan"}
    assert covered["CommitmentDiscountId"].str.starts_with("arn:aws:savingsplans::").all()
    assert covered["ResourceId"].str.starts_with("i-").sum() == 3
    assert f["CommitmentDiscountType"].null_count() == f.height - 4


def _cur(tmp_path: Path) -> Path:
    """Three p4d hours: on-demand, covered by a reservation, covered by a savings plan."""
    rows = [
        legacy_row(id="li-1"),
        legacy_row(id="li-2", type="DiscountedUsage", cost="0", ri_effective="13.5", ri_arn=RI),
        legacy_row(id="li-3", type="SavingsPlanCoveredUsage", cost="21.96", sp_effective="12"),
    ]
    rows[2]["savingsPlan/SavingsPlanARN"] = SP
    columns = [*LEGACY_COLUMNS, "savingsPlan/SavingsPlanARN"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: r.get(c, "") for c in columns} for r in rows)
    path = tmp_path / "cur.csv"
    path.write_text(buf.getvalue())
    return path


def test_a_cur_names_the_reservation_or_savings_plan_of_covered_usage(tmp_path):
    f = read_cur_file(_cur(tmp_path))
    pairs = list(zip(f["CommitmentDiscountType"], f["CommitmentDiscountId"], strict=True))
    assert pairs == [(None, None), ("Reservation", RI), ("Savings Plan", SP)]


def test_the_warehouse_reads_the_commitment_of_an_instance(cfg, tmp_path):
    """The CUR's instance (i-0d3a9c1e5b7f20001), its three lines at 10:00, 11:00 and 12:00 UTC:
    the newest covered one (12:00) names the savings plan; the warehouse (migration 10) stores
    both columns."""
    frame = read_cur_file(_cur(tmp_path)).with_columns(
        ChargePeriodStart=pl.Series(
            [datetime(2026, 11, 20, h, tzinfo=UTC) for h in (10, 11, 12)]
        ).dt.cast_time_unit("us")
    )
    spool.write_batch(cfg.spool_dir, "billing_items", frame, "import")
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        wh.ingest_spool()
        inst = instance_types(wh, datetime(2026, 11, 1, tzinfo=UTC))
    row = inst.row(0, named=True)
    assert row["host"] == "i-0d3a9c1e5b7f20001" and row["instance_type"] == "p4d.24xlarge"
    assert (row["commitment_type"], row["commitment_id"]) == ("Savings Plan", SP)
