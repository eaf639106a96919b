"""The Workloads, Recommendations and What-if pages run in-process with Streamlit's AppTest
against a real demo snapshot; expected figures are read straight from the snapshot with DuckDB."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from config.settings import Config
from dashboard.format import ACTION_WORDS
from dashboard.pages import PAGES as PAGE_LIST
from tests.conftest import DEMO_INTENDED_ACTIONS
from tests.dashboard.conftest import APP, ROOT, demo_config, seed_demo_snapshot

PAGES = ROOT / "dashboard" / "pages"
INTENDED = DEMO_INTENDED_ACTIONS


@pytest.fixture(scope="module")
def advisor_snapshot(tmp_path_factory, pinned_instant) -> Config:
    """Eight demo days (5-minute samples) ending now (the pinned clock), published: whole days
    to recommend on."""
    cfg = demo_config(tmp_path_factory.mktemp("advisor-pages"))
    cfg = replace(cfg, demo=replace(cfg.demo, history_days=8, history_interval_s=300))
    return seed_demo_snapshot(cfg, pinned_instant)


def run(page: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def query(cfg: Config, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(cfg.snapshot_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_workloads_page_shows_the_ledger_with_filters(advisor_snapshot, dashboard_for):
    dashboard_for(advisor_snapshot)
    since = datetime.now(UTC).date() - timedelta(days=6)  # the default: today and the 6 before
    cloud, local, hours = query(
        advisor_snapshot,
        "SELECT sum(cost_usd) FILTER (WHERE placement = 'cloud'),"
        " sum(cost_usd) FILTER (WHERE placement = 'local'), sum(gpu_hours)"
        " FROM daily_ledger WHERE day >= ?",
        [since],
    )[0]
    ((wasted,),) = query(
        advisor_snapshot, "SELECT sum(wasted_usd) FROM waste_daily WHERE day >= ?", [since]
    )
    at = run("workloads.py")
    assert [t.value for t in at.title] == ["Workloads"]
    shown = {m.label: m.value for m in at.metric}
    assert shown["Cloud spend, last 7 days"] == f"${cloud:,.2f}"
    assert shown["Local cost, last 7 days"] == f"${local:,.2f}"
    assert shown["GPU-hours, last 7 days"] == f"{hours:,.1f}"
    assert shown["Wasted, last 7 days"] == f"${wasted:,.2f}"  # the stored waste of those days
    table = at.dataframe[0].value
    assert "__idle__" in set(table["workload"])
    assert table["cost USD"].sum() == pytest.approx(cloud + local, abs=0.05)
    assert table["wasted USD"].sum() == pytest.approx(wasted, abs=0.05)
    # the notebook holds its H100 (no idle, unheld time) but leaves it idle: that is waste
    notebook = table[table["workload"] == "research-notebook"].iloc[0]
    assert notebook["idle USD"] == 0 and notebook["wasted USD"] > 0
    assert set(table["billed USD"][table["placement"] == "local"]) == {"—"}  # never None
    assert len(at.get("vega_lite_chart")) == 2

    at.multiselect(key="f_placement").set_value(["local"]).run()  # the sidebar's filter
    shown = {m.label: m.value for m in at.metric}
    assert shown["Cloud spend, last 7 days"] == "$0.00"
    assert shown["Local cost, last 7 days"] == f"${local:,.2f}"
    assert set(at.dataframe[0].value["placement"]) == {"local"}
    assert at.query_params["placement"] in ("local", ["local"])  # shareable by its address

    at.selectbox(key="f_range").set_value("30").run()
    assert {m.label: m.value for m in at.metric}["GPU-hours, last 30 days"] != shown[
        "GPU-hours, last 7 days"
    ]
    group = next(s for s in at.selectbox if s.label == "Group by")
    group.set_value("host").run()
    assert "dgx-a100" in set(at.dataframe[0].value["host"])


@pytest.mark.slow
def test_recommendations_page_shows_actions_savings_arithmetic_and_a_csv(
    advisor_snapshot, dashboard_for
):
    dashboard_for(advisor_snapshot)
    rows = query(
        advisor_snapshot, "SELECT workload, action, monthly_savings_usd FROM recommendations"
    )
    assert {w: a for w, a, _ in rows} == INTENDED
    savings = sum(s for _, a, s in rows if a != "keep")
    at = run("recommendations.py")
    assert [t.value for t in at.title] == ["Recommendations"]
    shown = {m.label: m.value for m in at.metric}
    assert shown["Savings, a month"] == f"${savings:,.2f}"
    assert shown["Workloads to act on"] == "4 of 7"
    table = at.dataframe[0].value
    # actions in words: "Buy local GPUs", never buy_local
    in_words = {w: ACTION_WORDS[a] for w, a in INTENDED.items()}
    assert dict(zip(table["workload"], table["action"], strict=True)) == in_words
    assert "None" not in {str(v) for v in table.to_numpy().ravel()}
    expanders = at.expander
    assert len(expanders) == 7
    llm = next(e for e in expanders if e.label.startswith("llm-pretrain"))
    assert llm.label.startswith("llm-pretrain: Buy local GPUs, saves $")
    options = [df.value for df in at.dataframe[1:]]
    cells = {str(v) for o in options for v in o.to_numpy().ravel()}
    assert "None" not in cells and "nan" not in cells
    money = [v for o in options for v in o["USD/month"]]
    assert all(v == "—" or v.startswith(("$", "−$")) for v in money)  # dollars, separated
    assert any("," in v for v in money)
    text = " ".join(m.value for m in llm.markdown)
    assert "pays for itself" in text and r"\$124,800" in text
    # chat-inference frees its A100 for the saturated queue: capacity, apart from its own cash
    assert shown["Frees for others"] == f"${27.45 / 8 * 730:,.2f}"  # $2,504.81
    assert {"GPUs", "confidence level", "schedule"} <= set(table.columns)
    schedules = dict(zip(table["workload"], table["schedule"], strict=True))
    assert schedules["research-notebook"] == "Mon–Fri 10:00–11:00, 14:00–16:00 UTC"
    (button,) = at.get("download_button")
    assert button.proto.label == "Download CSV"


@pytest.mark.slow
def test_whatif_page_prices_a_described_workload(advisor_snapshot, dashboard_for):
    dashboard_for(advisor_snapshot)
    at = run("whatif.py")
    assert [t.value for t in at.title] == ["What-if"]
    shown = {m.label: m.value for m in at.metric}
    # the defaults: 1 x H100, 20 h a day, 70 % busy, 60 GiB, today in the cloud (p5.4xlarge)
    assert shown["Today, a month"] == f"${6.88 * 20 * 730 / 24:,.2f}"
    assert shown["Action"] == "Buy local GPUs"
    options = at.dataframe[0].value
    assert {"cloud", "buy", "spare"} <= set(options["kind"])
    assert "None" not in {str(v) for v in options.to_numpy().ravel()}
    assert all(v == "—" or v.startswith(("$", "−$")) for v in options["USD/month"])
    assert any("," in v for v in options["USD/month"])  # dollars with separators

    at.checkbox[0].check()
    at.button[0].click().run()  # the form's Compare
    assert {m.label: m.value for m in at.metric}["Action"] == "Move to local GPUs"
    assert "cloud" not in set(at.dataframe[0].value["kind"])


@pytest.mark.parametrize("page", ["workloads.py", "recommendations.py"])
def test_pages_without_a_snapshot_say_so(cfg, dashboard_for, page):
    dashboard_for(cfg)
    at = run(page)
    assert "No snapshot yet" in at.info[0].value
    assert not at.metric


def test_the_pages_are_routed_with_overview_first_and_default():
    """streamlit_app.py routes the registry (dashboard/pages/__init__.py PAGES)."""
    pages = [p.path for p in PAGE_LIST]
    assert pages[0] == "dashboard/pages/overview.py"
    assert [p.file for p in PAGE_LIST if p.default] == ["overview.py"]
    for page in ("workloads.py", "recommendations.py", "whatif.py"):
        assert f"dashboard/pages/{page}" in pages
        assert (ROOT / "dashboard" / "pages" / page).exists()
    source = APP.read_text()
    assert "from dashboard.pages import PAGES" in source and 'st.Page("' not in source


def test_workloads_drill_down_from_the_url(advisor_snapshot, dashboard_for) -> None:
    """?focus=<workload> opens the drill-down: its GPUs, busy fraction over time, cost by day."""
    import duckdb
    from streamlit.testing.v1 import AppTest

    dashboard_for(advisor_snapshot)
    at = AppTest.from_file(str(PAGES / "workloads.py"), default_timeout=30)
    at.query_params["days"] = "30"
    at.query_params["focus"] = "llm-pretrain"
    at.run()
    assert not at.exception
    assert at.selectbox(key="focus").value == "llm-pretrain"
    con = duckdb.connect(str(advisor_snapshot.snapshot_path), read_only=True)
    (gpus,) = con.execute(
        "SELECT count(DISTINCT gpu_uuid) FROM usage_hourly WHERE workload = 'llm-pretrain'"
    ).fetchall()[0]
    con.close()
    drill = at.dataframe[-1].value
    assert len(drill) == gpus == 8
    titles = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any("llm-pretrain: busy fraction per hour" in t for t in titles)
    assert any("llm-pretrain: cost per day" in t for t in titles)
