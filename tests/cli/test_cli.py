"""The gpuledger command line end to end, on real DuckDB files in a temporary directory."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from tables import spool
from warehouse.lock import WriterLock

ROOT = Path(__file__).resolve().parents[2]
FOCUS = ROOT / "tests/fixtures/realdata/focus-sample-1.0/focus_sample.csv"
SMI_XML = ROOT / "tests/fixtures/realdata/nvidia-smi-xml-datakit/gtx-1660-ti.xml"


def run_cli(cfg, *args: str) -> int:
    return main(["--config", cfg.source, "--db", str(cfg.db_path), *args])


def stored(cfg, sql: str) -> list[tuple]:
    con = duckdb.connect(str(cfg.db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def focus_totals_from_file(path: Path) -> dict[str, tuple[float, float]]:
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["ProviderName"]][0] += float(row["EffectiveCost"])
            out[row["ProviderName"]][1] += float(row["BilledCost"])
    return {k: (round(v[0], 6), round(v[1], 6)) for k, v in out.items()}


def billing_totals(cfg) -> dict[str, tuple[float, float]]:
    rows = stored(
        cfg,
        "SELECT ProviderName, round(sum(EffectiveCost), 6), round(sum(BilledCost), 6)"
        " FROM billing_items GROUP BY 1",
    )
    return {p: (e, b) for p, e, b in rows}


def test_import_focus_twice_stores_the_totals_of_the_file_once(cfg, capsys):
    assert run_cli(cfg, "init") == 0
    assert run_cli(cfg, "import", "focus", str(FOCUS)) == 0
    once = billing_totals(cfg)
    assert run_cli(cfg, "import", "focus", str(FOCUS)) == 0
    twice = billing_totals(cfg)
    assert once == twice == focus_totals_from_file(FOCUS)
    assert stored(cfg, "SELECT count(*) FROM billing_items") == [(1000,)]
    assert "ingested 1 spool file(s): 1000 billing_items" in capsys.readouterr().out


def _unchanged(cfg):
    return (
        stored(cfg, "SELECT count(*) FROM billing_items")
        + stored(cfg, "SELECT count(*) FROM gpu_samples")
        + [(len(list(cfg.spool_dir.rglob("*.parquet"))),)]
    )


def _mutate_focus(tmp_path, fn) -> Path:
    rows = list(csv.reader(FOCUS.open(newline="", encoding="utf-8")))
    fn(rows)
    p = tmp_path / "bad_focus.csv"
    with p.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return p


def _drop_column(rows):
    i = rows[0].index("BilledCost")
    for r in rows:
        del r[i]


def _text_cost(rows):
    rows[5][rows[0].index("EffectiveCost")] = "n/a dollars"


def _two_currencies(rows):
    rows[9][rows[0].index("BillingCurrency")] = "EUR"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_drop_column, "missing required FOCUS column(s): BilledCost"),
        (_text_cost, "row 6, column EffectiveCost: 'n/a dollars' is not a number"),
        (_two_currencies, "row 10, column BillingCurrency: billing account"),
    ],
)
def test_bad_focus_is_refused_with_exit_2_and_nothing_changes(
    cfg, tmp_path, capsys, mutate, message
):
    assert run_cli(cfg, "import", "focus", str(FOCUS)) == 0
    before = _unchanged(cfg)
    bad = _mutate_focus(tmp_path, mutate)
    # a good file beside the bad one is not imported either: all files are checked first
    assert run_cli(cfg, "import", "focus", str(FOCUS), str(bad)) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err
    assert _unchanged(cfg) == before


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2026-13-40T99:00:00Z,h,GPU-1,L4,10,1,2,3", "row 2, column ts: '2026-13-40T99:00:00Z'"),
        (
            "2026-11-27T10:00:00Z,h,GPU-1,L4,-3,1,2,3",
            "row 2, column util_pct: -3.0 is out of range",
        ),
    ],
)
def test_bad_samples_are_refused_with_exit_2_and_nothing_changes(
    cfg, tmp_path, capsys, row, message
):
    assert run_cli(cfg, "init") == 0
    before = _unchanged(cfg)
    bad = tmp_path / "samples.csv"
    bad.write_text(
        "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w\n" + row + "\n"
    )
    assert run_cli(cfg, "import", "samples", str(bad)) == 2
    err = capsys.readouterr().err
    assert f"{bad}: {message}" in err
    assert _unchanged(cfg) == before


def test_a_capture_printed_by_collect_imports_as_samples(cfg, tmp_path, capsys):
    assert (
        run_cli(
            cfg, "--format", "csv", "collect", "--source", "smi", "--from", str(SMI_XML), "--once"
        )
        == 0
    )
    out = capsys.readouterr().out
    exported = tmp_path / "export.csv"
    exported.write_text(out)
    assert run_cli(cfg, "import", "samples", str(exported)) == 0
    rows = stored(cfg, "SELECT host, gpu_uuid, mem_total_mib, source FROM gpu_samples")
    # The agent's own output comes back as written, its source included.
    assert rows == [("gtx-1660-ti", "GPU-304a277d-3545-63b8-3a36-dfde3c992989", 5912.0, "smi")]


def test_collect_from_a_capture_prints_the_import_schema_as_json(cfg, capsys):
    assert (
        run_cli(
            cfg, "collect", "--source", "smi", "--from", str(SMI_XML), "--once", "--format", "json"
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert len(data) == 1
    for key in (
        "ts",
        "host",
        "gpu_uuid",
        "gpu_model",
        "util_pct",
        "mem_used_mib",
        "mem_total_mib",
        "power_w",
    ):
        assert key in data[0]
    assert data[0]["ts"].endswith("+00:00")


def test_collect_nvml_without_a_driver_says_so(cfg, capsys):
    assert run_cli(cfg, "collect", "--source", "nvml", "--once") == 2
    assert "no NVIDIA GPU or driver on this host" in capsys.readouterr().err


def test_import_while_the_daemon_owns_the_warehouse_is_queued_then_ingested(cfg, capsys):
    assert run_cli(cfg, "init") == 0
    lock = WriterLock(cfg.db_path).acquire()
    try:
        assert run_cli(cfg, "import", "focus", str(FOCUS)) == 0
        assert "queued in the spool" in capsys.readouterr().out
        assert len(spool.list_batches(cfg.spool_dir, "billing_items")) == 1
    finally:
        lock.release()
    assert run_cli(cfg, "run", "--once") == 0
    assert stored(cfg, "SELECT count(*) FROM billing_items") == [(1000,)]


def test_a_write_command_while_another_process_owns_the_warehouse_exits_1(cfg, capsys):
    lock = WriterLock(cfg.db_path).acquire()
    try:
        assert run_cli(cfg, "init") == 1
        assert f"pid {os.getpid()}" in capsys.readouterr().err
    finally:
        lock.release()


def test_doctor_reports_what_it_finds(demo_warehouse, capsys):
    assert run_cli(demo_warehouse, "doctor", "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert "no NVIDIA GPU or driver" in report["nvml"]
    assert report["aws_credentials"].startswith("found (method: env)")  # conftest's fake keys
    assert "testing" not in json.dumps(report)  # never the secret itself
    assert report["warehouse"] == str(demo_warehouse.db_path)
    assert isinstance(report["warehouse_size_mib"], float)
    assert report["snapshot_age_s"] < 60
    assert "host dgx-a100" in report and "8 GPU(s)" in report["host dgx-a100"]


def test_usage_errors_exit_2(capsys):
    assert main(["import"]) == 2
    assert main(["nosuch"]) == 2


def test_demo_fills_the_warehouse(small_demo_cfg, capsys, clock):
    assert run_cli(small_demo_cfg, "demo", "--days", "1", "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["gpu_samples"] > 0
    hosts = {h for (h,) in stored(small_demo_cfg, "SELECT DISTINCT host FROM gpu_samples")}
    assert {"dgx-a100", "ws-4090"} <= hosts
    assert small_demo_cfg.snapshot_path.exists()


@pytest.mark.slow
def test_the_daemon_runs_the_demo_live_and_stops_cleanly_on_sigterm(tmp_path):
    conf = tmp_path / "gpuledger.toml"
    conf.write_text(
        f'[warehouse]\npath = "{tmp_path}/data/warehouse.duckdb"\n'
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n'
        "[demo]\nhistory_days = 1\nhistory_interval_s = 60\n"
        "[collect]\nflush_interval_s = 1.0\n[run]\ningest_interval_s = 1\npublish_interval_s = 1\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--config", str(conf), "run"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    db = tmp_path / "data" / "warehouse.duckdb"
    try:
        snap = tmp_path / "data" / "dashboard.duckdb"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not snap.exists():
            time.sleep(0.2)
        assert snap.exists(), "no snapshot published"
        live_spool = tmp_path / "data" / "spool" / "kind=process_samples"
        while time.monotonic() < deadline and not any(live_spool.rglob("*.parquet")):
            time.sleep(0.2)  # only live ticks write process samples: the sampler runs
        assert any(live_spool.rglob("*.parquet")), "no live samples flushed"
        first = snap.stat().st_mtime_ns
        while time.monotonic() < deadline and snap.stat().st_mtime_ns == first:
            time.sleep(0.2)  # live samples arrive: the snapshot is republished
        assert snap.stat().st_mtime_ns != first
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    lock = WriterLock(db).acquire()  # released on exit
    lock.release()
    live = stored_path(db, "SELECT count(*) FROM gpu_samples WHERE ts > now() - INTERVAL 1 MINUTE")
    assert live[0][0] > 0


def stored_path(db: Path, sql: str):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_demo_purge_removes_the_demo_and_keeps_real_data(small_demo_cfg, capsys, clock):
    assert run_cli(small_demo_cfg, "demo", "--days", "1") == 0
    assert run_cli(small_demo_cfg, "import", "focus", str(FOCUS)) == 0
    capsys.readouterr()
    assert run_cli(small_demo_cfg, "demo", "--purge", "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["deleted gpu_samples"] > 0 and report["deleted billing_items"] > 0
    assert stored(small_demo_cfg, "SELECT count(*) FROM gpu_samples") == [(0,)]
    assert stored(small_demo_cfg, "SELECT count(*) FROM gpu_minute") == [(0,)]
    assert stored(small_demo_cfg, "SELECT DISTINCT source FROM billing_items") == [("focus",)]
    assert billing_totals(small_demo_cfg) == focus_totals_from_file(FOCUS)
