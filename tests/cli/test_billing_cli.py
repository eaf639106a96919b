"""`gpuledger import cur` and `gpuledger billing aws` end to end: real DuckDB files in a temporary
directory, AWS played by moto's server on 127.0.0.1, the Overview's numbers read back from the
published snapshot."""

import csv
import gzip
import io
import json
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from config.settings import load_config
from tests.clock import CHECK_DATES, DEFAULT_NOW, pinned_clock
from tests.collectors.billing.aws_fakes import (  # noqa: F401  (fixtures)
    aws,
    ce_result,
    legacy_csv,
    legacy_row,
    moto_server,
)
from warehouse.billing_state import BillingState
from warehouse.lock import WriterLock
from warehouse.snapshot import Snapshot

ROOT = Path(__file__).resolve().parents[2]
REAL_CUR = (
    ROOT
    / "tests/fixtures/realdata/aws-cur-legacy-focusconv/sample-anonymous-aws-export-dataset.csv"
)


def run_cli(cfg, *args: str) -> int:
    return main(["--config", cfg.source, "--db", str(cfg.db_path), *args])


def stored(cfg, sql: str) -> list[tuple]:
    con = duckdb.connect(str(cfg.db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def total_billed(cfg) -> float:
    return stored(cfg, "SELECT coalesce(sum(BilledCost), 0) FROM billing_items")[0][0]


def csv_total(path: Path, column: str = "lineItem/UnblendedCost") -> float:
    with open(path, newline="", encoding="utf-8") as fh:
        return sum(float(r[column]) for r in csv.DictReader(fh))


# import cur ----------------------------------------------------------------------------------
def test_import_cur_stores_the_file_once_and_a_restated_file_replaces_it(cfg, tmp_path, capsys):
    assert run_cli(cfg, "import", "cur", str(REAL_CUR)) == 0
    assert total_billed(cfg) == pytest.approx(csv_total(REAL_CUR), abs=1e-9)
    assert run_cli(cfg, "import", "cur", str(REAL_CUR)) == 0  # again: nothing counts twice
    assert total_billed(cfg) == pytest.approx(csv_total(REAL_CUR), abs=1e-9)
    assert stored(cfg, "SELECT count(*) FROM billing_items") == [(1281,)]
    # AWS restates the period: every cost doubled, gzip this time.
    rows = list(csv.DictReader(REAL_CUR.open(newline="", encoding="utf-8")))
    for r in rows:
        r["lineItem/UnblendedCost"] = str(float(r["lineItem/UnblendedCost"]) * 2)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    restated = tmp_path / "restated.csv.gz"
    restated.write_bytes(gzip.compress(buf.getvalue().encode()))
    capsys.readouterr()
    assert run_cli(cfg, "import", "cur", str(restated), "--format", "json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["rows"] == 1281 and "ingested" in out[0]["status"]
    assert total_billed(cfg) == pytest.approx(2 * csv_total(REAL_CUR), abs=1e-9)


def test_the_files_of_one_period_given_together_all_count(cfg, tmp_path):
    part1 = tmp_path / "r-1.csv.gz"
    part2 = tmp_path / "r-2.csv.gz"
    part1.write_bytes(legacy_csv([legacy_row(cost="10")], gz=True))
    part2.write_bytes(legacy_csv([legacy_row(id="li-2", cost="5")], gz=True))
    assert run_cli(cfg, "import", "cur", str(part1), str(part2)) == 0
    assert total_billed(cfg) == pytest.approx(15.0)


def test_one_bad_file_writes_nothing(cfg, tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_bytes(legacy_csv([legacy_row()]))
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(REAL_CUR.read_bytes())[:4000])
    assert run_cli(cfg, "init") == 0
    assert run_cli(cfg, "import", "cur", str(good), str(bad)) == 2
    assert "bad.csv.gz: truncated or corrupt gzip" in capsys.readouterr().err
    assert stored(cfg, "SELECT count(*) FROM billing_items") == [(0,)]
    assert list((cfg.spool_dir).rglob("kind=billing_items/**/*.parquet")) == []
    assert [p.name for p in cfg.spool_dir.rglob("*") if p.name.startswith(".tmp-")] == []


def test_azure_and_focus_files_are_sent_where_they_belong(cfg, capsys):
    azure = ROOT / "tests/fixtures/realdata/azure-ea-cost-export/EA_ActualCost_Small.csv"
    assert run_cli(cfg, "import", "cur", str(azure)) == 2
    assert "Azure Cost Management cost export" in capsys.readouterr().err
    focus = ROOT / "tests/fixtures/realdata/focus-sample-1.0/focus_sample.csv"
    assert run_cli(cfg, "import", "cur", str(focus)) == 2
    assert "gpuledger import focus" in capsys.readouterr().err
    assert run_cli(cfg, "import", "focus", str(REAL_CUR)) == 2
    assert "gpuledger import cur" in capsys.readouterr().err


# The Overview, through the snapshot ----------------------------------------------------------
@pytest.mark.date_sensitive
def test_imported_bills_show_as_cloud_spend_per_workload_per_day(cfg, tmp_path, clock):
    """What the Overview charts: the snapshot's daily_ledger, cloud spend by workload and day.
    Two days of a tagged GPU instance, an untagged one, and an account billed in CAD, which
    is kept out of the dollar figures. Each hour is in its own month's billing period (the two
    days may straddle a month boundary)."""
    d1 = (clock - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    d2 = d1 + timedelta(days=1)

    def hour(start, **kw):
        return legacy_row(
            start=start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            end=(start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            period=start.replace(day=1, hour=0).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            **kw,
        )

    rows = [
        hour(d1, id="a", workload="llm-finetune", cost="21.96"),
        hour(d1 + timedelta(hours=1), id="b", workload="llm-finetune", cost="21.96"),
        hour(d2, id="c", workload="llm-finetune", cost="21.96"),
        hour(d2, id="d", resource="i-0untagged", workload="", cost="1.006"),
        hour(d2, id="e", payer="333333333333", currency="CAD", workload="llm-finetune", cost="50"),
    ]
    path = tmp_path / "cur.csv"
    path.write_bytes(legacy_csv(rows))
    assert run_cli(cfg, "import", "cur", str(path)) == 0
    snap = Snapshot(cfg.snapshot_path)
    got = snap.query(
        "SELECT day, workload, round(sum(cost_usd), 6) AS usd FROM daily_ledger"
        " WHERE placement = 'cloud' GROUP BY ALL ORDER BY day, workload"
    )
    snap.close()
    assert [(r["day"], r["workload"], r["usd"]) for r in got.iter_rows(named=True)] == [
        (d1.date(), "llm-finetune", 43.92),
        (d2.date(), "llm-finetune", 21.96),  # the CAD 50 is not in dollars
        (d2.date(), "untagged", 1.006),
    ]


def test_the_demo_fleet_shows_cloud_spend_per_workload(demo_warehouse):
    snap = Snapshot(demo_warehouse.snapshot_path)
    got = snap.query(
        "SELECT workload, sum(cost_usd) AS usd FROM daily_ledger WHERE placement = 'cloud'"
        " GROUP BY ALL"
    )
    bills = snap.query(
        "SELECT workload, sum(effective_cost) AS usd FROM billing_daily GROUP BY ALL"
    )
    snap.close()
    spend = dict(got.iter_rows())
    assert len([w for w, usd in spend.items() if usd > 0]) >= 3
    assert sum(spend.values()) == pytest.approx(sum(dict(bills.iter_rows()).values()))


# billing aws ---------------------------------------------------------------------------------
def _aws_config(tmp_path: Path, aws_lines: str) -> Path:
    path = tmp_path / "gpuledger.toml"
    path.write_text(
        f'[warehouse]\npath = "{tmp_path / "data" / "warehouse.duckdb"}"\n\n'
        f'[catalog]\npath = "{ROOT / "config" / "catalog.csv"}"\n\n'
        f'[demo]\nmode = "off"\n\n[aws]\n{aws_lines}\n'
    )
    return path


def _org_accounts(aws):  # noqa: F811
    org = aws.session().client("organizations")
    org.create_organization(FeatureSet="ALL")
    made = [
        org.create_account(Email=f"{n}@example.com", AccountName=n)["CreateAccountStatus"][
            "AccountId"
        ]
        for n in ("research", "prod")
    ]
    return ["123456789012", *made]


@pytest.mark.parametrize(
    "pinned_instant",
    [DEFAULT_NOW, CHECK_DATES["third-of-month"]],
    ids=["mid-month", "third-of-month"],
    indirect=True,
)
def test_billing_aws_pulls_three_accounts_and_a_repull_replaces_the_days(
    aws,  # noqa: F811
    tmp_path,
    capsys,
    clock,
):
    """The first run rebuilds the month to date (early in a month: the trailing window itself),
    one request per account; the next day's run asks for its trailing window (another request,
    so moto answers the second, restated figures) and they replace the first ones. At the
    pinned clock, mid-month and on the 3rd, when the rebuild is the trailing window (the plan at
    every check date: tests/collectors/billing/test_aws_ce.py, which is quicker)."""
    accounts = _org_accounts(aws)
    day = (clock - timedelta(days=1)).date().isoformat()
    for i, account in enumerate(accounts):
        aws.seed_cost_and_usage(
            [
                {
                    "ResultsByTime": [
                        ce_result(day, [("llm", "USE1-BoxUsage:p4d.24xlarge", 100 + i)])
                    ]
                },
                # The next run's (different) request gets the restated figures.
                {
                    "ResultsByTime": [
                        ce_result(day, [("llm", "USE1-BoxUsage:p4d.24xlarge", 200 + i)])
                    ]
                },
            ],
            account_id=account,
        )
    config = _aws_config(
        tmp_path,
        'use_organizations = true\norganizations_role_name = "gpuledger-billing-read"',
    )
    cfg = load_config(config)
    assert main(["--config", str(config), "billing", "aws", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    total = out[-1]
    assert total["source"] == "total" and total["ce_requests"] == 3
    assert "Cost Explorer requests: 3 (USD 0.03)" in total["status"]
    assert {r["account"] for r in out[:-1]} == set(accounts)
    assert total_billed(cfg) == pytest.approx(100 + 101 + 102)
    assert stored(cfg, "SELECT DISTINCT workload, InstanceType FROM billing_items") == [
        ("llm", "p4d.24xlarge")
    ]

    # The next day's run asks for its trailing window only (another request per account) and
    # the day's restated figures replace the first ones.
    with pinned_clock(clock + timedelta(days=1)):
        assert main(["--config", str(config), "billing", "aws"]) == 0
    table = capsys.readouterr().out
    assert "Cost Explorer requests: 3 (USD 0.03)" in table
    assert total_billed(cfg) == pytest.approx(200 + 201 + 202)
    with BillingState(cfg.billing_state_path) as state:
        assert state.ce_requests() == 6


def test_billing_aws_while_the_daemon_owns_the_warehouse_queues_the_batch(
    aws,  # noqa: F811
    tmp_path,
    capsys,
    clock,
):
    day = (clock - timedelta(days=1)).date().isoformat()
    aws.seed_cost_and_usage(
        [{"ResultsByTime": [ce_result(day, [("vision", "USE1-BoxUsage:g5.xlarge", 24.14)])]}],
        account_id="123456789012",
    )
    config = _aws_config(tmp_path, "")
    cfg = load_config(config)
    with WriterLock(cfg.db_path):
        assert main(["--config", str(config), "billing", "aws"]) == 0
    assert "queued in the spool" in capsys.readouterr().out
    assert len(list(cfg.spool_dir.rglob("kind=billing_items/**/*.parquet"))) == 1
    assert main(["--config", str(config), "init"]) == 0  # the daemon's next ingest
    assert total_billed(cfg) == pytest.approx(24.14)


def test_cost_explorer_and_an_export_together_are_refused(tmp_path, capsys):
    config = _aws_config(tmp_path, 'export_bucket = "my-cur"')
    assert main(["--config", str(config), "billing", "aws"]) == 2
    err = capsys.readouterr().err
    assert "cost_explorer = true and export_bucket = 'my-cur' would count" in err
    assert "cost_explorer = false" in err


def test_bad_dates_are_usage_errors(tmp_path, capsys):
    config = _aws_config(tmp_path, "")
    assert main(["--config", str(config), "billing", "aws", "--since", "yesterday"]) == 2
    assert "--since: 'yesterday' is not a date" in capsys.readouterr().err
    assert main(["--config", str(config), "billing", "aws", "--until", "2026-11-01"]) == 2
    assert "needs --since" in capsys.readouterr().err


def test_the_daemon_job_pulls_in_the_background_when_due(aws, tmp_path, clock):  # noqa: F811
    from cli import app
    from cli.jobs import periodic_jobs

    day = (clock - timedelta(days=1)).date().isoformat()
    aws.seed_cost_and_usage(
        [{"ResultsByTime": [ce_result(day, [("batch-queue", "USE1-BoxUsage:g5.xlarge", 5.0)])]}],
        account_id="123456789012",
    )
    cfg = load_config(_aws_config(tmp_path, "enabled = true"))
    with app.open_warehouse(cfg) as wh:
        jobs = {
            name: (period, fn) for name, period, fn in periodic_jobs(cfg, wh, None, demo_on=False)
        }
    period, job = jobs["aws-billing"]
    assert period == 60.0
    job()  # due: never pulled
    deadline = time.monotonic() + 20
    batches = []
    while time.monotonic() < deadline and not batches:
        batches = list(cfg.spool_dir.rglob("kind=billing_items/**/*.parquet"))
        time.sleep(0.05)
    assert len(batches) == 1
    while time.monotonic() < deadline:  # the thread records its run, then lets go of the lock
        try:
            with BillingState(cfg.billing_state_path) as state:
                if state.marked("last_pull_at"):
                    break
        except Exception:
            pass
        time.sleep(0.05)
    job()  # pulled a moment ago: not due for [aws] pull_interval_h
    time.sleep(0.3)
    assert len(list(cfg.spool_dir.rglob("kind=billing_items/**/*.parquet"))) == 1
