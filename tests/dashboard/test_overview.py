"""The Overview page run in-process with Streamlit's AppTest, against real snapshot files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from collectors import demo
from config.settings import Config
from tables import spool
from tests.dashboard.conftest import APP, overview_figures

TIMEOUT_S = 30


def today() -> date:
    """Today at the pinned clock (DuckDB's current_date reads the real one)."""
    return datetime.now(UTC).date()


def run_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def caption_texts(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def chart_data(chart) -> tuple[dict, pl.DataFrame]:
    """A vega_lite_chart node's spec and the data it plots (Streamlit ships the data as named
    Arrow datasets next to the spec)."""
    spec = json.loads(chart.proto.spec)
    name = spec.get("data", {}).get("name")
    blobs = {ds.name: ds.data.data for ds in chart.proto.datasets}
    if name is None and chart.proto.HasField("data"):
        blob = chart.proto.data.data
    else:
        assert name in blobs, f"spec names dataset {name!r}, chart carries {sorted(blobs)}"
        blob = blobs[name]
    table = pa.ipc.open_stream(pa.py_buffer(blob)).read_all()
    return spec, pl.from_arrow(table)


def test_overview_with_demo_snapshot(demo_snapshot: Config, dashboard_for, tmp_path: Path) -> None:
    expected = overview_figures(demo_snapshot.snapshot_path)
    assert expected.gpu_hours > 0 and expected.placements == {"cloud", "local"}
    # The spool's history is back-dated, but point at an empty spool anyway: the table then
    # comes from the snapshot, whose newest samples are what this test knows to expect.
    dashboard_for(demo_snapshot, GPULEDGER_SPOOL=tmp_path / "no-spool")

    at = run_app()

    assert [t.value for t in at.title] == ["Overview"]
    assert any(c.startswith(expected.as_of_caption) for c in caption_texts(at)), caption_texts(at)

    shown = {m.label: m.value for m in at.metric}
    assert {k: shown[k] for k in expected.metrics} == expected.metrics
    assert shown["GPU-hours, last 7 days"] != "0"
    import duckdb

    con = duckdb.connect(str(demo_snapshot.snapshot_path), read_only=True)
    month, cloud = con.execute(
        "SELECT sum(cost_usd), sum(cost_usd) FILTER (WHERE placement = 'cloud')"
        " FROM daily_ledger WHERE day >= date_trunc('month', CAST(? AS DATE))",
        [today()],
    ).fetchall()[0]
    # the stored waste of the days the other figures cover, whether or not alerts were checked
    wasted, wasted_s = con.execute(
        "SELECT sum(wasted_usd), sum(wasted_s) FROM waste_daily WHERE day >= ?",
        [expected.since],
    ).fetchall()[0]
    con.close()
    assert shown["Spend, this month"] == f"${month:,.0f}"
    assert shown["Cloud, this month"] == f"${cloud:,.0f}"
    assert wasted > 0  # the demo notebook idles on its H100
    assert shown["Wasted, last 7 days"] == f"${wasted:,.0f}"
    assert shown["Wasted GPU-hours, last 7 days"] == f"{wasted_s / 3600:,.1f}"

    charts = [c for c in at.get("vega_lite_chart") if "per workload" not in c.proto.spec]
    assert len(charts) == 2  # cloud and local per day; the per-workload chart is tested below
    plotted = {}
    for chart in charts:
        spec, frame = chart_data(chart)
        assert spec["encoding"]["color"]["field"] == "placement"
        assert set(spec["encoding"]["color"]["scale"]["domain"]) == {"cloud", "local"}
        assert set(frame["placement"]) == {"cloud", "local"}, spec.get("title")
        plotted[spec["encoding"]["y"]["field"]] = frame
    assert plotted["gpu_hours"]["gpu_hours"].sum() == pytest.approx(expected.gpu_hours)
    assert plotted["cost_usd"]["cost_usd"].sum() == pytest.approx(
        expected.cloud_usd + expected.local_usd
    )

    assert [s.value for s in at.main.subheader] == ["GPUs by host"]
    assert len(at.dataframe) == 1
    table = at.dataframe[0].value
    rows = list(zip(table["host"], table["gpu"].astype(int), strict=True))
    assert len(rows) == len(set(rows)), "one row per GPU"
    assert set(rows) == expected.gpus
    fleet = {(g.host, g.index) for g in demo.FLEET}
    assert set(rows) <= fleet
    assert len(rows) >= len(fleet) // 2  # most of the demo fleet reports at any time
    assert f"{len(rows)} GPUs on {len({h for h, _ in rows})} hosts, from the last snapshot" in (
        " ".join(caption_texts(at))
    )
    assert not at.info  # neither the warming-up box nor an empty-state box


def test_overview_live_tile_reads_the_spool(
    demo_snapshot: Config, dashboard_for, tmp_path: Path
) -> None:
    """Fresh spool files win over the snapshot in the GPUs-by-host table."""
    live_spool = tmp_path / "spool"
    frame = demo.LiveDemo(42).tick().gpu_samples.with_columns(host=pl.lit("live-test-host"))
    spool.write_batch(live_spool, "gpu_samples", frame, "live-test-host")
    dashboard_for(demo_snapshot, GPULEDGER_SPOOL=live_spool)

    at = run_app()

    table = at.dataframe[0].value
    assert set(table["host"]) == {"live-test-host"}
    assert len(table) == frame.height
    assert any("live from the spool" in c for c in caption_texts(at)), caption_texts(at)


def test_overview_without_snapshot_is_warming_up(cfg: Config, dashboard_for) -> None:
    assert not cfg.snapshot_path.exists()
    dashboard_for(cfg)

    at = run_app()

    assert [t.value for t in at.title] == ["Overview"]
    assert len(at.info) == 1
    assert "Warming up" in at.info[0].value
    assert any(str(cfg.snapshot_path) in c for c in caption_texts(at))
    assert not at.metric and not at.dataframe and not at.get("vega_lite_chart")


def test_overview_with_empty_snapshot(empty_snapshot: Config, dashboard_for) -> None:
    dashboard_for(empty_snapshot)

    at = run_app()

    assert [t.value for t in at.title] == ["Overview"]
    assert any(c.startswith("No GPU samples yet") for c in caption_texts(at)), caption_texts(at)
    assert {m.label: m.value for m in at.metric} == {
        "GPU-hours, last 7 days": "0",
        "Busy, last 7 days": "n/a",
        "Cloud spend, last 7 days": "$0",
        "Local cost, last 7 days": "$0",
        "Spend, this month": "$0",
        "Cloud, this month": "$0",
        "Wasted, last 7 days": "$0",  # checked: nothing was wasted
        "Wasted GPU-hours, last 7 days": "0.0",
    }
    assert not at.get("vega_lite_chart")
    assert not at.dataframe
    infos = [i.value for i in at.info]
    assert any(i.startswith("No cost data for last 7 days (") for i in infos), infos
    assert any(i.startswith("No GPU has reported yet") for i in infos), infos


def test_filters_come_from_the_url_and_narrow_the_figures(
    demo_snapshot: Config, dashboard_for, tmp_path: Path
) -> None:
    import duckdb

    dashboard_for(demo_snapshot, GPULEDGER_SPOOL=tmp_path / "no-spool")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["days"] = "30"
    at.query_params["placement"] = "cloud"
    at.query_params["workload"] = "llm-pretrain"
    at.run()
    assert not at.exception
    con = duckdb.connect(str(demo_snapshot.snapshot_path), read_only=True)
    (cost,) = con.execute(
        "SELECT sum(cost_usd) FROM daily_ledger WHERE placement = 'cloud'"
        " AND workload = 'llm-pretrain' AND day >= CAST(? AS DATE) - 29",  # today, 29 before
        [today()],
    ).fetchall()[0]
    con.close()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Cloud spend, last 30 days"] == f"${cost:,.0f}"
    assert shown["Local cost, last 30 days"] == "$0"
    assert at.sidebar.multiselect(key="f_placement").value == ["cloud"]
    assert at.sidebar.multiselect(key="f_workload").value == ["llm-pretrain"]
    # a stale link (unknown host) falls back to all hosts instead of an empty page
    at.query_params["host"] = "no-such-host"
    at.run()
    assert at.sidebar.multiselect(key="f_host").value == []


def test_cloud_spend_per_workload_per_day_is_charted(
    demo_snapshot: Config, dashboard_for, tmp_path: Path
) -> None:
    import duckdb

    dashboard_for(demo_snapshot, GPULEDGER_SPOOL=tmp_path / "no-spool")
    at = run_app()
    charts = [c for c in at.get("vega_lite_chart") if "per workload per day" in c.proto.spec]
    assert len(charts) == 1
    _, plotted = chart_data(charts[0])
    con = duckdb.connect(str(demo_snapshot.snapshot_path), read_only=True)
    want = dict(
        con.execute(
            "SELECT workload, sum(cost_usd) FROM daily_ledger WHERE placement = 'cloud'"
            " AND day >= CAST(? AS DATE) - 6 GROUP BY 1",  # 7 days with today
            [today()],
        ).fetchall()
    )
    con.close()
    got = dict(plotted.group_by("workload").agg(pl.col("cost_usd").sum()).iter_rows())
    assert set(got) == set(want) >= {"llm-pretrain", "research-notebook", "clinical-nlp"}
    for workload, usd in want.items():
        assert got[workload] == pytest.approx(usd)
