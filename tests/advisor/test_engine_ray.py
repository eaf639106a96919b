"""The ledger job on Ray (advisor/engine.py RayEngine, a local Ray of 2 CPUs started for these
tests): the same rows as the whole-chunk job, from the warehouse and from the lake's partitions;
a worker killed mid-job changes nothing (Ray runs its task again), in either; and a job whose
task fails for good stores nothing. Marked slow (Ray starts in about 5 s); `.ci/run` runs them
with the rest. Skipped, saying so, where Ray is not installed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from advisor import jobs
from advisor.partitions import cost_partition
from cli import app
from tests.advisor.engine_fleet import DAY1, DAY2, NOW, fleet_config, load_samples
from tests.advisor.test_engine import assert_same, run_both, stored
from warehouse import results
from warehouse.store import Warehouse

ray = pytest.importorskip(
    "ray", reason="Ray is not installed (pip install -r requirements-ray.txt)"
)
from advisor.engine import RayEngine  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    # Workers unpickle this module's DieOnce by value: tests/ is not installed for them.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    eng = RayEngine(num_cpus=2, max_retries=2)
    yield eng
    eng.close()


class DieOnce:
    """`fn` (a partition job), except that the first task to reach `victim`'s partition kills its
    own worker process (as the OOM killer or a lost node would) before returning; `always`:
    every attempt dies. The marker file is how the retry knows it is the second attempt."""

    def __init__(self, marker: Path, fn=cost_partition, victim=(DAY1, "lab1"), always=False):
        self.marker, self.fn, self.victim, self.always = marker, fn, victim, always

    def __call__(self, item, shared):
        key = item if isinstance(item, tuple) else (item.day, item.host)
        if key == self.victim and (self.always or not self.marker.exists()):
            self.marker.write_text(str(os.getpid()))
            os._exit(1)
        return self.fn(item, shared)


def test_ray_stores_the_whole_chunk_jobs_rows(tmp_path, engine):
    whole, on_ray = run_both(tmp_path, engine)
    for a, b in zip(whole, on_ray, strict=True):
        assert_same(a, b)
    assert engine.workers == 2


def test_ray_runs_the_lake_partitions(tmp_path, engine):
    """advisor/lake_jobs.py on Ray: each task opens the lake itself and scans its partition."""
    pytest.importorskip("pyiceberg", reason="the lake needs pyiceberg (requirements-lake.txt)")
    from tests.advisor.test_lake_jobs import assert_same as assert_same_rows
    from tests.advisor.test_lake_jobs import lake_vs_whole

    whole, on_ray, run, _ = lake_vs_whole(tmp_path, engine)
    assert_same_rows(whole, on_ray)
    assert run.partitions == 3


def test_a_worker_killed_mid_lake_job_changes_nothing(tmp_path, engine, monkeypatch):
    pytest.importorskip("pyiceberg", reason="the lake needs pyiceberg (requirements-lake.txt)")
    from advisor import lake_jobs
    from tests.advisor.test_lake_jobs import assert_same as assert_same_rows
    from tests.advisor.test_lake_jobs import lake_vs_whole

    marker = tmp_path / "killed"
    monkeypatch.setattr(lake_jobs, "raw_partition", DieOnce(marker, lake_jobs.raw_partition))
    whole, on_ray, run, _ = lake_vs_whole(tmp_path, engine)
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker died
    assert_same_rows(whole, on_ray)
    assert run.partitions == 3


def test_a_worker_killed_mid_job_changes_nothing(tmp_path, engine, monkeypatch):
    marker = tmp_path / "killed"
    monkeypatch.setattr(jobs, "cost_partition", DieOnce(marker))
    whole, on_ray = run_both(tmp_path, engine)
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker died
    for a, b in zip(whole, on_ray, strict=True):
        assert_same(a, b)


def test_a_job_whose_task_fails_for_good_stores_nothing(tmp_path, engine, monkeypatch):
    no_retry = RayEngine(max_retries=0)  # joins the module's Ray
    monkeypatch.setattr(jobs, "cost_partition", DieOnce(tmp_path / "killed", always=True))
    cfg = fleet_config(tmp_path)
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        load_samples(wh, cfg)
        with pytest.raises(ray.exceptions.RayError):
            jobs.refresh_ledger(wh, cfg, app.catalog_for(cfg), now=NOW, engine=no_retry)
        # Nothing stored, the days still marked for the next run.
        assert all(frame.height == 0 for frame in stored(wh).values())
        assert results.dirty_days(wh)["day"].to_list() == [DAY1, DAY2]
