"""Every designed workload of the demo fleet gets the action docs/demo-fleet.md intends, derived
from its measured data, its bill and the catalog (nothing here looks at names but the expected
table), with the figures the document states."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from advisor.jobs import load_and_compute
from cli import app
from config.settings import Config, load_config
from tests.conftest import DEMO_INTENDED_ACTIONS, ROOT

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday: 7 whole days before it
INTENDED = DEMO_INTENDED_ACTIONS


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo-fleet")
    cfg: Config = load_config(ROOT / "config" / "gpuledger.toml", db=base / "warehouse.duckdb")
    cfg = replace(cfg, demo=replace(cfg.demo, history_days=8, history_interval_s=120))
    catalog = app.catalog_for(cfg)
    wh = app.open_warehouse(cfg)
    try:
        app.seed_demo(wh, cfg, catalog, progress=False, now=NOW)
        results = load_and_compute(wh, cfg, catalog, days=35, now=NOW)
    finally:
        wh.close()
    return {r["workload"]: r for r in results.recommendations.iter_rows(named=True)}


@pytest.mark.slow
def test_every_designed_workload_gets_its_intended_action(demo_results):
    assert {w: r["action"] for w, r in demo_results.items()} == INTENDED


@pytest.mark.slow
def test_the_demo_figures_docs_demo_fleet_md_states(demo_results):
    llm = demo_results["llm-pretrain"]
    assert llm["days_observed"] == 7
    assert llm["current_monthly_cost_usd"] == pytest.approx(21.96 * 730)  # $16,030.80
    # 8 x $12,000 + 30 % for the server, network and rack around them = $124,800
    assert llm["alternative"] == "buy 8 × A100-80GB ($124,800)"
    # $3,466.67 capital + $584 operations + ~$475 energy at its measured ~388 W
    assert llm["alternative_monthly_cost_usd"] == pytest.approx(4526, abs=10)
    assert llm["monthly_savings_usd"] == pytest.approx(11505, abs=10)
    assert llm["break_even_months"] == pytest.approx(8.3, abs=0.05)
    assert llm["assumption"] == "multi_gpu_job" and llm["gpus_after"] == 8

    clinical = demo_results["clinical-nlp"]
    assert clinical["sensitive"] and clinical["alternative"] == "buy 1 × RTX 4090 ($2,079)"
    assert clinical["current_monthly_cost_usd"] == pytest.approx(1.006 * 730)  # $734.38

    notebook = demo_results["research-notebook"]
    assert notebook["alternative"] == "1 × g6e.xlarge (1 × L40S), on-demand"
    # the L40S: (6.88 - 1.861) x 730 = $3,663.87; stopped outside its 15 active hours a week
    # (Mon-Fri 10-11, 14-16 UTC: 15 x 730 / 168 = 65.18 h a month): 1.861 x (730 - 65.18) =
    # $1,237.23 more
    hours = 15 * 730 / 168
    assert notebook["schedule"] == "Mon–Fri 10:00–11:00, 14:00–16:00 UTC"
    assert notebook["schedule_hours_per_month"] == pytest.approx(hours)
    assert notebook["schedule_savings_usd"] == pytest.approx(1.861 * (730 - hours))
    assert notebook["monthly_savings_usd"] == pytest.approx(
        (6.88 - 1.861) * 730 + 1.861 * (730 - hours)
    )  # $4,901.10
    assert notebook["duty_cycle"] == pytest.approx(15 / 168)  # active in 9 % of hours

    chat = demo_results["chat-inference"]
    assert chat["alternative"] == "1 × g6.xlarge (1 × L4), on-demand"  # $587.50 a month
    # its own cash: ~$15 of energy - $587.50; the A100 it frees, at p4de's $3.43/h: $2,504.81
    assert chat["monthly_savings_usd"] == pytest.approx(15 - 587.50, abs=2)
    assert chat["freed_capacity_usd"] == pytest.approx(27.45 / 8 * 730)
    assert chat["monthly_savings_usd"] + chat["freed_capacity_usd"] == pytest.approx(1932, abs=5)
    assert "raises its own spend" in " ".join(chat["reasons"])

    for keep in ("weekly-sweep", "batch-queue", "vision-dev"):
        assert demo_results[keep]["alternative"] is None
    assert "It is saturated" in " ".join(demo_results["batch-queue"]["reasons"])
