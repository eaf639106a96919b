"""costs, recommend, whatif and report through `cli.main.main` on a real DuckDB warehouse, with
the DESIGN.md §3 JSON contracts; expected figures read from the snapshot with DuckDB."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from advisor.recommend import ACTIONS
from advisor.report import last_complete_week
from cli.main import main
from tests.clock import pinned_clock
from tests.conftest import DEMO_INTENDED_ACTIONS, ROOT

INTENDED = DEMO_INTENDED_ACTIONS
# The demo's figures and the commands' default windows depend on the date: every test here runs
# at the pinned instant (tests/clock.py), the warehouse was seeded at it.
pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture(scope="module")
def conf(tmp_path_factory, pinned_instant) -> Path:
    """A configuration in <tmp>/config/ and a warehouse with 8 demo days (5-minute samples)."""
    base = tmp_path_factory.mktemp("advisor-cli")
    (base / "config").mkdir()
    path = base / "config" / "gpuledger.toml"
    path.write_text(
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n'
        '[workloads]\nsensitive = ["clinical-nlp"]\n'
        "[demo]\nhistory_days = 8\nhistory_interval_s = 300\n"
    )
    with pinned_clock(pinned_instant):
        assert main(["--config", str(path), "demo", "--format", "json"]) == 0
    return path


def cli(conf: Path, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", str(conf), *args])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot_rows(conf: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(conf.parent.parent / "data" / "dashboard.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_costs_json_contract_and_totals(conf, capsys):
    code, out, _ = cli(conf, capsys, "costs", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    for row in rows:
        assert {"workload", "placement", "gpu_hours", "busy_gpu_hours", "cost_usd"} <= set(row)
        assert row["placement"] in ("local", "cloud")
    by = {(r["workload"], r["placement"]): r for r in rows}
    assert ("__idle__", "local") in by  # its own row
    since = datetime.now(UTC).date() - timedelta(days=30)
    want = dict(
        snapshot_rows(
            conf,
            "SELECT workload || '/' || placement, sum(cost_usd) FROM daily_ledger"
            " WHERE day >= ? GROUP BY 1",
            [since],
        )
    )
    got = {f"{w}/{p}": r["cost_usd"] for (w, p), r in by.items()}
    assert got == pytest.approx(want, abs=1e-5)
    assert by[("llm-pretrain", "cloud")]["billed_cost_usd"] == pytest.approx(
        by[("llm-pretrain", "cloud")]["cost_usd"]
    )


@pytest.mark.slow
def test_costs_by_host_as_csv_and_by_placement(conf, capsys):
    code, out, _ = cli(conf, capsys, "costs", "--by", "host", "--format", "csv")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    hosts = {r["host"] for r in table}
    assert {"dgx-a100", "ws-4090", "i-0d3a9c1e5b7f20001"} <= hosts
    code, out, _ = cli(conf, capsys, "costs", "--by", "placement", "--format", "json")
    assert {r["placement"] for r in json.loads(out)} == {"cloud", "local"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-13-01"], "--since must be a date like 2026-11-23, got '2026-13-01'"),
        (["--since", "2026-11-20", "--until", "2026-11-10"], "must be before --until"),
    ],
)
def test_costs_refuses_bad_dates_with_status_2(conf, capsys, args, message):
    code, _, err = cli(conf, capsys, "costs", *args)
    assert code == 2 and message in err


@pytest.mark.slow
def test_recommend_json_contract_and_the_demo_actions(conf, capsys):
    code, out, _ = cli(conf, capsys, "recommend", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    for r in rows:
        assert {
            "workload",
            "action",
            "current_monthly_cost_usd",
            "monthly_savings_usd",
            "break_even_months",
            "confidence",
            "reasons",
        } <= set(r)
        assert r["action"] in ACTIONS
        assert isinstance(r["reasons"], list) and all(isinstance(x, str) for x in r["reasons"])
        assert 0 <= r["confidence"] <= 1
        bought = r["upfront_usd"] is not None
        assert (r["break_even_months"] is not None) == bought
    by = {r["workload"]: r for r in rows}
    assert {w: r["action"] for w, r in by.items()} == INTENDED
    assert by["llm-pretrain"]["break_even_months"] == pytest.approx(8.3, abs=0.05)
    # g6e.xlarge instead of p5.4xlarge: $3,663.87; stopped outside its 15 active hours a week:
    # $1.861 x (730 - 15 x 730 / 168) h = $1,237.23 more
    notebook = by["research-notebook"]
    assert notebook["monthly_savings_usd"] == pytest.approx(3663.87 + 1237.23, abs=0.01)
    assert notebook["schedule_savings_usd"] == pytest.approx(1237.23, abs=0.01)
    assert any("730 h" in x for x in by["llm-pretrain"]["reasons"])


@pytest.mark.slow
def test_recommend_table_shows_the_reasons_and_alternatives_list(conf, capsys):
    code, out, _ = cli(conf, capsys, "recommend", "--workload", "clinical-nlp")
    assert code == 0
    assert "clinical-nlp: move_to_local" in out and "sensitive" in out
    code, out, _ = cli(
        conf,
        capsys,
        "recommend",
        "--alternatives",
        "--workload",
        "weekly-sweep",
        "--format",
        "json",
    )
    options = json.loads(out)
    assert options and {o["workload"] for o in options} == {"weekly-sweep"}
    assert not any(o["chosen"] for o in options)
    code, _, err = cli(conf, capsys, "recommend", "--workload", "nope")
    assert code == 2 and "no recommendation for workload 'nope'" in err


@pytest.mark.slow
def test_whatif_for_a_described_workload(conf, capsys):
    code, out, _ = cli(
        conf,
        capsys,
        "whatif",
        "--gpu",
        "H100",
        "--count",
        "1",
        "--hours-per-day",
        "20",
        "--busy",
        "0.7",
        "--memory-gib",
        "60",
        "--sensitive",
        "no",
        "--format",
        "json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["action"] == "buy_local"
    assert result["current_monthly_cost_usd"] == pytest.approx(6.88 * 20 * 730 / 24, abs=0.01)
    assert result["alternative"] == "buy 1 × H100 ($39,000)"  # $30,000 + 30 % for the server
    kinds = {a["kind"] for a in result["alternatives"]}
    assert {"cloud", "buy", "spare"} <= kinds  # the team's own spare GPUs are considered
    code, _, err = cli(conf, capsys, "whatif", "--gpu", "TPU")
    assert code == 2 and "not a GPU class of the catalog" in err
    code, _, _ = cli(conf, capsys, "whatif", "--gpu", "H100", "--sensitive", "maybe")
    assert code == 2


@pytest.mark.slow
def test_report_writes_html_and_markdown_beside_the_warehouse(conf, capsys):
    week = last_complete_week(datetime.now(UTC))
    code, out, _ = cli(conf, capsys, "report", "--week", week, "--format", "json")
    assert code == 0
    written = json.loads(out)
    reports = conf.parent.parent / "reports"  # ../reports relative to the configuration
    assert Path(written["html"]) == reports / f"{week}.html"
    assert (reports / f"{week}.md").read_text().startswith(f"# GPU spend and use, week {week}")
    assert Path(written["chart_spend"]).exists()
    code, _, err = cli(conf, capsys, "report", "--week", "2026-W99")
    assert code == 2 and "2026-W99 is not a week of 2026" in err
    code, _, err = cli(conf, capsys, "report", "--send")
    assert code == 2 and "--send needs [report.email] host and recipients" in err
