"""The advisor's SQL (warehouse/results.py) and snapshot reads (warehouse/advisor_reads.py) on
real DuckDB files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest

from tables.records import conform
from warehouse import advisor_reads
from warehouse.results import process_shares, store_advisor_results
from warehouse.snapshot import Snapshot
from warehouse.store import Warehouse

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def wh(tmp_path):
    w = Warehouse(tmp_path / "warehouse.duckdb", tmp_path / "spool").open()
    yield w
    w.close()


def procs(rows):
    """rows: (seconds after T0, gpu, pid, workload, sm_pct, used_mib)."""
    return conform(
        pl.DataFrame(
            [
                (T0 + timedelta(seconds=s), "h1", gpu, pid, w, sm, mem, "test")
                for s, gpu, pid, w, sm, mem in rows
            ],
            schema={
                "ts": pl.Datetime("us", "UTC"),
                "host": pl.String,
                "gpu_uuid": pl.String,
                "pid": pl.Int64,
                "workload": pl.String,
                "sm_pct": pl.Float64,
                "used_mib": pl.Float64,
                "source": pl.String,
            },
            orient="row",
        ),
        "process_samples",
    )


def test_process_shares_returns_only_minutes_several_workloads_shared(wh):
    rows = [
        # GPU-A, minute 0: train and eval side by side, 2 samples each
        (0, "GPU-A", 1, "train", 60.0, 30000.0),
        (30, "GPU-A", 1, "train", 50.0, 30000.0),
        (0, "GPU-A", 2, "eval", 10.0, 8000.0),
        (30, "GPU-A", 2, "eval", None, 8000.0),
        # GPU-A, minute 1: train alone (not shared that minute)
        (60, "GPU-A", 1, "train", 90.0, 30000.0),
        # GPU-B: always one workload, two processes of it
        (0, "GPU-B", 3, "solo", 40.0, 1000.0),
        (0, "GPU-B", 4, "solo", 40.0, 1000.0),
    ]
    wh.db.register("p", procs(rows))
    wh.db.execute("INSERT INTO process_samples SELECT * FROM p")
    wh.db.unregister("p")
    out = process_shares(wh, T0, T0 + timedelta(hours=1)).sort("workload")
    assert out["minute"].to_list() == [T0, T0]
    assert out.select("workload", "sm_pct_sum", "sm_samples", "used_mib_sum", "samples").rows() == [
        ("eval", 10.0, 1, 16000.0, 2),
        ("train", 110.0, 2, 60000.0, 2),
    ]
    assert process_shares(wh, T0 + timedelta(hours=1), T0 + timedelta(hours=2)).height == 0


def test_storing_the_results_is_all_or_nothing(wh):
    usage = pl.DataFrame(
        {"hour": [T0], "host": ["h1"], "workload": ["a"], "seconds": [3600.0]},
        schema={
            "hour": pl.Datetime("us", "UTC"),
            "host": pl.String,
            "workload": pl.String,
            "seconds": pl.Float64,
        },
    )
    store_advisor_results(wh, {"results_usage_hourly": usage})
    assert wh.db.execute("SELECT count(*) FROM results_usage_hourly").fetchall() == [(1,)]
    bad = pl.DataFrame({"no_such_column": [1]})
    with pytest.raises(duckdb.Error):
        store_advisor_results(
            wh, {"results_usage_hourly": usage.clear(), "results_recommendations": bad}
        )
    # the failed store changed nothing: the usage row is still there
    assert wh.db.execute("SELECT count(*) FROM results_usage_hourly").fetchall() == [(1,)]
    with pytest.raises(ValueError, match="not an advisor result table"):
        store_advisor_results(wh, {"gpu_samples": usage})


def test_reads_of_a_snapshot_from_before_the_advisor(tmp_path):
    path = tmp_path / "dashboard.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR, value VARCHAR)")
    con.execute("CREATE TABLE daily_ledger (day DATE, cost_usd DOUBLE)")
    con.close()
    snap = Snapshot(path)
    try:
        assert not advisor_reads.has_advisor_tables(snap)
    finally:
        snap.close()
