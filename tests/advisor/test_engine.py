"""The ledger job cut into day-and-host partitions (advisor/partitions.py) gives the rows the
whole-chunk job gives, run by the local engine (advisor/engine.py); the Ray engine's parity and
worker-kill tests are in test_engine_ray.py (slow). The fleet and its hand-worked money are in
tests/advisor/engine_fleet.py."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from advisor.engine import EngineError, LocalEngine, describe, make_engine
from advisor.jobs import refresh_ledger
from advisor.partitions import process_minutes, rollup_partition, scan_bounds, split_chunk
from cli import app
from config.settings import ConfigError, EngineConfig, load_config
from tests.advisor.engine_fleet import (
    CLOUD,
    DAY1,
    DAY2,
    NOW,
    UNSEEN,
    fleet_config,
    gpu_samples,
    load_samples,
    process_samples,
    restate,
)
from warehouse import results
from warehouse.store import Warehouse

END = DAY2 + timedelta(days=1)


def stored(wh: Warehouse) -> dict[str, pl.DataFrame]:
    """What the ledger job stored: hourly attribution, ledger rows, the hosts' placements."""
    since = datetime(DAY1.year, DAY1.month, DAY1.day, tzinfo=UTC)
    return {
        "usage": results.usage_between(wh, since, since + timedelta(days=2)).sort(
            "hour", "host", "gpu_uuid", "workload"
        ),
        "ledger": results.ledger_between(wh, DAY1, END),
        "hosts": results.ledger_hosts(wh).sort("host"),
    }


def assert_same(a: dict[str, pl.DataFrame], b: dict[str, pl.DataFrame]) -> None:
    for name in a:
        assert a[name].height > 0, name
        assert_frame_equal(a[name], b[name], check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


def run_both(tmp_path, engine) -> tuple[list[dict], list[dict]]:
    """The fleet in two warehouses: the whole-chunk job in one, `engine`'s partitions in the
    other; what each stored after the first run and after the bill period restated (both days
    re-costed from their stored attribution)."""
    out: tuple[list[dict], list[dict]] = ([], [])
    for side, kw in ((0, {}), (1, {"engine": engine})):
        cfg = fleet_config(tmp_path / str(side))
        catalog = app.catalog_for(cfg)
        with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
            load_samples(wh, cfg)
            first = refresh_ledger(wh, cfg, catalog, now=NOW, **kw)
            assert first.usage_days == [DAY1, DAY2]
            out[side].append(stored(wh))
            restate(wh, cfg)
            again = refresh_ledger(wh, cfg, catalog, now=NOW, **kw)
            assert again.usage_days == [] and again.cost_days == [DAY1, DAY2]
            out[side].append(stored(wh))
    return out


def test_the_partitions_store_the_whole_chunk_jobs_rows(tmp_path):
    whole, parts = run_both(tmp_path, LocalEngine())
    for a, b in zip(whole, parts, strict=True):
        assert_same(a, b)
    ledger = parts[1]["ledger"]

    def row(day, workload):
        return ledger.filter(day=day, workload=workload).row(0, named=True)

    # lab1's GPU 0, DAY1 23:00-24:00: train alone for 30 min, then 60 % : 20 % SM with notebook,
    # so train 0.5 + 0.5 x 0.75 = 0.875 GPU-h at $1.00 + $0.50 + 0.1 kWh x 1.5 x $0.20 = $1.53/h.
    assert row(DAY1, "train")["gpu_hours"] == pytest.approx(0.875)
    assert row(DAY1, "train")["cost_usd"] == pytest.approx(0.875 * 1.53)
    assert row(DAY1, "notebook")["gpu_hours"] == pytest.approx(0.125)
    # DAY2 00:30-01:00 with no process: local idle.
    assert row(DAY2, "__idle__")["gpu_hours"] == pytest.approx(0.5)
    # The restated $30 for the instance's 2 GPU-hours of chat on DAY1; the unseen instance's $5
    # and DAY2's $2 line with no resource land as billed.
    assert row(DAY1, "chat")["cost_usd"] == pytest.approx(30.0)
    assert row(DAY1, "chat")["gpu_hours"] == pytest.approx(2.0)
    assert row(DAY1, "batch")["host"] == UNSEEN and row(DAY1, "batch")["cost_usd"] == 5.0
    assert row(DAY2, "support")["host"] is None and row(DAY2, "support")["cost_usd"] == 2.0
    assert row(DAY2, "inference")["host"] == CLOUD and row(DAY2, "inference")["cost_usd"] == 24.0
    assert parts[0]["hosts"]["host"].to_list() == ["i-0123456789abcdef0", "lab1"]


def test_a_chunk_is_cut_into_every_day_and_host_with_data_or_a_bill(tmp_path):
    cfg = fleet_config(tmp_path)
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        load_samples(wh, cfg)
        days = [DAY1, DAY2]
        work = split_chunk(
            results.minutes_on_days(wh, days),
            results.process_shares_on_days(wh, days),
            None,
            results.billing_on_days(wh, days),
        )
    keys = [(w.day, w.host) for w in work]
    # lab1 on both days (GPU 0 across midnight), the instance on DAY1 (telemetry and bill) and
    # DAY2 (bill only), the unseen instance's bill on DAY1, DAY2's line with no resource.
    assert keys == [(DAY1, CLOUD), (DAY1, UNSEEN), (DAY1, "lab1"), (DAY2, None), (DAY2, CLOUD)] + [
        (DAY2, "lab1")
    ]
    by_key = {(w.day, w.host): w for w in work}
    assert by_key[(DAY1, UNSEEN)].minutes is None and by_key[(DAY1, UNSEEN)].bills.height == 1
    # The shared minutes 23:30-24:00 on DAY1: 30 minutes x 2 workloads of process shares.
    lab1 = by_key[(DAY1, "lab1")]
    assert lab1.process is not None and lab1.process.height == 60
    assert lab1.minutes is not None and lab1.minutes["minute"].dt.date().unique().to_list() == [
        DAY1
    ]


@pytest.mark.parametrize("day", [DAY1, DAY2])
def test_a_days_rollups_from_its_raw_samples_are_the_ingests(tmp_path, day):
    cfg = fleet_config(tmp_path)
    raw = gpu_samples()
    lo, hi = scan_bounds(day)
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        load_samples(wh, cfg)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        ingested = wh.gpu_minutes(start, start + timedelta(days=1))
    for host in ("lab1", CLOUD):
        scan = raw.filter(pl.col("host") == host, pl.col("ts") >= lo, pl.col("ts") < hi)
        mine = rollup_partition(scan, day)
        theirs = ingested.filter(host=host).select(mine.columns)
        assert_frame_equal(mine, theirs.sort(mine.columns[:4]), check_exact=False, rel_tol=1e-12)
    if day == DAY1:
        # 23:59's six samples each stand for 10 s: the last learns its successor (00:00:00 on
        # DAY2) from the scan's 10 minutes past the day.
        last = rollup_partition(raw.filter(pl.col("ts") >= lo, pl.col("ts") < hi), day)
        assert last.filter(pl.col("minute").dt.hour() == 23)["seconds"].to_list()[-1] == 60.0


def test_an_empty_days_rollups_are_empty():
    raw = gpu_samples().head(0)
    assert rollup_partition(raw, DAY1).height == 0


def test_engine_mode_names_the_key_and_local_is_the_default(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[engine]\nmode = "spark"\n')
    with pytest.raises(ConfigError, match=r"\[engine\] mode must be one of local, ray"):
        load_config(f)
    assert isinstance(make_engine(EngineConfig()), LocalEngine)
    assert fleet_config(tmp_path).engine.mode == "local"
    assert replace(EngineConfig(), mode="ray").max_retries == 3


def test_process_minutes_are_the_warehouses_process_shares(tmp_path):
    """advisor/partitions.py `process_minutes` (Polars, one partition's process samples) gives
    the rows warehouse/results.py PROCESS_SHARES_SQL reads from DuckDB: on GPU-lab1-0 from 23:30
    to 00:30 each minute holds 6 samples of train (SM 60 %, 30,000 MiB) and of notebook (20 %,
    10,000 MiB), so train's minute is sm_pct_sum 360, sm_samples 6, used_mib_sum 180,000."""
    cfg = fleet_config(tmp_path)
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        load_samples(wh, cfg)
        theirs = results.process_shares_on_days(wh, [DAY1, DAY2])
    key = ["minute", "host", "gpu_uuid", "workload"]
    mine = process_minutes(process_samples())
    assert_frame_equal(mine.sort(key), theirs.sort(key).select(mine.columns), check_dtypes=False)
    train = mine.filter(workload="train").row(0, named=True)
    assert (train["sm_pct_sum"], train["sm_samples"], train["used_mib_sum"]) == (360, 6, 180_000)
    assert mine.height == 120  # 60 shared minutes x 2 workloads
    # A GPU-minute with one workload is not shared: left out. A process without SM samples: a
    # null sum, as DuckDB's.
    alone = process_samples().filter(workload="train").with_columns(sm_pct=None)
    assert process_minutes(alone).height == 0
    both = process_minutes(process_samples().with_columns(sm_pct=pl.lit(None, pl.Float64)))
    assert both["sm_pct_sum"].null_count() == both.height and both["sm_samples"].sum() == 0


def test_ray_mode_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    cfg = replace(fleet_config(tmp_path), engine=EngineConfig(mode="ray"))
    with pytest.raises(EngineError, match=r"\[engine\] mode = \"ray\" needs Ray: pip install"):
        make_engine(cfg.engine)
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh, pytest.raises(EngineError):
        refresh_ledger(wh, cfg, app.catalog_for(cfg), now=NOW)


def test_doctor_says_where_the_jobs_run(monkeypatch):
    assert describe(EngineConfig()).startswith("local: the ledger job runs in the daemon's")
    ray = describe(EngineConfig(mode="ray", address="ray://head:10001", max_retries=2))
    assert ray.startswith("ray: one task per day and host on the cluster at ray://head:10001")
    assert "Ray 2.60.0; 2 retries" in ray
    assert "a local Ray started for the run" in describe(EngineConfig(mode="ray"))

    def missing(name):
        raise PackageNotFoundError(name)

    monkeypatch.setattr("importlib.metadata.version", missing)
    assert describe(EngineConfig(mode="ray")) == (
        "ray, but Ray is not installed: pip install 'gpuledger[ray]' (or -r requirements-ray.txt)"
    )
