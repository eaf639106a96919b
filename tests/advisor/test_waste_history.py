"""Wasted high-end GPU time over all history (advisor/jobs.py, results_waste_daily): stored per run
and UTC day with the ledger's days, each run whole whatever day it reaches into, the same as a
detection over everything at once, and the money an alert reports for a run equal to the stored
run's, even where the run began before the alert check's first look back.

The idle H100 notebook costs $6.88 an hour (a p5.4xlarge); every wasted minute is 6.88 / 60 USD.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from advisor.alerts import check_alerts
from advisor.jobs import EPOCH, WASTE_KEY, mark_changed_inputs, refresh_ledger
from advisor.waste import billed_hosts, wasted_days
from cli import app
from tests.advisor.waste_samples import P5_4XL_USD, ingest, notebook, p5_bill, quiet_cfg
from warehouse import results

PER_MIN = P5_4XL_USD / 60
MIDNIGHT = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)  # Tuesday 00:00 UTC
MIN = timedelta(minutes=1)


def stored(wh) -> pl.DataFrame:
    return wh.db.sql(
        "SELECT day, workload, kind, run_started_at, started_at, ended_at, duration_s, wasted_usd"
        " FROM results_waste_daily ORDER BY day, run_started_at"
    ).pl()


def bills(start: datetime, hours: int) -> pl.DataFrame:
    return p5_bill(start - timedelta(hours=1), hours + 2)


def test_a_run_across_midnight_is_one_run_in_two_days_that_add_up(cfg):
    # idle 23:00-01:30: 60 minutes on Monday ($6.88), 90 on Tuesday ($10.32), $17.20 in all
    with app.open_warehouse(cfg) as wh:
        ingest(
            cfg, wh, bills(MIDNIGHT - 60 * MIN, 3), notebook(MIDNIGHT - 60 * MIN, 150, idle=True)
        )
        refresh_ledger(wh, cfg, app.catalog_for(cfg), now=MIDNIGHT + 150 * MIN)
        rows = stored(wh)
    assert rows["day"].to_list() == [date(2026, 3, 2), date(2026, 3, 3)]
    assert rows["run_started_at"].to_list() == [MIDNIGHT - 60 * MIN] * 2
    assert rows["started_at"].to_list() == [MIDNIGHT - 60 * MIN, MIDNIGHT]
    assert rows["ended_at"].to_list() == [MIDNIGHT, MIDNIGHT + 90 * MIN]
    assert rows["duration_s"].to_list() == [3600.0, 5400.0]
    assert rows["wasted_usd"].to_list() == pytest.approx([6.88, 10.32])
    assert rows["wasted_usd"].sum() == pytest.approx(150 * PER_MIN) == pytest.approx(17.20)


def test_a_run_that_grows_long_enough_after_midnight_gets_its_part_before_midnight(cfg):
    # 20 idle minutes before midnight are no run yet (under 30); the next batch, only Tuesday's,
    # makes them the start of a 70-minute run: Monday keeps 30 minutes ($3.44), Tuesday 40
    # ($4.59), though only Tuesday was ingested the second time.
    catalog = app.catalog_for(cfg)
    with app.open_warehouse(cfg) as wh:
        ingest(
            cfg,
            wh,
            bills(MIDNIGHT - 60 * MIN, 3),
            notebook(MIDNIGHT - 40 * MIN, 10, idle=False),
            notebook(MIDNIGHT - 30 * MIN, 20, idle=True),
        )
        refresh_ledger(wh, cfg, catalog, now=MIDNIGHT - 10 * MIN)
        assert stored(wh).height == 0
        ingest(cfg, wh, notebook(MIDNIGHT - 10 * MIN, 50, idle=True))
        done = refresh_ledger(wh, cfg, catalog, now=MIDNIGHT + 40 * MIN)
        rows = stored(wh)
    assert done.usage_days == [date(2026, 3, 2), date(2026, 3, 3)]  # 23:50-23:59 is Monday's
    assert rows["started_at"].to_list() == [MIDNIGHT - 30 * MIN, MIDNIGHT]
    assert rows["run_started_at"].to_list() == [MIDNIGHT - 30 * MIN] * 2
    assert rows["wasted_usd"].to_list() == pytest.approx([30 * PER_MIN, 40 * PER_MIN])
    assert rows["wasted_usd"].sum() == pytest.approx(8.03, abs=0.005)  # 70 x 6.88 / 60


def test_a_batch_that_continues_a_stored_run_replaces_it_never_a_second_copy(cfg):
    # Monday's 23:00-24:00 is stored as a run of its own; Tuesday's batch continues it: one run
    # from 23:00, its Monday part still 60 minutes ($6.88), Tuesday's 60 more.
    catalog = app.catalog_for(cfg)
    with app.open_warehouse(cfg) as wh:
        ingest(cfg, wh, bills(MIDNIGHT - 60 * MIN, 4), notebook(MIDNIGHT - 60 * MIN, 60, idle=True))
        refresh_ledger(wh, cfg, catalog, now=MIDNIGHT)
        assert stored(wh)["wasted_usd"].to_list() == pytest.approx([6.88])
        ingest(cfg, wh, notebook(MIDNIGHT, 60, idle=True))
        refresh_ledger(wh, cfg, catalog, now=MIDNIGHT + 60 * MIN)
        rows = stored(wh)
    assert rows["day"].to_list() == [date(2026, 3, 2), date(2026, 3, 3)]
    assert rows["run_started_at"].to_list() == [MIDNIGHT - 60 * MIN] * 2
    assert rows["wasted_usd"].to_list() == pytest.approx([6.88, 6.88])


def test_waste_stored_batch_by_batch_equals_one_detection_over_everything(cfg, tmp_path):
    # Three days of a notebook that works 1 h and idles 6 h in turn (ten times), ingested every
    # 5 hours: the stored rows are those of one detection over all the minutes at once.
    catalog = app.catalog_for(cfg)
    start = MIDNIGHT - timedelta(days=1)
    frames = [notebook(start + timedelta(hours=7 * i), 60, idle=False) for i in range(10)]
    frames += [notebook(start + timedelta(hours=7 * i + 1), 360, idle=True) for i in range(10)]
    samples = pl.concat(frames).sort("ts")
    with app.open_warehouse(cfg) as wh:
        ingest(cfg, wh, bills(start, 72))
        for hour in range(0, 72, 5):
            lo, hi = start + timedelta(hours=hour), start + timedelta(hours=hour + 5)
            ingest(cfg, wh, samples.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi)))
            refresh_ledger(wh, cfg, catalog, now=hi)
        got = stored(wh)
        minutes = results.waste_minutes(wh, EPOCH, start + timedelta(days=4))
        cloud = billed_hosts(results.billed_resources(wh), results.instance_types(wh, EPOCH))
    whole = wasted_days(minutes, cloud, catalog, cfg).select(got.columns)
    # 10 idle runs; 2 cross a midnight (22:00-04:00 on Monday, 19:00-01:00 on Tuesday)
    assert got.height == whole.height == 10 + 2
    assert got.drop("wasted_usd").equals(whole.drop("wasted_usd"))
    assert got["wasted_usd"].to_list() == pytest.approx(whole["wasted_usd"].to_list())
    assert got["wasted_usd"].sum() == pytest.approx(10 * 360 * PER_MIN)  # 10 x $41.28


def test_an_alert_first_seen_after_a_day_reports_the_whole_stored_run(cfg):
    # The notebook has idled for 30 hours when the alert check runs for the first time: it looks
    # back [alerts] backfill_hours (24 h), yet the alert is the stored run, 30 h and $206.40.
    conf = quiet_cfg(cfg)
    catalog = app.catalog_for(conf)
    start = MIDNIGHT - timedelta(hours=6)
    now = start + timedelta(hours=30)
    assert conf.alerts.backfill_hours == 24
    with app.open_warehouse(conf) as wh:
        ingest(conf, wh, bills(start, 31), notebook(start, 30 * 60, idle=True))
        refresh_ledger(wh, conf, catalog, now=now)
        check_alerts(wh, conf, catalog, channels=[], now=now)
        (alert,) = wh.db.sql("SELECT started_at, wasted_usd FROM alerts").pl().rows()
        run = stored(wh)
    assert alert[0] == start == run["run_started_at"][0]
    assert alert[1] == pytest.approx(run["wasted_usd"].sum()) == pytest.approx(30 * P5_4XL_USD)


def test_new_thresholds_recompute_the_waste_of_every_day(cfg):
    # A 45-minute idle run is waste at the shipped 30 minutes and none at 60.
    catalog = app.catalog_for(cfg)
    with app.open_warehouse(cfg) as wh:
        ingest(cfg, wh, bills(MIDNIGHT, 2), notebook(MIDNIGHT, 45, idle=True))
        refresh_ledger(wh, cfg, catalog, now=MIDNIGHT + 60 * MIN)
        assert stored(wh)["wasted_usd"].to_list() == pytest.approx([45 * PER_MIN])
        stricter = replace(cfg, thresholds=replace(cfg.thresholds, idle_min_minutes=60))
        done = refresh_ledger(wh, stricter, catalog, now=MIDNIGHT + 60 * MIN)
        assert done.reasons == ["the waste thresholds or the waste's code changed"]
        assert stored(wh).height == 0


def test_a_warehouse_from_before_the_stored_waste_computes_it_for_all_history(cfg):
    catalog = app.catalog_for(cfg)
    with app.open_warehouse(cfg) as wh:
        ingest(cfg, wh, bills(MIDNIGHT, 2), notebook(MIDNIGHT, 45, idle=True))
        refresh_ledger(wh, cfg, catalog, now=MIDNIGHT + 60 * MIN)
        wh.db.execute("DELETE FROM results_waste_daily")
        wh.db.execute("DELETE FROM ledger_state WHERE key = ?", [WASTE_KEY])
        assert mark_changed_inputs(wh, cfg, catalog) == [
            "first computation of the wasted time over all history"
        ]
        refresh_ledger(wh, cfg, catalog, now=MIDNIGHT + 60 * MIN)
        assert stored(wh)["wasted_usd"].to_list() == pytest.approx([45 * PER_MIN])
