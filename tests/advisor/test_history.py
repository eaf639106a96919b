"""The ledger covers all history and an ingest re-costs only the days it touched (DESIGN.md §2,
advisor/jobs.py): bills and samples 400 days old appear in `costs` for their dates, a new day is
the only day recomputed, restated bills replace, a host that turns out to be a cloud instance and
a changed price re-cost the past, and `costs` says why a range is empty.

The hand-worked figures use one local GPU, `lab1` (an A100-80GB bought for $26,280 and written
off over 3 years = $1.00 per GPU-hour, plus $0.50 operations), sampled once a minute at 100 W and
50 % utilization, energy at $0.20/kWh with a PUE of 1.5. One hour of samples is therefore
1 GPU-hour, 0.5 busy GPU-hours and 100 W × 3,600 s = 0.1 kWh, and costs
1 h × ($1.00 + $0.50) + 0.1 kWh × 1.5 × $0.20 = $1.53.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from advisor.jobs import CHUNK_DAYS, day_chunks, refresh_ledger
from cli import app
from cli.main import main
from config.settings import Config, EnergyConfig, LocalConfig, LocalHost
from tables import spool
from tables.records import conform
from tests.conftest import ROOT
from warehouse.snapshot import publish
from warehouse.store import Warehouse

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # the pinned clock of these tests
OLD = date(2025, 10, 21)  # 400 days before NOW
HOUR_USD = 1.53  # one local GPU-hour of lab1, worked out in the module docstring


def samples(
    day: date,
    *,
    hour: int = 10,
    minutes: int = 60,
    host: str = "lab1",
    workload: str | None = "train",
    idle_minutes: int = 0,
) -> pl.DataFrame:
    """One GPU sampled once a minute from `hour`:00 of `day`; the last `idle_minutes` samples
    show no process."""
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return conform(
        pl.DataFrame(
            {
                "ts": [start + timedelta(minutes=i) for i in range(minutes)],
                "host": host,
                "gpu_uuid": f"GPU-{host}-0",
                "gpu_index": 0,
                "gpu_model": "A100-80GB",
                "util_pct": 50.0,
                "mem_used_mib": 40000.0,
                "mem_total_mib": 81920.0,
                "power_w": 100.0,
                "workload": [
                    None if i >= minutes - idle_minutes else workload for i in range(minutes)
                ],
                "source": "import",
            }
        ),
        "gpu_samples",
    )


def bill(
    days: list[date], usd: float, *, resource: str, workload: str, period: str = "2025-10-01"
) -> pl.DataFrame:
    """One FOCUS-shaped line per day of `usd` for `resource`; `scope` as collectors/billing/focus.py
    makes it (provider, account, billing period), so a later file of the period replaces it."""
    starts = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days]
    return conform(
        pl.DataFrame(
            {
                "ChargePeriodStart": starts,
                "ChargePeriodEnd": [s + timedelta(days=1) for s in starts],
                "ResourceId": resource,
                "ProviderName": "AWS",
                "EffectiveCost": usd,
                "BilledCost": usd,
                "ListCost": usd,
                "BillingCurrency": "USD",
                "workload": workload,
                "source": "focus",
                "scope": f"focus|AWS|111122223333|{period}",
            }
        ),
        "billing_items",
    )


def lab_config(cfg: Config) -> Config:
    return replace(
        cfg,
        energy=EnergyConfig(price_per_kwh=0.2, pue=1.5),
        local=LocalConfig(
            depreciation_years=3.0,
            ops_usd_per_gpu_hour=0.5,
            hosts=(LocalHost("lab1", "A100-80GB", 1, 26280.0, 3.0, 0.5),),
        ),
    )


@pytest.fixture
def lab(cfg: Config) -> Config:
    return lab_config(cfg)


@pytest.fixture
def wh(lab: Config):
    with Warehouse(lab.db_path, lab.spool_dir) as w:
        yield w


def ingest(lab: Config, wh: Warehouse, kind: str, frame: pl.DataFrame) -> None:
    spool.write_batch(lab.spool_dir, kind, frame, "test")
    wh.ingest_spool()


def refresh(wh: Warehouse, lab: Config, **kw):
    return refresh_ledger(wh, lab, app.catalog_for(lab), now=NOW, **kw)


def ledger(wh: Warehouse) -> pl.DataFrame:
    return wh.db.sql(
        "SELECT day, placement, workload, host, gpu_hours, busy_gpu_hours, cost_usd, currency"
        " FROM results_daily_ledger ORDER BY day, placement, workload"
    ).pl()


def dirty(wh: Warehouse) -> list[tuple]:
    return wh.db.execute("SELECT day, kind FROM ledger_dirty ORDER BY day, kind").fetchall()


# Through the CLI ---------------------------------------------------------------------------
def write_config(base: Path) -> Path:
    (base / "config").mkdir()
    path = base / "config" / "gpuledger.toml"
    path.write_text(
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n'
        '[demo]\nmode = "off"\n'
        "[energy]\nprice_per_kwh = 0.2\npue = 1.5\n"
        "[local]\ndepreciation_years = 3.0\nops_usd_per_gpu_hour = 0.5\n"
        '[[local.hosts]]\nname = "lab1"\ngpu_model = "A100-80GB"\ngpu_count = 1\n'
        "purchase_usd = 26280.0\n"
    )
    return path


def focus_file(path: Path, lines: list[tuple[date, float]]) -> Path:
    """A FOCUS 1.0 CSV of one instance tagged `etl`, billing period October 2025."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "BilledCost",
                "EffectiveCost",
                "ListCost",
                "BillingCurrency",
                "BillingAccountId",
                "BillingPeriodStart",
                "ChargePeriodStart",
                "ChargePeriodEnd",
                "ProviderName",
                "ResourceId",
                "Tags",
            ]
        )
        for day, usd in lines:
            w.writerow(
                [
                    usd * 1.25,
                    usd,
                    usd * 1.5,
                    "USD",
                    "111122223333",
                    "2025-10-01T00:00:00Z",
                    f"{day}T00:00:00Z",
                    f"{day + timedelta(days=1)}T00:00:00Z",
                    "AWS",
                    "i-0123456789abcdef0",
                    '{"workload": "etl"}',
                ]
            )
    return path


def run_cli(conf: Path, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", str(conf), *args])
    out, err = capsys.readouterr()
    return code, out, err


def costs(conf: Path, capsys, since: date, until: date, *extra: str) -> tuple[dict, str]:
    code, out, err = run_cli(
        conf, capsys, "costs", "--since", str(since), "--until", str(until), "--format", "json"
    )
    assert code == 0, err
    return {(r["workload"], r["placement"]): r for r in json.loads(out)}, err


@pytest.mark.slow  # eight CLI commands, each a cycle and a publish: about 3 s
def test_bills_and_samples_400_days_old_appear_in_costs_for_their_dates(tmp_path, capsys):
    conf = write_config(tmp_path)
    sample_csv = tmp_path / "old-capture.csv"
    samples(OLD).with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).select(
        "ts", "host", "gpu_uuid", "gpu_model", "util_pct", "mem_used_mib", "mem_total_mib",
        "power_w", "workload",
    ).write_csv(sample_csv)  # fmt: skip
    assert run_cli(conf, capsys, "import", "samples", str(sample_csv))[0] == 0
    # $24 on OLD and $10 two days later, one instance tagged etl, no telemetry from it
    bills = focus_file(tmp_path / "oct.csv", [(OLD, 24.0), (OLD + timedelta(days=2), 10.0)])
    assert run_cli(conf, capsys, "import", "focus", str(bills))[0] == 0

    rows, _ = costs(conf, capsys, OLD, OLD + timedelta(days=1))
    assert set(rows) == {("train", "local"), ("etl", "cloud")}
    train = rows[("train", "local")]
    assert train["gpu_hours"] == pytest.approx(1.0)
    assert train["busy_gpu_hours"] == pytest.approx(0.5)
    assert train["cost_usd"] == pytest.approx(HOUR_USD)
    etl = rows[("etl", "cloud")]  # a bill line without telemetry goes whole to its tag
    assert etl["cost_usd"] == pytest.approx(24.0)
    assert etl["billed_cost_usd"] == pytest.approx(30.0)  # 24 × 1.25
    assert etl["gpu_hours"] == 0.0
    rows, _ = costs(conf, capsys, OLD, OLD + timedelta(days=3))
    assert rows[("etl", "cloud")]["cost_usd"] == pytest.approx(34.0)  # 24 + 10

    # A restated export of October (same account and period): $20 on OLD, the later day gone.
    restated = focus_file(tmp_path / "oct-restated.csv", [(OLD, 20.0)])
    assert run_cli(conf, capsys, "import", "focus", str(restated))[0] == 0
    rows, _ = costs(conf, capsys, OLD, OLD + timedelta(days=3))
    assert rows[("etl", "cloud")]["cost_usd"] == pytest.approx(20.0)  # replaced, never 54
    assert rows[("train", "local")]["cost_usd"] == pytest.approx(HOUR_USD)

    # A range with no ledger rows says why on stderr, and prints an empty array.
    code, out, err = run_cli(
        conf, capsys, "costs", "--since", "2026-01-01", "--until", "2026-02-01", "--format", "json"
    )
    assert code == 0 and json.loads(out) == []
    assert "no ledger rows between 2026-01-01 and 2026-01-31" in err
    assert "the warehouse holds data from 2025-10-21 to 2025-10-21" in err  # the later day went


def test_costs_on_an_empty_warehouse_says_so(tmp_path, capsys):
    conf = write_config(tmp_path)
    code, out, err = run_cli(
        conf, capsys, "costs", "--since", "2026-01-01", "--until", "2026-02-01", "--format", "csv"
    )
    assert code == 0 and out == ""
    assert "the warehouse is empty: import samples or bills first" in err


def test_costs_recompute_needs_the_warehouse(tmp_path, capsys):
    from config.settings import load_config
    from warehouse.lock import WriterLock

    conf = write_config(tmp_path)
    args = ("costs", "--since", "2025-10-01", "--until", "2025-11-01", "--recompute")
    assert run_cli(conf, capsys, *args)[0] == 0  # no daemon: the command recomputes itself
    with WriterLock(load_config(conf).db_path):  # as a running `gpuledger run` holds it
        code, _, err = run_cli(conf, capsys, *args)
    assert code == 1 and "--recompute needs the warehouse" in err


# The job ------------------------------------------------------------------------------------
def test_a_new_day_is_the_only_day_recomputed(lab, wh):
    for day in (OLD, OLD + timedelta(days=1)):
        ingest(lab, wh, "gpu_samples", samples(day))
    first = refresh(wh, lab)
    assert first.usage_days == [OLD, OLD + timedelta(days=1)]  # the first run: every day
    # Mark every stored row; a row recomputed loses the mark.
    wh.db.execute("UPDATE results_daily_ledger SET currency = 'kept'")
    wh.db.execute("UPDATE results_usage_hourly SET mem_total_mib = -1")

    new_day = NOW.date() - timedelta(days=1)
    ingest(lab, wh, "gpu_samples", samples(new_day, minutes=30))
    assert dirty(wh) == [(new_day, "usage")]  # recorded with the rows, by the ingest
    done = refresh(wh, lab)
    assert (done.usage_days, done.cost_days, done.chunks) == ([new_day], [], 1)
    assert dirty(wh) == []
    rows = ledger(wh)
    assert rows.filter(pl.col("day") < new_day)["currency"].to_list() == ["kept", "kept"]
    fresh = rows.filter(pl.col("day") == new_day).row(0, named=True)
    assert fresh["currency"] == "USD"
    assert fresh["gpu_hours"] == pytest.approx(0.5)  # 30 one-minute samples
    assert fresh["cost_usd"] == pytest.approx(HOUR_USD / 2)
    kept = wh.db.execute(
        "SELECT count(*) FROM results_usage_hourly WHERE mem_total_mib = -1"
    ).fetchall()[0][0]
    assert kept == 2  # the two old hours were not rewritten

    # Nothing new: nothing recomputed, the recommendations still are.
    again = refresh(wh, lab)
    assert (again.days, again.chunks) == (0, 0)


def test_days_with_a_gap_between_them_leave_the_day_between_alone(lab, wh):
    """One chunk holds OLD (attributed again) and OLD + 2 (re-costed); OLD + 1 is not read."""
    from warehouse import results

    days = [OLD + timedelta(days=i) for i in range(3)]
    for day in days:
        ingest(lab, wh, "gpu_samples", samples(day))
    refresh(wh, lab)
    wh.db.execute("UPDATE results_daily_ledger SET currency = 'kept'")
    wh.db.execute("UPDATE results_usage_hourly SET mem_total_mib = -1")
    results.mark_days(wh, {"usage": pl.Series([days[0]]), "cost": pl.Series([days[2]])})
    done = refresh(wh, lab)
    assert (done.usage_days, done.cost_days, done.chunks) == ([days[0]], [days[2]], 1)
    rows = ledger(wh)
    assert rows["currency"].to_list() == ["USD", "kept", "USD"]
    assert rows["cost_usd"].to_list() == [pytest.approx(HOUR_USD)] * 3
    hours = wh.db.execute(
        "SELECT CAST(hour AS DATE), mem_total_mib FROM results_usage_hourly ORDER BY hour"
    ).fetchall()
    # OLD's hour came again from its rollups; OLD + 2's stored hour was re-placed as it was
    assert hours == [(days[0], 81920.0), (days[1], -1.0), (days[2], -1.0)]


def test_incremental_ledger_equals_a_full_recompute(lab, wh):
    """Days arrive one at a time, bills after the samples and restated once; the stored result
    equals recomputing every day at once."""
    catalog = app.catalog_for(lab)
    days = [OLD + timedelta(days=i) for i in range(3)]
    for day in days:
        ingest(lab, wh, "gpu_samples", samples(day, idle_minutes=15))
        ingest(lab, wh, "gpu_samples", samples(day, host="i-0aaaaaaaaaaaaaaa1", idle_minutes=20))
        refresh_ledger(wh, lab, catalog, now=NOW)
    ingest(lab, wh, "billing_items", bill(days, 30.0, resource="i-0aaaaaaaaaaaaaaa1", workload="w"))
    refresh_ledger(wh, lab, catalog, now=NOW)
    ingest(
        lab, wh, "billing_items", bill(days[:2], 40.0, resource="i-0aaaaaaaaaaaaaaa1", workload="w")
    )
    refresh_ledger(wh, lab, catalog, now=NOW)
    incremental = ledger(wh)
    usage = wh.db.sql("SELECT * FROM results_usage_hourly ORDER BY ALL").pl()
    done = refresh_ledger(wh, lab, catalog, now=NOW, recompute=True)
    assert done.usage_days == days
    assert_frame_equal(ledger(wh), incremental, check_exact=False)
    assert_frame_equal(
        wh.db.sql("SELECT * FROM results_usage_hourly ORDER BY ALL").pl(), usage, check_exact=False
    )
    cloud = incremental.filter(pl.col("placement") == "cloud")
    # $40 on the first two days (restated), the third day's $30 line gone with the restatement
    assert cloud.group_by("day").agg(pl.col("cost_usd").sum()).sort("day")[
        "cost_usd"
    ].to_list() == [
        pytest.approx(40.0),
        pytest.approx(40.0),
        0.0,
    ]


def test_a_host_billed_as_a_cloud_instance_re_costs_all_its_days(lab, wh):
    """gpu-box-7 looked local (not configured, not an instance id); a bill naming it arrives for
    a later day only: every day of it becomes cloud, and its idle time goes to the tag."""
    ingest(lab, wh, "gpu_samples", samples(OLD, host="gpu-box-7", idle_minutes=30))
    refresh(wh, lab)
    before = ledger(wh)
    assert before["placement"].to_list() == ["local", "local"]
    assert sorted(before["workload"].to_list()) == ["__idle__", "train"]

    later = OLD + timedelta(days=40)
    ingest(lab, wh, "billing_items", bill([later], 12.0, resource="gpu-box-7", workload="team-x"))
    assert dirty(wh) == [(later, "cost")]  # the ingest knows only the bill's own day
    done = refresh(wh, lab)
    assert done.cost_days == [OLD, later] and done.usage_days == []
    assert any("gpu-box-7" in r for r in done.reasons)
    old = ledger(wh).filter(pl.col("day") == OLD)
    assert old["placement"].to_list() == ["cloud", "cloud"]
    # No bill on OLD: the telemetry stays (cost 0), its idle half-hour now held by the owner.
    assert dict(zip(old["workload"], old["gpu_hours"], strict=True)) == {
        "team-x": pytest.approx(0.5),
        "train": pytest.approx(0.5),
    }
    assert old["cost_usd"].sum() == 0.0
    placed = wh.db.execute("SELECT placement, owner FROM ledger_hosts").fetchall()
    assert placed == [("cloud", "team-x")]


def test_a_changed_price_re_costs_every_day_from_the_stored_attribution(lab, wh):
    for day in (OLD, OLD + timedelta(days=200)):
        ingest(lab, wh, "gpu_samples", samples(day))
    refresh(wh, lab)
    assert ledger(wh)["cost_usd"].to_list() == [pytest.approx(HOUR_USD)] * 2
    # Raw process samples and rollups are not read again: only the prices changed.
    dearer = replace(lab, energy=EnergyConfig(price_per_kwh=0.4, pue=1.5))
    done = refresh(wh, dearer)
    assert done.usage_days == [] and done.cost_days == [OLD, OLD + timedelta(days=200)]
    # 1 h × $1.50 + 0.1 kWh × 1.5 × $0.40 = $1.56
    assert ledger(wh)["cost_usd"].to_list() == [pytest.approx(1.56)] * 2
    assert refresh(wh, dearer).days == 0  # the new fingerprint is kept


def test_first_run_on_a_warehouse_without_the_state_recomputes_everything_once(lab, wh):
    for day in (OLD, OLD + timedelta(days=1)):
        ingest(lab, wh, "gpu_samples", samples(day))
    refresh(wh, lab)
    # A warehouse the previous gpuledger filled: results of recent days only, no bookkeeping.
    wh.db.execute("DELETE FROM ledger_state")
    wh.db.execute("DELETE FROM results_daily_ledger WHERE day = ?", [OLD])
    done = refresh(wh, lab)
    assert done.usage_days == [OLD, OLD + timedelta(days=1)]
    assert "first run of the incremental ledger" in done.reasons
    assert ledger(wh)["day"].to_list() == [OLD, OLD + timedelta(days=1)]
    assert refresh(wh, lab).days == 0


def test_purging_a_source_recomputes_its_days(lab, wh):
    ingest(lab, wh, "gpu_samples", samples(OLD))
    ingest(lab, wh, "billing_items", bill([OLD], 5.0, resource="i-0123456789abcdef0", workload="w"))
    refresh(wh, lab)
    assert ledger(wh).height == 2
    wh.purge_source("import")
    assert dirty(wh) == [(OLD, "usage")]
    refresh(wh, lab)
    assert ledger(wh).select("workload", "cost_usd").rows() == [("w", 5.0)]


def test_a_year_is_recomputed_a_month_at_a_time():
    days = [OLD + timedelta(days=i) for i in range(0, 400, 3)]
    dirty_days = pl.DataFrame({"day": days, "usage": [i % 2 == 0 for i in range(len(days))]})
    chunks = list(day_chunks(dirty_days))
    assert len(chunks) == 13  # 400 days ÷ 31
    for chunk in chunks:
        span = (chunk["day"].max() - chunk["day"].min()).days
        assert span < CHUNK_DAYS
    assert pl.concat(chunks).equals(dirty_days)


def test_the_snapshot_holds_every_ledger_day_and_the_report_an_old_week(lab, wh):
    ingest(lab, wh, "gpu_samples", samples(OLD))
    refresh(wh, lab)
    publish(wh, lab.snapshot_path, days=lab.warehouse.snapshot_days, now=NOW)
    import duckdb

    con = duckdb.connect(str(lab.snapshot_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM gpu_minute").fetchall() == [(0,)]  # 35 days
        days = con.execute("SELECT DISTINCT day FROM daily_ledger").fetchall()
        hours = con.execute("SELECT count(*) FROM usage_hourly").fetchall()
    finally:
        con.close()
    assert days == [(OLD,)] and hours == [(1,)]

    from advisor.report import build_report, week_of
    from warehouse.snapshot import Snapshot

    snap = Snapshot(lab.snapshot_path)
    try:
        rep = build_report(snap, lab, app.catalog_for(lab), week_of(OLD), now=NOW)
    finally:
        snap.close()
    assert rep.this.total_usd == pytest.approx(HOUR_USD)
