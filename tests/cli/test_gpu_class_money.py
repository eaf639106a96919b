"""Local GPUs reported by their real names are priced at their catalog class (capital +
operations + energy), through the real path: the names the parsers read from the real captures
in tests/fixtures/realdata -> `gpuledger import samples` -> warehouse -> ledger ->
`gpuledger costs`. A model no class answers to is *unpriced*, and every place that shows money
says so, naming the model and the config/catalog.csv line to add (DESIGN.md §2 "GPU class").

Hand-worked figures with the shipped configuration: 3 years x 8,760 h = 26,280 h of
depreciation, $0.10 operations per GPU-hour, energy at $0.15/kWh and PUE 1.4. Every GPU runs
2 hours (120 samples a minute apart: each stands for the minute to the next, the last for the
GPU's usual interval) at a constant power.
"""

from __future__ import annotations

import csv
import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st
import time_machine
from streamlit.testing.v1 import AppTest

from advisor.report import build_report, render_markdown
from cli import app
from cli.daemon import dashboard_env
from cli.main import main
from collectors.gpu import prometheus, smi
from config.settings import Config, load_config
from warehouse import advisor_reads
from warehouse.snapshot import Snapshot

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "tests" / "fixtures" / "realdata"
CAPTURES = REAL / "nvidia-smi-captures-utkuozdemir" / "captures"
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
HOURS = 2.0
DEPRECIATION_H = 3 * 8760.0
KWH = 0.15 * 1.4  # $ per kWh drawn, PUE included


def _first(batch) -> tuple[str, float]:
    row = batch.gpu_samples.row(0, named=True)
    return row["gpu_model"], row["mem_total_mib"]


def real_fleet() -> dict[str, tuple[str, float, float]]:
    """host -> (model name as reported, memory MiB, watts): the names and memory the parsers
    read from the real files (the Vantage readings give the p4de's name only; its memory size
    there is not the GPU's, so the A100's 80 GiB is written here)."""
    readings = json.loads(
        (
            REAL / "aws-ec2-gpu-hw-readings-vantage" / "manually_fetched_data_gpu_subset.json"
        ).read_text()
    )
    h100 = _first(
        smi.parse_capture_file(CAPTURES / "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt")
    )
    l40s = _first(smi.parse_capture_file(CAPTURES / "linux-x86_64__nvidia-l40s__595.80.txt"))
    rtx = _first(
        smi.parse_capture_file(
            CAPTURES / "linux-x86_64__nvidia-geforce-rtx-4080-super__595.71.05.txt"
        )
    )
    t4 = _first(
        prometheus.parse_exposition(
            (REAL / "dcgm-exporter-cncf-ai-conformance" / "ericsson-ccd.prom").read_text(), host="x"
        )
    )
    unknown = _first(smi.parse_capture_file(REAL / "nvidia-smi-xml-datakit" / "gtx-1660-ti.xml"))
    a100 = readings["p4de.24xlarge"]["nvidia_gpus"][0]["name"]
    return {
        "ws-h100": (*h100, 700.0),
        "ws-l40s": (*l40s, 350.0),
        "ws-a100": (a100, 81920.0, 400.0),
        "ws-t4": (*t4, 70.0),
        "ws-4080": (*rtx, 320.0),
        "ws-1660": (*unknown, 100.0),
    }


def per_hour(purchase: float, watts: float) -> float:
    return purchase / DEPRECIATION_H + 0.10 + watts / 1000.0 * KWH


# Hand-worked: (purchase ÷ 26,280 h + $0.10 + kW × 1.4 × $0.15) × 2 h
EXPECTED = {
    # 30,000 / 26,280 = 1.141553 + 0.10 + 0.7 x 0.21 = 0.147 -> 1.388553/h -> $2.777105
    "NVIDIA H100 80GB HBM3": per_hour(30_000, 700) * HOURS,
    # 8,000 / 26,280 = 0.304414 + 0.10 + 0.35 x 0.21 = 0.0735 -> 0.477914/h -> $0.955829
    "NVIDIA L40S": per_hour(8_000, 350) * HOURS,
    # 12,000 / 26,280 = 0.456621 + 0.10 + 0.4 x 0.21 = 0.084 -> 0.640621/h -> $1.281242
    "NVIDIA A100-SXM4-80GB": per_hour(12_000, 400) * HOURS,
    # 2,000 / 26,280 = 0.076104 + 0.10 + 0.07 x 0.21 = 0.0147 -> 0.1908035/h -> $0.381607
    "Tesla T4": per_hour(2_000, 70) * HOURS,
    # 999 / 26,280 = 0.038014 + 0.10 + 0.32 x 0.21 = 0.0672 -> 0.205214/h -> $0.410428
    "NVIDIA GeForce RTX 4080 SUPER": per_hour(999, 320) * HOURS,
    # unpriced: no capital, 0.10 + 0.1 x 0.21 = 0.021 -> 0.121/h -> $0.242
    "Graphics Device": per_hour(0, 100) * HOURS,
}


def test_the_hand_worked_rates():
    assert EXPECTED["NVIDIA H100 80GB HBM3"] == pytest.approx(2.777105, abs=1e-6)
    assert EXPECTED["NVIDIA L40S"] == pytest.approx(0.955829, abs=1e-6)
    assert EXPECTED["NVIDIA A100-SXM4-80GB"] == pytest.approx(1.281242, abs=1e-6)
    assert EXPECTED["Tesla T4"] == pytest.approx(0.381607, abs=1e-6)
    assert EXPECTED["NVIDIA GeForce RTX 4080 SUPER"] == pytest.approx(0.410428, abs=1e-6)
    assert EXPECTED["Graphics Device"] == pytest.approx(0.242, abs=1e-9)


def write_samples(path: Path, fleet: dict[str, tuple[str, float, float]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ts", "host", "gpu_uuid", "gpu_model", "util_pct", "mem_used_mib",
                    "mem_total_mib", "power_w", "workload"])  # fmt: skip
        for host, (model, mem, watts) in fleet.items():
            for i in range(120):
                ts = START + timedelta(minutes=i)
                w.writerow([ts.isoformat(), host, f"GPU-{host}", model, 60.0, 1024.0, mem, watts,
                            "bench"])  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Config:
    """The real fleet's two hours imported with `gpuledger import samples` at a pinned instant."""
    base = tmp_path_factory.mktemp("gpu-classes")
    cfg = load_config(ROOT / "config" / "gpuledger.toml", db=base / "data" / "warehouse.duckdb")
    samples = base / "samples.csv"
    write_samples(samples, real_fleet())
    with time_machine.travel(NOW, tick=False):
        assert cli(cfg, "import", "samples", str(samples))[0] == 0
    return cfg


def cli(cfg: Config, *args: str, capsys=None) -> tuple[int, str, str]:
    if capsys is not None:
        capsys.readouterr()
    code = main(["--config", str(cfg.source), "--db", str(cfg.db_path), *args])
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return code, out, err


@pytest.fixture
def pinned():
    with time_machine.travel(NOW, tick=False):
        yield


def test_each_real_gpu_costs_its_class_capital_operations_and_energy(warehouse, capsys, pinned):
    code, out, err = cli(
        warehouse, "costs", "--since", "2026-11-24", "--until", "2026-11-25", "--by",
        "gpu_model", "--format", "json", capsys=capsys,
    )  # fmt: skip
    assert code == 0
    rows = {r["gpu_model"]: r for r in json.loads(out)}
    assert {m: r["gpu_hours"] for m, r in rows.items()} == pytest.approx(
        {m: HOURS for m in EXPECTED}
    )
    assert {m: r["cost_usd"] for m, r in rows.items()} == pytest.approx(EXPECTED, abs=1e-6)
    assert {m: r["unpriced_gpu_hours"] for m, r in rows.items()} == {
        m: (HOURS if m == "Graphics Device" else 0.0) for m in EXPECTED
    }
    # the unknown model is named on stderr with the catalog line to add; stdout stays JSON
    assert "gpuledger costs: warning: 2.0 local GPU-hours of Graphics Device on ws-1660" in err
    assert "config/catalog.csv" in err and "gpu,GRAPHICS DEVICE,,,GRAPHICS DEVICE,1," in err
    assert err.count("warning:") == 1


def test_the_ledger_rows_say_which_hours_are_unpriced(warehouse):
    snap = Snapshot(warehouse.snapshot_path)
    try:
        unpriced = advisor_reads.unpriced_models(advisor_reads.ledger(snap))
    finally:
        snap.close()
    assert unpriced.select("gpu_model", "hosts", "unpriced_gpu_hours").rows() == [
        ("Graphics Device", "ws-1660", HOURS)
    ]
    assert unpriced["first_day"][0] == unpriced["last_day"][0] == date(2026, 11, 24)


def test_recommend_warns_on_stderr_too(warehouse, capsys, pinned):
    code, out, err = cli(warehouse, "recommend", "--format", "json", capsys=capsys)
    assert code == 0 and isinstance(json.loads(out), list)
    assert "gpuledger recommend: warning: 2.0 local GPU-hours of Graphics Device" in err


def test_doctor_names_the_unpriced_model_and_the_catalog_line(warehouse, capsys, pinned):
    code, out, _ = cli(warehouse, "doctor", "--format", "json", capsys=capsys)
    assert code == 0
    found = json.loads(out)["unpriced_gpus"]
    assert len(found) == 1 and "Graphics Device" in found[0] and "gpu,GRAPHICS DEVICE," in found[0]


def test_the_weekly_report_has_an_unpriced_section(warehouse, pinned):
    snap = Snapshot(warehouse.snapshot_path)
    try:
        rep = build_report(snap, warehouse, app.catalog_for(warehouse), "2026-W48", now=NOW)
    finally:
        snap.close()
    assert len(rep.unpriced) == 1 and "Graphics Device" in rep.unpriced[0]
    md = render_markdown(rep, {})
    section = md.split("## Unpriced GPUs", 1)[1].split("##", 1)[0]
    assert "2.0 local GPU-hours of Graphics Device on ws-1660" in section
    assert "gpu,GRAPHICS DEVICE," in section


def test_data_health_warns_about_the_unpriced_model(warehouse, monkeypatch, pinned):
    for k, v in dashboard_env(warehouse).items():
        if k.startswith("GPULEDGER_"):
            monkeypatch.setenv(k, v)
    st.cache_resource.clear()
    st.cache_data.clear()
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(os.path.join(ROOT, "dashboard/pages/data_health.py"), default_timeout=30)
    at.run()
    assert not at.exception
    assert "Unpriced GPUs" in [h.value for h in at.subheader]
    shown = [re.sub(r"\\(.)", r"\1", w.value) for w in at.warning]  # Markdown-escaped text
    warnings = [w for w in shown if "Graphics Device" in w]
    assert len(warnings) == 1 and "config/catalog.csv" in warnings[0]
    assert "gpu,GRAPHICS DEVICE,,,GRAPHICS DEVICE,1," in warnings[0]


@pytest.mark.parametrize(
    ("current", "monthly", "option"),
    [
        # p5en.48xlarge, the whole instance for one GPU: 63.296 x 730 = $46,206.08; buying is one
        # of the alternatives, at 35,000 + 30 % ([advisor] buy_overhead_pct) = $45,500
        ("cloud", 63.296 * 730, "buy 1 × H200 ($45,500)"),
        # owned: 35,000 / 26,280 x 730 = 972.22 + 73 operations + 0.3 kW x 730 h x 0.21 = 45.99;
        # the cloud is among the alternatives, one GPU at a time (an 8-GPU p5en for one GPU is
        # an absurd size and never listed, issue 13)
        (
            "local",
            35000 / DEPRECIATION_H * 730 + 73.0 + 0.3 * 730 * KWH,
            "1 × p5.4xlarge (1 × H100), on-demand",
        ),
    ],
)
def test_whatif_h200_works_from_the_cloud_and_from_local(
    warehouse, capsys, pinned, current, monthly, option
):
    code, out, err = cli(
        warehouse, "whatif", "--gpu", "H200", "--current", current, "--busy", "0.5",
        "--memory-gib", "100", "--format", "json", capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["current_monthly_cost_usd"] == pytest.approx(monthly, abs=0.01)
    options = {a["option"] for a in result["alternatives"]}
    assert option in options
    assert not [o for o in options if "(8 ×" in o], options  # no 8-GPU instance for one GPU


def test_doctor_says_how_each_configured_host_is_priced(tmp_path):
    """[[local.hosts]]: a real name resolves to its class and takes its catalog price; a host's
    own purchase_usd wins; a model no class knows, without purchase_usd, is unpriced with the
    catalog line to add."""
    from cli.doctor import local_host_classes

    conf = tmp_path / "gpuledger.toml"
    conf.write_text(
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n'
        '[[local.hosts]]\nname = "dgx"\ngpu_model = "NVIDIA A100-SXM4-80GB"\ngpu_count = 8\n'
        '[[local.hosts]]\nname = "ws"\ngpu_model = "RTX 4090"\npurchase_usd = 3000.0\n'
        "gpu_count = 2\n"
        '[[local.hosts]]\nname = "old"\ngpu_model = "Graphics Device"\n'
    )
    cfg = load_config(conf)
    lines = local_host_classes(cfg, app.catalog_for(cfg))
    assert lines["local host dgx"] == (
        "NVIDIA A100-SXM4-80GB -> class A100-80GB; catalog purchase price 12,000 per GPU"
    )
    assert lines["local host ws"] == "RTX 4090 -> class RTX 4090; purchase_usd 3,000 for 2 GPU(s)"
    assert lines["local host old"].startswith("Graphics Device -> class none; unpriced: ")
    assert "gpu,GRAPHICS DEVICE," in lines["local host old"]
