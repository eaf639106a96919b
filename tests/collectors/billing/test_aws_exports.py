"""S3 billing exports end to end against moto on 127.0.0.1: periods found by their partition,
the manifest's files taken, unchanged periods skipped by ETag, a restated period replacing its
rows in the warehouse, a bad file refusing only its own period."""

import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collectors.billing.aws_exports import S3Object, current_files, period_of, pull_exports
from tests.collectors.billing.aws_fakes import aws, legacy_csv, legacy_row, moto_server  # noqa: F401
from warehouse.billing_state import BillingState
from warehouse.store import Warehouse

FOCUS = Path(__file__).resolve().parents[2] / "fixtures/realdata/focus-sample-1.0/focus_sample.csv"
BUCKET = "billing-exports"
PREFIX = "cur/gpu-cur2/"
T0 = datetime(2026, 11, 20, tzinfo=UTC)


def _obj(key, minutes=0):
    return S3Object(key, f'"{key}"', 1, T0 + timedelta(minutes=minutes))


def test_periods_come_from_the_partition_folders():
    assert period_of("cur/x/data/BILLING_PERIOD=2026-11/x-00001.snappy.parquet") == "2026-11"
    assert period_of("cur/report/20261101-20261201/abc/report-1.csv.gz") == "2026-11"
    assert period_of("cur/report/report-Manifest.json") is None


def test_the_manifest_names_the_current_files():
    objs = [
        _obj("d/BILLING_PERIOD=2026-11/a.parquet"),
        _obj("d/BILLING_PERIOD=2026-11/old.parquet"),
    ]
    files, why = current_files(objs, {"d/BILLING_PERIOD=2026-11/a.parquet"})
    assert [o.key for o in files] == ["d/BILLING_PERIOD=2026-11/a.parquet"] and why is None
    files, why = current_files(objs, {"d/BILLING_PERIOD=2026-11/missing.parquet"})
    assert files == [] and "delivery incomplete" in why


def test_without_a_manifest_the_newest_version_folder_wins():
    objs = [
        _obj("r/20261101-20261201/assembly-1/r-1.csv.gz", 0),
        _obj("r/20261101-20261201/assembly-1/r-2.csv.gz", 0),
        _obj("r/20261101-20261201/assembly-2/r-1.csv.gz", 90),
    ]
    files, _ = current_files(objs, None)
    assert [o.key for o in files] == ["r/20261101-20261201/assembly-2/r-1.csv.gz"]
    files, why = current_files([_obj("r/20261101-20261201/r-1.zip")], None)
    assert files == [] and "ZIP" in why


# Moto end to end -------------------------------------------------------------------------------
def _cur2_parquet(costs: list[float], day: int, period: str) -> bytes:
    n = len(costs)
    start = datetime(int(period[:4]), int(period[5:]), day, 10)
    table = pa.table(
        {
            "bill_payer_account_id": ["111111111111"] * n,
            "bill_billing_period_start_date": pa.array(
                [datetime(int(period[:4]), int(period[5:]), 1)] * n, pa.timestamp("ms")
            ),
            "line_item_usage_account_id": ["222222222222"] * n,
            "line_item_line_item_type": ["Usage"] * n,
            "line_item_usage_start_date": pa.array([start] * n, pa.timestamp("ms")),
            "line_item_usage_end_date": pa.array(
                [start + timedelta(hours=1)] * n, pa.timestamp("ms")
            ),
            "line_item_usage_type": ["USE1-BoxUsage:p5.4xlarge"] * n,
            "line_item_resource_id": [f"i-0{i:016x}" for i in range(n)],
            "line_item_unblended_cost": costs,
            "line_item_currency_code": ["USD"] * n,
            "resource_tags": pa.array(
                [[("user_workload", "llm-pretrain")]] * n, pa.map_(pa.string(), pa.string())
            ),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


class Counting:
    """An S3 client that counts the objects it downloads."""

    def __init__(self, client):
        self.client, self.gets = client, []

    def get_object(self, **kw):
        self.gets.append(kw["Key"])
        return self.client.get_object(**kw)

    def __getattr__(self, name):
        return getattr(self.client, name)


def _put(s3, key, body):
    s3.put_object(Bucket=BUCKET, Key=PREFIX + key, Body=body)


def _manifest(s3, period, keys):
    doc = {"dataFiles": [f"s3://{BUCKET}/{PREFIX}{k}" for k in keys], "executionId": "x"}
    _put(s3, f"metadata/BILLING_PERIOD={period}/gpu-cur2-Manifest.json", json.dumps(doc).encode())


@pytest.fixture
def exports(aws, tmp_path):  # noqa: F811
    s3 = aws.session().client("s3")
    s3.create_bucket(Bucket=BUCKET)
    oct_keys = [f"data/BILLING_PERIOD=2026-10/gpu-cur2-0000{i}.snappy.parquet" for i in (1, 2)]
    _put(s3, oct_keys[0], _cur2_parquet([6.88, 6.88], 5, "2026-10"))
    _put(s3, oct_keys[1], _cur2_parquet([6.88], 6, "2026-10"))
    _put(s3, "data/BILLING_PERIOD=2026-10/stale-from-an-old-run.snappy.parquet", b"junk")
    _manifest(s3, "2026-10", oct_keys)
    nov_key = "data/BILLING_PERIOD=2026-11/gpu-cur2-00001.snappy.parquet"
    _put(s3, nov_key, _cur2_parquet([6.88] * 4, 20, "2026-11"))
    _manifest(s3, "2026-11", [nov_key])
    return s3, nov_key


def _pull(s3, tmp_path):
    with BillingState(tmp_path / "state.duckdb") as state:
        return pull_exports(s3, BUCKET, PREFIX, state, tmp_path / "spool", tmp_path / "work")


def _billed_by_period(tmp_path):
    with Warehouse(tmp_path / "wh.duckdb", tmp_path / "spool").open() as wh:
        wh.ingest_spool()
        return dict(
            wh.db.execute(
                "SELECT strftime(BillingPeriodStart, '%Y-%m'), round(sum(BilledCost), 6)"
                " FROM billing_items GROUP BY ALL"
            ).fetchall()
        )


def test_periods_are_taken_once_and_a_restated_one_replaces_its_rows(exports, tmp_path):
    s3, nov_key = exports
    counting = Counting(s3)
    first = {r.period: r for r in _pull(counting, tmp_path)}
    assert {p: (r.status, r.files, r.rows) for p, r in first.items()} == {
        "2026-10": ("taken", 2, 3),  # the manifest's two files, not the stale one
        "2026-11": ("taken", 1, 4),
    }
    data_gets = [k for k in counting.gets if not k.endswith("Manifest.json")]
    assert len(data_gets) == 3
    assert _billed_by_period(tmp_path) == {"2026-10": 3 * 6.88, "2026-11": pytest.approx(4 * 6.88)}

    # Nothing changed: nothing downloaded but the two small manifests.
    counting.gets.clear()
    again = {r.period: r.status for r in _pull(counting, tmp_path)}
    assert again == {"2026-10": "unchanged", "2026-11": "unchanged"}
    assert all(k.endswith("Manifest.json") for k in counting.gets)

    # AWS restates November (same key, new content, new ETag): only November is read again,
    # and its new rows replace the old ones in the warehouse: 2 x 6.88 + a 10.00 credit back.
    _put(s3, nov_key, _cur2_parquet([6.88, 6.88, -10.0], 20, "2026-11"))
    counting.gets.clear()
    third = {r.period: r.status for r in _pull(counting, tmp_path)}
    assert third == {"2026-10": "unchanged", "2026-11": "taken"}
    assert [k for k in counting.gets if not k.endswith("Manifest.json")] == [PREFIX + nov_key]
    got = _billed_by_period(tmp_path)
    assert got["2026-11"] == pytest.approx(2 * 6.88 - 10.0)
    assert got["2026-10"] == pytest.approx(3 * 6.88)


def test_a_bad_file_refuses_its_period_only(exports, tmp_path):
    s3, _ = exports
    key = "data/BILLING_PERIOD=2026-09/gpu-cur2-00001.csv.gz"
    whole = gzip.compress(legacy_csv([legacy_row()] * 50))
    _put(s3, key, whole[: len(whole) // 2])  # a truncated upload
    results = {r.period: r for r in _pull(s3, tmp_path)}
    bad = results["2026-09"]
    assert bad.bad_input and bad.status.startswith("refused: ")
    assert f"s3://{BUCKET}/{PREFIX}{key}" in bad.status and "gzip" in bad.status
    assert results["2026-10"].status == results["2026-11"].status == "taken"
    assert set(_billed_by_period(tmp_path)) == {"2026-10", "2026-11"}
    # The refused period is tried again on the next run (its state was not recorded).
    assert _pull(s3, tmp_path)[0].status.startswith("refused")


def test_a_focus_export_and_a_legacy_cur_are_read_by_their_own_readers(aws, tmp_path):  # noqa: F811
    s3 = aws.session().client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(
        Bucket=BUCKET,
        Key="focus/f/data/BILLING_PERIOD=2024-09/f-00001.csv.gz",
        Body=gzip.compress(FOCUS.read_bytes()),
    )
    s3.put_object(
        Bucket=BUCKET,
        Key="legacy/r/20261101-20261201/r-1.csv.gz",
        Body=legacy_csv([legacy_row(), legacy_row(id="li-2", cost="1.5")], gz=True),
    )
    with BillingState(tmp_path / "state.duckdb") as state:
        focus = pull_exports(s3, BUCKET, "focus/", state, tmp_path / "spool", tmp_path / "w")
        legacy = pull_exports(s3, BUCKET, "legacy/", state, tmp_path / "spool", tmp_path / "w")
        both = pull_exports(s3, BUCKET, "", state, tmp_path / "spool", tmp_path / "w")
    assert [(r.status, r.rows) for r in focus] == [("taken", 1000)]
    # A prefix over both exports is refused: a CUR and a FOCUS export may carry the same dollars.
    assert len(both) == 1 and both[0].bad_input
    assert "holds several exports (focus/f/, legacy/r/)" in both[0].status
    assert [(r.period, r.status, r.rows) for r in legacy] == [("2026-11", "taken", 2)]
    assert not list((tmp_path / "w").iterdir())  # downloads are removed
