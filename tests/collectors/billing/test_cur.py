"""AWS CUR (legacy CSV, legacy Parquet, CUR 2.0) into the billing shape: money on every basis
worked by hand, the fields the telemetry join needs, and bad input refused whole."""

import csv
import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collectors.billing.cur import read_cur_chunks, read_cur_file
from collectors.billing.stream import BillingBatch, TableReader
from collectors.errors import InputError
from tests.collectors.billing.aws_fakes import legacy_csv, legacy_row

ROOT = Path(__file__).resolve().parents[3]
REAL_CUR = (
    ROOT
    / "tests/fixtures/realdata/aws-cur-legacy-focusconv/sample-anonymous-aws-export-dataset.csv"
)
FOCUS = ROOT / "tests/fixtures/realdata/focus-sample-1.0/focus_sample.csv"


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# The amortization table, one line item type per row, worked by hand --------------------------
AMORTIZATION = [
    # (line item type, overrides, BilledCost, EffectiveCost, ChargeCategory)
    ("Usage", {"cost": 21.96, "net": 20.0}, 20.0, 20.0, "Usage"),  # net preferred when present
    ("DiscountedUsage", {"cost": 0, "ri_effective": 13.5}, 0.0, 13.5, "Usage"),
    (
        "RIFee",
        {"cost": 100, "ri_unused_upfront": 5, "ri_unused_recurring": 7.5},
        100.0,
        12.5,
        "Purchase",
    ),
    (
        "Fee",
        {"cost": 1000, "ri_arn": "arn:aws:ec2:us-east-1:1:reserved-instances/x"},
        1000.0,
        0.0,
        "Purchase",
    ),
    ("SavingsPlanCoveredUsage", {"cost": 10, "sp_effective": 6}, 10.0, 6.0, "Usage"),
    ("SavingsPlanNegation", {"cost": -10}, -10.0, 0.0, "Usage"),
    (
        "SavingsPlanRecurringFee",
        {"cost": 8, "sp_commitment": 8, "sp_used": 6},
        8.0,
        2.0,
        "Purchase",
    ),
    ("Credit", {"cost": -5, "resource": ""}, -5.0, -5.0, "Credit"),
    ("Tax", {"cost": 3, "resource": ""}, 3.0, 3.0, "Tax"),
]


@pytest.fixture
def amortization_file(tmp_path):
    rows = [legacy_row(type=t, id=f"li-{i}", **o) for i, (t, o, *_r) in enumerate(AMORTIZATION)]
    return _write(tmp_path, "cur.csv.gz", legacy_csv(rows, gz=True))


def test_every_line_item_type_gets_billed_and_amortized_cost_right(amortization_file):
    f = read_cur_file(amortization_file)
    assert f.height == len(AMORTIZATION)
    for (line_type, _o, billed, effective, category), row in zip(
        AMORTIZATION, f.iter_rows(named=True), strict=True
    ):
        assert row["BilledCost"] == pytest.approx(billed), line_type
        assert row["EffectiveCost"] == pytest.approx(effective), line_type
        assert row["ChargeCategory"] == category, line_type
    # The invoice: 20 + 0 + 100 + 1000 + 10 - 10 + 8 - 5 + 3.
    assert f["BilledCost"].sum() == pytest.approx(1126.0)
    # Amortized: the 1000 upfront and the RI/SP fees spread into usage, unused commitment kept.
    assert f["EffectiveCost"].sum() == pytest.approx(20 + 13.5 + 12.5 + 0 + 6 + 0 + 2 - 5 + 3)
    assert f["ListCost"][0] == pytest.approx(21.96)
    credit = f.filter(pl.col("ChargeCategory") == "Credit")
    assert credit["EffectiveCost"].to_list() == [-5.0]  # negative is legal, kept negative


def test_a_gpu_instance_line_carries_what_the_join_needs(tmp_path):
    arn = "arn:aws:ec2:us-east-1:222222222222:instance/i-0d3a9c1e5b7f20002"
    rows = [
        legacy_row(workload="llm-finetune", team='vision "A"\\B'),
        legacy_row(id="li-2", resource=arn, workload="", instance_type="", amount="2"),
        legacy_row(
            id="li-3",
            product="AmazonS3",
            usage_type="USE1-TimedStorage-ByteHrs",
            resource="my-bucket",
            instance_type="",
            workload="llm-finetune",
        ),
    ]
    f = read_cur_file(_write(tmp_path, "cur.csv", legacy_csv(rows)))
    gpu, arn_row, s3 = f.iter_rows(named=True)
    assert gpu["ResourceId"] == "i-0d3a9c1e5b7f20001"
    assert gpu["InstanceType"] == "p4d.24xlarge"
    assert gpu["workload"] == "llm-finetune"
    assert json.loads(gpu["Tags"]) == {
        "user:workload": "llm-finetune",
        "user:team": 'vision "A"\\B',
    }
    assert gpu["ChargePeriodStart"] == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert gpu["ChargePeriodEnd"] == datetime(2026, 11, 20, 11, tzinfo=UTC)
    assert gpu["BillingCurrency"] == "USD" and gpu["ProviderName"] == "AWS"
    assert gpu["source"] == "cur"
    assert gpu["scope"] == "cur|111111111111|222222222222|2026-11-01"
    # An instance ARN becomes the instance id; the type comes from the usage type when the
    # product column is empty; an untagged line has no workload.
    assert arn_row["ResourceId"] == "i-0d3a9c1e5b7f20002"
    assert arn_row["InstanceType"] == "p4d.24xlarge"
    assert arn_row["workload"] is None
    assert arn_row["ConsumedQuantity"] == 2.0
    # Storage is not an instance line even with an instance-like id elsewhere.
    assert s3["InstanceType"] is None and s3["ResourceId"] == "my-bucket"


def _cur2_table(resource_tags: pa.Array, cost: pa.Array | None = None) -> pa.Table:
    n = len(resource_tags)
    ts = pa.array([datetime(2026, 11, 20, 10)] * n, pa.timestamp("ms"))
    return pa.table(
        {
            "bill_payer_account_id": ["111111111111"] * n,
            "bill_billing_period_start_date": pa.array(
                [datetime(2026, 11, 1)] * n, pa.timestamp("ms")
            ),
            "line_item_usage_account_id": ["222222222222"] * n,
            "line_item_line_item_type": ["Usage"] * n,
            "line_item_usage_start_date": ts,
            "line_item_usage_end_date": pa.array(
                [datetime(2026, 11, 20, 11)] * n, pa.timestamp("ms")
            ),
            "line_item_product_code": ["AmazonEC2"] * n,
            "line_item_usage_type": ["USE1-BoxUsage:g5.xlarge"] * n,
            "line_item_resource_id": [
                f"arn:aws:ec2:us-east-1:222222222222:instance/i-0{i}" for i in range(n)
            ],
            "line_item_unblended_cost": cost if cost is not None else pa.array([1.006] * n),
            "line_item_net_unblended_cost": pa.array([None] * n, pa.float64()),
            "line_item_currency_code": ["USD"] * n,
            "pricing_public_on_demand_cost": [1.006] * n,
            "product_instance_type": ["g5.xlarge"] * n,
            "product": pa.array(
                [[("product_name", "Amazon Elastic Compute Cloud")]] * n,
                pa.map_(pa.string(), pa.string()),
            ),
            "resource_tags": resource_tags,
        }
    )


def test_cur2_parquet_with_its_map_columns(tmp_path):
    tags = pa.array(
        [[("user_workload", "chat-inference"), ("user_team", 'a"b')], None],
        pa.map_(pa.string(), pa.string()),
    )
    p = tmp_path / "cur2-00001.snappy.parquet"
    pq.write_table(_cur2_table(tags), p)
    f = read_cur_file(p)
    assert f["workload"].to_list() == ["chat-inference", None]
    assert json.loads(f["Tags"][0]) == {"user_workload": "chat-inference", "user_team": 'a"b'}
    assert f["Tags"][1] is None
    assert f["ResourceId"].to_list() == ["i-00", "i-01"]
    assert f["InstanceType"].to_list() == ["g5.xlarge", "g5.xlarge"]
    assert f["ServiceName"][0] == "Amazon Elastic Compute Cloud"
    assert f["BilledCost"].sum() == pytest.approx(2 * 1.006)  # null net cost: unblended
    assert f["ChargePeriodStart"][0] == datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_cur2_gzip_csv_has_its_tags_as_json_text(tmp_path):
    text = (
        "bill_payer_account_id,bill_billing_period_start_date,line_item_line_item_type,"
        "line_item_usage_start_date,line_item_usage_end_date,line_item_unblended_cost,"
        "line_item_currency_code,line_item_resource_id,resource_tags\n"
        "111111111111,2026-11-01T00:00:00Z,Usage,2026-11-20T10:00:00Z,2026-11-20T11:00:00Z,"
        '2.5,USD,i-0aa,"{""user:workload"":""batch-queue""}"\n'
        "111111111111,2026-11-01T00:00:00Z,Usage,2026-11-20T10:00:00Z,2026-11-20T11:00:00Z,"
        "0.5,USD,,{}\n"
    )
    f = read_cur_file(_write(tmp_path, "part.csv.gz", gzip.compress(text.encode())))
    assert f["workload"].to_list() == ["batch-queue", None]
    assert f["Tags"].to_list() == ['{"user:workload":"batch-queue"}', None]
    assert f["EffectiveCost"].sum() == pytest.approx(3.0)
    # Without a usage account column the scope names the payer twice.
    assert f["scope"].unique().to_list() == ["cur|111111111111|111111111111|2026-11-01"]


def test_legacy_cur_parquet_tag_columns(tmp_path):
    table = (
        _cur2_table(pa.array([None, None], pa.map_(pa.string(), pa.string())))
        .drop_columns(["resource_tags", "product"])
        .append_column("resource_tags_user_workload", pa.array(["weekly-sweep", ""]))
    )
    p = tmp_path / "legacy.parquet"
    pq.write_table(table, p)
    f = read_cur_file(p)
    assert f["workload"].to_list() == ["weekly-sweep", None]
    assert json.loads(f["Tags"][0]) == {"user_workload": "weekly-sweep"}


def test_the_real_legacy_cur_totals_match_the_file():
    want_billed = want_list = 0.0
    taxes = 0
    with open(REAL_CUR, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        want_billed += float(r["lineItem/UnblendedCost"])
        want_list += float(r["pricing/publicOnDemandCost"] or 0)
        taxes += r["lineItem/LineItemType"] == "Tax"
    f = read_cur_file(REAL_CUR)
    assert f.height == len(rows) == 1281
    assert f["BilledCost"].sum() == pytest.approx(want_billed, abs=1e-9)
    # No reserved or Savings Plans lines in this report: amortized equals billed.
    assert f["EffectiveCost"].sum() == pytest.approx(want_billed, abs=1e-9)
    assert f["ListCost"].sum() == pytest.approx(want_list, abs=1e-9)
    assert (f["ChargeCategory"] == "Tax").sum() == taxes
    assert f["BillingCurrency"].unique().to_list() == ["USD"]
    assert f["ResourceId"].null_count() == f.height  # this report has no resource ids
    assert f["InstanceType"].null_count() == f.height  # and no EC2 (S3, Glue, SQS, …)


# Bad input -----------------------------------------------------------------------------------
def test_truncated_gzip_is_refused(tmp_path):
    data = gzip.compress(REAL_CUR.read_bytes())
    p = _write(tmp_path, "cur.csv.gz", data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt gzip"):
        read_cur_file(p)


def test_a_parquet_column_of_the_wrong_type_is_named(tmp_path):
    tags = pa.array([None], pa.map_(pa.string(), pa.string()))
    struct_cost = pa.array([{"amount": 1.0}], pa.struct([("amount", pa.float64())]))
    p = tmp_path / "bad.parquet"
    pq.write_table(_cur2_table(tags, cost=struct_cost), p)
    with pytest.raises(InputError, match=r"column line_item_unblended_cost: has type Struct"):
        read_cur_file(p)
    text_cost = pa.array(["1.0", "abc"])
    pq.write_table(_cur2_table(pa.array([None, None], tags.type), cost=text_cost), p)
    with pytest.raises(
        InputError, match=r"bad.parquet: row 2, column line_item_unblended_cost: 'abc' is not"
    ):
        read_cur_file(p)


def _many_rows(n: int, **bad: dict[str, str]) -> list[dict[str, str]]:
    rows = [legacy_row(id=f"li-{i}") for i in range(n)]
    for index, values in bad.items():
        rows[int(index)].update(values)
    return rows


def test_an_error_deep_in_a_streamed_file_names_its_row(tmp_path):
    p = _write(
        tmp_path,
        "cur.csv",
        legacy_csv(_many_rows(3000, **{"2500": {"lineItem/UnblendedCost": "n/a!"}})),
    )
    reader = TableReader(p, csv_block_bytes=64 << 10)
    chunks = 0
    with pytest.raises(InputError, match=r"row 2502, column lineItem/UnblendedCost: 'n/a!'"):
        for _ in read_cur_chunks(p, reader=reader):
            chunks += 1
    assert chunks >= 2  # the error came after earlier chunks had passed


def test_two_currencies_in_one_account_are_refused_across_chunks(tmp_path):
    p = _write(
        tmp_path,
        "cur.csv",
        legacy_csv(_many_rows(3000, **{"2900": {"lineItem/CurrencyCode": "EUR"}})),
    )
    with pytest.raises(InputError, match=r"row 2902, column BillingCurrency: billing account "):
        list(read_cur_chunks(p, reader=TableReader(p, csv_block_bytes=64 << 10)))


def test_accounts_in_different_currencies_are_kept_apart(tmp_path):
    rows = [legacy_row(), legacy_row(id="li-2", payer="333333333333", currency="CAD", cost="30")]
    f = read_cur_file(_write(tmp_path, "cur.csv", legacy_csv(rows)))
    by = dict(f.group_by("BillingCurrency").agg(pl.col("BilledCost").sum()).iter_rows())
    assert by == {"USD": pytest.approx(21.96), "CAD": pytest.approx(30.0)}


def test_a_focus_file_is_sent_to_import_focus(tmp_path):
    with pytest.raises(InputError, match="this is a FOCUS file.*gpuledger import focus"):
        read_cur_file(FOCUS)


def test_missing_required_columns_are_listed(tmp_path):
    p = _write(tmp_path, "x.csv", b"lineItem/UnblendedCost,lineItem/UsageStartDate\n1,2026-11-01\n")
    with pytest.raises(
        InputError, match=r"missing required CUR column\(s\): lineItem/UsageEndDate"
    ):
        read_cur_file(p)


def test_an_error_leaves_no_batch_in_the_spool(tmp_path):
    """Chunks stream into a temporary file; an error in a later chunk discards it whole."""
    p = _write(
        tmp_path,
        "cur.csv",
        legacy_csv(_many_rows(3000, **{"2999": {"lineItem/UsageStartDate": "yesterday"}})),
    )
    spool = tmp_path / "spool"
    with pytest.raises(InputError, match="row 3001"), BillingBatch(spool, "import") as batch:
        for chunk in read_cur_chunks(p, reader=TableReader(p, csv_block_bytes=64 << 10)):
            batch.add(chunk)
    assert batch.rows > 0  # chunks had been written before the error
    assert [x for x in spool.rglob("*") if x.is_file()] == []


# Streaming -----------------------------------------------------------------------------------
_MEASURE = """
import sys
from pathlib import Path
import pyarrow as pa
from collectors.billing.stream import BillingBatch, TableReader
from collectors.billing.cur import read_cur_chunks
path = Path(sys.argv[1])
chunks = 0
with BillingBatch(Path(sys.argv[2]), "big") as batch:
    for chunk in read_cur_chunks(path, reader=TableReader(path, csv_block_bytes=1 << 20)):
        batch.add(chunk)
        chunks += 1
print(batch.rows, chunks, pa.default_memory_pool().max_memory())
"""


def _big_cur(path: Path, target_bytes: int) -> int:
    header, body = REAL_CUR.read_bytes().split(b"\n", 1)
    rows = body.count(b"\n")
    with open(path, "wb") as fh:
        fh.write(header + b"\n")
        written = copies = 0
        while written < target_bytes:
            fh.write(body)
            written += len(body)
            copies += 1
    return rows * copies


@pytest.mark.slow
def test_a_100_mb_report_streams_in_bounded_memory(tmp_path):
    """A 100 MB report read with 1 MB chunks, in a fresh process so the peak is this read's
    own: it arrives in about a hundred chunks and Arrow's peak allocation stays under half the
    file (measured: about 40 MB, the same for 50 or 200 MB files; a whole-file read needs more
    than the file's size for the text alone)."""
    path = tmp_path / "cur-100mb.csv"
    want_rows = _big_cur(path, 100 << 20)
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(tmp_path / "spool")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    rows, chunks, peak = (int(x) for x in out)
    assert rows == want_rows
    assert chunks >= 80
    assert peak < path.stat().st_size // 2
