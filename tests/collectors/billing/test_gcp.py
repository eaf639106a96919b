"""Google Cloud: the detailed usage cost export (nested Parquet) into the billing shape; month
folders pulled from Cloud Storage (gcp-storage-emulator on 127.0.0.1) by ETag, a restated
month replacing its rows; the BigQuery export through a stubbed client (no BigQuery emulator
exists: the query's parameters and the rows it gives are checked, not BigQuery itself)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collectors.billing import gcp_billing
from collectors.billing.gcp import GcpPullOptions, pull_gcp_bigquery, pull_gcp_files
from collectors.billing.provider import WindowPlan
from collectors.errors import InputError
from tests.collectors.billing.emulators import gcs_emulator  # noqa: F401  (fixture)
from warehouse.billing_state import BillingState
from warehouse.store import Warehouse

GLOBAL = "//compute.googleapis.com/projects/ml-prod/zones/us-central1-a/instances/4242424242"
_LABEL = pa.struct([("key", pa.string()), ("value", pa.string())])
_CREDIT = pa.struct([("name", pa.string()), ("amount", pa.float64())])


def detailed_parquet(rows: list[tuple[float, float, str, int]]) -> bytes:
    """Detailed export rows (cost, credit, invoice month, day of November 2026), nested as the
    BigQuery table is: one GCE instance, `trainer-1`, labelled workload=train."""
    n = len(rows)
    start = [datetime(2026, 11, d, 10, tzinfo=UTC) for *_, d in rows]
    table = pa.table(
        {
            "billing_account_id": ["01A2B3-C4D5E6-F7A8B9"] * n,
            "service": pa.array(
                [{"id": "6F81", "description": "Compute Engine"}] * n,
                pa.struct([("id", pa.string()), ("description", pa.string())]),
            ),
            "sku": pa.array([{"id": "A100-GPU"}] * n, pa.struct([("id", pa.string())])),
            "usage_start_time": pa.array(start, pa.timestamp("us", "UTC")),
            "usage_end_time": pa.array(
                [s + timedelta(hours=1) for s in start], pa.timestamp("us", "UTC")
            ),
            "labels": pa.array([[{"key": "workload", "value": "train"}]] * n, pa.list_(_LABEL)),
            "location": pa.array(
                [{"region": "us-central1"}] * n, pa.struct([("region", pa.string())])
            ),
            "resource": pa.array(
                [{"name": "trainer-1", "global_name": GLOBAL}] * n,
                pa.struct([("name", pa.string()), ("global_name", pa.string())]),
            ),
            "cost": [r[0] for r in rows],
            "credits": pa.array(
                [[{"name": "SUD", "amount": r[1]}] if r[1] else [] for r in rows], pa.list_(_CREDIT)
            ),
            "currency": ["USD"] * n,
            "invoice": pa.array(
                [{"month": r[2]} for r in rows], pa.struct([("month", pa.string())])
            ),
            "cost_type": ["regular"] * n,
            "cost_at_list": [r[0] * 1.25 for r in rows],
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_the_detailed_export_nets_credits_and_names_the_instance(tmp_path):
    """$10 with a -$2 credit = $8 billed and effective, $12.50 list; the instance's global name
    carries its numeric id, the row its name: the host id is the name."""
    f = tmp_path / "x.parquet"
    f.write_bytes(detailed_parquet([(10.0, -2.0, "202611", 5), (4.0, 0.0, "202611", 6)]))
    rows = gcp_billing.read_chunks(f)
    (frame,) = list(rows)
    first = frame.row(0, named=True)
    assert (first["BilledCost"], first["EffectiveCost"], first["ListCost"]) == (8.0, 8.0, 12.5)
    assert first["ResourceId"] == "trainer-1" and first["workload"] == "train"
    assert first["ProviderName"] == "Google Cloud" and first["RegionId"] == "us-central1"
    assert first["ChargeCategory"] == "Usage" and first["Tags"] == '{"workload":"train"}'
    assert first["scope"] == "gcp|01A2B3-C4D5E6-F7A8B9|2026-11-01"
    assert frame["EffectiveCost"].sum() == pytest.approx(12.0)  # 8 + 4


def test_a_csv_file_that_is_neither_is_refused(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="extract it as Parquet"):
        list(gcp_billing.read_chunks(f))


# Cloud Storage, against the emulator -----------------------------------------------------------
PREFIX = "gpuledger/detailed/"


@pytest.fixture
def bucket(gcs_emulator, monkeypatch):  # noqa: F811
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.host)
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    name = f"bills-{datetime.now(UTC).strftime('%H%M%S%f')}"
    return client, client.create_bucket(name)


def _pull(client, name, tmp_path):
    opts = GcpPullOptions(bucket=name, export_prefix=PREFIX)
    with BillingState(tmp_path / "state.duckdb") as state:
        return pull_gcp_files(opts, state, tmp_path / "spool", tmp_path / "work", client=client)


def _stored(tmp_path) -> dict[str, float]:
    with Warehouse(tmp_path / "wh.duckdb", tmp_path / "spool").open() as wh:
        wh.ingest_spool()
        rows = wh.db.execute(
            "SELECT strftime(BillingPeriodStart, '%Y-%m'), round(sum(EffectiveCost), 6)"
            " FROM billing_items GROUP BY 1"
        ).fetchall()
    return dict(rows)


def test_months_are_taken_once_and_a_restated_month_replaces_its_rows(bucket, tmp_path):
    """November: two files, $8 + $4 = $12. Again: unchanged. November extracted again
    (overwrite) as $20 - $5 = $15: it replaces the $12; October stays."""
    client, b = bucket
    nov = f"{PREFIX}invoice_month=202611/"
    b.blob(nov + "000000000000.parquet").upload_from_string(
        detailed_parquet([(10.0, -2.0, "202611", 5)])
    )
    b.blob(nov + "000000000001.parquet").upload_from_string(
        detailed_parquet([(4.0, 0.0, "202611", 6)])
    )
    b.blob(f"{PREFIX}invoice_month=202610/000000000000.parquet").upload_from_string(
        detailed_parquet([(3.0, 0.0, "202610", 1)])
    )
    first = _pull(client, b.name, tmp_path)
    assert [(ln.period, ln.status, ln.rows) for ln in first.lines] == [
        ("2026-10", "taken", 1),
        ("2026-11", "taken", 2),
    ]
    assert _stored(tmp_path) == {"2026-10": 3.0, "2026-11": 12.0}
    again = _pull(client, b.name, tmp_path)
    assert [ln.status for ln in again.lines] == ["unchanged", "unchanged"]
    b.blob(nov + "000000000001.parquet").delete()
    b.blob(nov + "000000000000.parquet").upload_from_string(
        detailed_parquet([(20.0, -5.0, "202611", 5)])
    )
    third = _pull(client, b.name, tmp_path)
    assert [ln.status for ln in third.lines] == ["unchanged", "taken"]
    assert _stored(tmp_path) == {"2026-10": 3.0, "2026-11": 15.0}


def test_a_bad_month_is_refused_alone(bucket, tmp_path):
    client, b = bucket
    b.blob(f"{PREFIX}invoice_month=202611/000.parquet").upload_from_string(b"PAR1 broken")
    b.blob(f"{PREFIX}invoice_month=202610/000.parquet").upload_from_string(
        detailed_parquet([(3.0, 0.0, "202610", 1)])
    )
    lines = {ln.period: ln for ln in _pull(client, b.name, tmp_path).lines}
    assert lines["2026-10"].status == "taken"
    assert lines["2026-11"].bad_input and f"gs://{b.name}/{PREFIX}" in lines["2026-11"].status
    assert _stored(tmp_path) == {"2026-10": 3.0}


# BigQuery, stubbed ------------------------------------------------------------------------------
class FakeJob:
    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def result(self):
        return self

    def to_arrow(self) -> pa.Table:
        return self.table


class FakeBigQuery:
    """Answers every query with `rows` (the flat columns the query selects) and keeps what it
    was asked."""

    def __init__(self, rows: pa.Table) -> None:
        self.rows, self.asked = rows, []

    def query(self, sql, job_config=None):
        params = {p.name: p.value for p in job_config.query_parameters}
        self.asked.append((sql, params))
        return FakeJob(self.rows)


def _flat(costs: dict[int, float]) -> pa.Table:
    days = sorted(costs)
    return pa.table(
        {
            "billing_account_id": ["01A2B3"] * len(days),
            "service_description": ["Compute Engine"] * len(days),
            "usage_start_time": pa.array(
                [datetime(2026, 11, d, tzinfo=UTC) for d in days], pa.timestamp("us", "UTC")
            ),
            "resource_name": ["trainer-1"] * len(days),
            "resource_global_name": [GLOBAL] * len(days),
            "cost": [costs[d] for d in days],
            "credits": [0.0] * len(days),
            "currency": ["USD"] * len(days),
            "invoice_month": ["202611"] * len(days),
            "cost_type": ["regular"] * len(days),
            "workload": ["train"] * len(days),
        }
    )


def test_bigquery_pulls_the_trailing_window_and_a_repulled_day_replaces_its_rows(tmp_path):
    """Pulled on 2026-11-20 12:00 with 3 trailing days and a first-run rebuild: 11-01..11-20,
    one query. Day 19 at $5 and day 20 at $7; the next pull (an hour later, no rebuild due)
    asks 11-17..11-20 and finds day 20 restated to $9: stored 5 + 9 = $14, not 21."""
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    opts = GcpPullOptions(bigquery_table="p.billing.gcp_billing_export_resource_v1_X")
    fake = FakeBigQuery(_flat({19: 5.0, 20: 7.0}))
    plan = WindowPlan(trailing_days=3, rebuild_days=7)
    with BillingState(tmp_path / "state.duckdb") as state:
        first = pull_gcp_bigquery(opts, state, tmp_path / "spool", plan, now=now, client=fake)
        fake.rows = _flat({20: 9.0})
        pull_gcp_bigquery(
            opts, state, tmp_path / "spool", plan, now=now + timedelta(hours=1), client=fake
        )
    (line,) = first.lines
    assert line.source == "bigquery" and line.period == "2026-11-01..2026-11-20"
    assert (line.rows, line.requests) == (2, 1)
    assert [p["start"] for _, p in fake.asked] == [date(2026, 11, 1), date(2026, 11, 17)]
    assert {p["end"] for _, p in fake.asked} == {date(2026, 11, 21)}
    sql = fake.asked[0][0]
    assert "`p.billing.gcp_billing_export_resource_v1_X`" in sql and "_PARTITIONTIME" in sql
    with Warehouse(tmp_path / "wh.duckdb", tmp_path / "spool").open() as wh:
        wh.ingest_spool()
        rows = wh.db.execute(
            "SELECT CAST(ChargePeriodStart AS DATE), sum(EffectiveCost), any_value(ResourceId),"
            " any_value(scope) FROM billing_items GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [(d.day, c) for d, c, *_ in rows] == [(19, 5.0), (20, 9.0)]
    assert rows[0][2] == "trainer-1" and rows[0][3] == "gcp_bq|01A2B3|2026-11-19"
