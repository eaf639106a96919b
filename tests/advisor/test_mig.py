"""A MIG board is one GPU from the rollups to the money (DESIGN.md §2, "MIG" and "Busy
GPU-seconds"): its GPU-hours and cost split by compute slices, unused slices `__idle__`, busy
unknown (never 0 %) without an activity signal, and no idle alert from unknown activity. Through
synthetic boards, the real nvidia-smi H100 MIG capture and the fake NVML MIG scenario. Figures by
hand in the comments."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from advisor.ledger import IDLE
from advisor.report import busy_pct, week_figures
from advisor.waste import cost_rates_now, wasted_runs
from cli.output import emit
from collectors.gpu import smi
from collectors.gpu.agent import Agent
from collectors.gpu.nvml import NvmlCollector
from config.catalog import load_catalog
from config.settings import Config
from tables import spool
from tests.collectors.gpu import fake_nvml as fk
from tests.conftest import REALDATA
from tests.warehouse.mig_samples import (
    BOARD_USD_PER_HOUR,
    FIVE,
    T0,
    board_samples,
    every,
    ingest_each,
    ledger_from_warehouse,
    with_host,
)
from warehouse import advisor_reads
from warehouse import alerts as alert_reads
from warehouse.store import Warehouse


@pytest.fixture
def mig_cfg(cfg: Config) -> Config:
    return with_host(cfg)


@pytest.fixture
def catalog(cfg: Config) -> pl.DataFrame:
    return load_catalog(cfg.catalog_path)


MIG_CAPTURE = (
    REALDATA
    / "nvidia-smi-captures-utkuozdemir"
    / "captures"
    / "linux-x86_64__nvidia-h100-mig__590.48.01.txt"
)


def costs_json(ledger: pl.DataFrame) -> dict[str, dict]:
    """What `gpuledger costs --format json` prints for these ledger rows, by workload."""
    rows = advisor_reads.summarize_ledger(ledger).to_dicts()
    text = emit_text(rows)
    return {r["workload"]: r for r in json.loads(text)}


def emit_text(rows: list[dict]) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        emit(rows, "json")
    return out.getvalue()


def test_an_h200_with_five_instances_over_two_hours_is_two_gpu_hours_split_by_slices(
    mig_cfg, catalog
):
    """1g(train) + 1g(eval) + 1g(no process) + 2g(train) + 2g(serve), 2 hours, no activity
    signal. GPU-hours: train 2 x (1 + 2)/7 = 0.857, eval 2 x 1/7 = 0.286, serve 2 x 2/7 =
    0.571, __idle__ 2 x 1/7 = 0.286; together 2.0. Money at $2.10 per board-hour: $4.20 for the
    board, train $1.80, eval $0.60, serve $1.20, __idle__ $0.60 (NVML: no board power, no
    energy). Busy is unknown: null in the ledger and in `costs` JSON, never 0."""
    times = every(T0, 60, 120)
    ingest_each(mig_cfg, board_samples(times[:60]), board_samples(times[60:]))
    _, ledger = ledger_from_warehouse(mig_cfg, catalog, T0, T0 + timedelta(hours=3))
    assert ledger["gpu_hours"].sum() == pytest.approx(2.0)
    assert ledger["cost_usd"].sum() == pytest.approx(2 * BOARD_USD_PER_HOUR)
    got = costs_json(ledger)
    hours = {w: r["gpu_hours"] for w, r in got.items()}
    assert hours == pytest.approx({"train": 6 / 7, "eval": 2 / 7, "serve": 4 / 7, IDLE: 2 / 7})
    money = {w: r["cost_usd"] for w, r in got.items()}
    per_slice = 2 * BOARD_USD_PER_HOUR / 7  # $0.60
    assert money == pytest.approx(
        {"train": 3 * per_slice, "eval": per_slice, "serve": 2 * per_slice, IDLE: per_slice}
    )
    for row in got.values():
        assert row["busy_gpu_hours"] is None and row["busy_fraction"] is None
        assert row["activity_gpu_hours"] == 0.0
    assert ledger["busy_gpu_hours"].null_count() == ledger.height
    # The weekly report's figures: 2.0 GPU-hours, busy "unknown".
    week = week_figures(ledger, T0.date(), T0.date() + timedelta(days=7))
    assert week.gpu_hours == pytest.approx(2.0) and week.busy_fraction is None
    assert busy_pct(week.busy_fraction) == "unknown"
    assert week.by_workload["busy_fraction"].null_count() == week.by_workload.height


def test_board_power_is_split_with_the_time_and_the_unused_slice_is_idle(mig_cfg, catalog):
    """nvidia-smi's shape: 1g + 1g + 2g + 2g (6 of 7 slices) and the board at 350 W for 2 hours:
    0.7 kWh, 0.1 kWh a slice. __idle__ is the seventh slice: 2/7 GPU-hours, $0.60 of capital and
    operations + 0.1 kWh x PUE 1.4 x $0.15 = $0.021 of energy."""
    four = [i for i in FIVE if i[0] != "MIG-1g-c"]
    ingest_each(mig_cfg, board_samples(every(T0, 60, 120), four, board_power_w=350.0))
    _, ledger = ledger_from_warehouse(mig_cfg, catalog, T0, T0 + timedelta(hours=3))
    assert mig_cfg.energy.pue == 1.4 and mig_cfg.energy.price_per_kwh == 0.15
    got = costs_json(ledger)
    assert sum(r["gpu_hours"] for r in got.values()) == pytest.approx(2.0)
    assert sum(r["energy_kwh"] for r in got.values()) == pytest.approx(0.7)
    idle = got[IDLE]
    assert idle["gpu_hours"] == pytest.approx(2 / 7)
    assert idle["energy_kwh"] == pytest.approx(0.1)
    assert idle["cost_usd"] == pytest.approx(2 * BOARD_USD_PER_HOUR / 7 + 0.1 * 1.4 * 0.15)
    assert got["serve"]["energy_kwh"] == pytest.approx(0.2)


def test_a_workload_on_two_compute_instances_of_one_gpu_instance_counts_its_memory_once(
    mig_cfg, catalog
):
    """Two compute instances 1c.3g.40gb of one GPU instance both report its 30,000 MiB; the
    workload's peak memory is 30,000 MiB (each GPU's peak, never their sum), on 2/7 of the
    board."""
    instances = [("MIG-ci-0", "1c.3g.40gb", "llm"), ("MIG-ci-1", "1c.3g.40gb", "llm")]
    ingest_each(mig_cfg, board_samples(every(T0, 60, 60), instances, mem_used_mib=30_000.0))
    usage, ledger = ledger_from_warehouse(mig_cfg, catalog, T0, T0 + timedelta(hours=2))
    llm = usage.filter(pl.col("workload") == "llm")
    assert llm["mem_peak_mib"].max() == 30_000.0
    assert costs_json(ledger)["llm"]["gpu_hours"] == pytest.approx(2 / 7)


def test_the_real_h100_mig_capture_is_one_gpu(cfg, catalog):
    """The nvidia-smi capture of an H100 with 3g.40gb + 2g.20gb + 1g.10gb + 1g.10gb (all 7
    slices): two snapshots 16.787 s apart (09:00:27.792, 09:00:44.579), each standing for that
    interval: 33.574 s of one GPU, not of five (board + 4 instances). 3g: 3/7 x 33.574 =
    14.389 s. Board power 71.15 W then 433.78 W: (71.15 + 433.78) x 16.787 = 8,476.26 J, of
    which the 3g has 3/7 = 3,632.68 J. Utilization is [N/A] on MIG: busy unknown."""
    batch = smi.parse_capture_file(MIG_CAPTURE, host="h100-mig")
    spool.write_batch(cfg.spool_dir, "gpu_samples", batch.gpu_samples, "h100-mig")
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        wh.ingest_spool()
        rows = wh.db.sql("SELECT * FROM gpu_minute").pl()
    gap = 16.787
    assert rows["seconds"].sum() == pytest.approx(2 * gap)
    assert rows["energy_j"].sum() == pytest.approx((71.15 + 433.78) * gap)
    by = {r["mig_profile"]: r for r in rows.iter_rows(named=True) if r["mig_profile"] != "1g.10gb"}
    assert set(by) == {"3g.40gb", "2g.20gb"}  # and two 1g.10gb; no row for the board itself
    assert by["3g.40gb"]["seconds"] == pytest.approx(3 / 7 * 2 * gap)
    assert by["3g.40gb"]["energy_j"] == pytest.approx(3 / 7 * (71.15 + 433.78) * gap)
    assert rows["activity_seconds"].sum() == 0.0
    start = rows["minute"].min()
    _, ledger = ledger_from_warehouse(
        with_host(cfg, "h100-mig", "H100"), catalog, start, start + timedelta(hours=1)
    )
    assert ledger["gpu_hours"].sum() == pytest.approx(2 * gap / 3600)
    assert ledger["busy_gpu_hours"].null_count() == ledger.height


def collect_fake_nvml(cfg: Config, proc_root: Path, *, gpm: bool, ticks: int = 24) -> None:
    """The fake NVML MIG scenario (fake_nvml.scenario_mig_3g40gb_two_processes) sampled every
    5 minutes by the agent into the spool, then ingested: collect -> spool -> ingest."""
    clock = fk.FakeClock()
    fake = fk.ISSUE_SCENARIOS["mig_3g40gb_two_processes"](clock)
    if not gpm:  # a driver or board without GPM: MIG instances have no activity signal at all
        fake.gpus[0].gpm_supported = False
    collector = NvmlCollector(
        "host-golden", nvml=fake, proc_root=proc_root, clock=clock.monotonic, sleep=clock.sleep
    )
    times = iter(every(T0, 300, ticks))

    def sample(_now):
        clock.advance(300.0)
        return collector.sample(next(times))

    agent = Agent(sample, cfg.spool_dir, interval_s=300.0)
    with collector:
        for _ in range(ticks):
            agent.tick()
        assert agent.flush() >= 2  # GPU and process samples
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        wh.ingest_spool()


@pytest.fixture(scope="module")
def proc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fk.write_scenario_procs(tmp_path_factory.mktemp("proc"))


@pytest.mark.parametrize("gpm", [True, False])
def test_the_fake_nvml_mig_scenario_end_to_end(cfg, catalog, proc_root, gpm):
    """An H100 with two 3g.40gb instances (6 of 7 slices), 24 samples 5 minutes apart = 2 hours.
    Instance 1 runs vision-train (20 GiB) and vision-eval (8 GiB): no per-process SM share on
    MIG, so they split its 3/7 by memory: vision-train 2 x 3/7 x 20/28 = 0.6122 GPU-hours,
    vision-eval 2 x 3/7 x 8/28 = 0.2449. Instance 2 (no process) and the unpartitioned slice are
    __idle__: 2 x 4/7 = 1.1429. Money at $2.10 per board-hour: vision-train $1.2857.
    With GPM, instance 1 is 45 % SM active (vision-train busy 0.6122 x 0.45 = 0.2755) and
    instance 2 0 % (known: __idle__ busy 0, over its 2 x 3/7 = 0.857 known hours); without GPM
    every busy figure is unknown (null)."""
    cfg = with_host(cfg, "host-golden", "H100")
    collect_fake_nvml(cfg, proc_root, gpm=gpm)
    _, ledger = ledger_from_warehouse(cfg, catalog, T0, T0 + timedelta(hours=3))
    got = costs_json(ledger)
    assert {w: r["gpu_hours"] for w, r in got.items()} == pytest.approx(
        {"vision-train": 2 * 3 / 7 * 20 / 28, "vision-eval": 2 * 3 / 7 * 8 / 28, IDLE: 2 * 4 / 7}
    )
    assert sum(r["gpu_hours"] for r in got.values()) == pytest.approx(2.0)
    # The board row carries the energy (NVML's board readings under MIG). The fake's energy
    # counter stands still, so the deltas between samples are 0 J; the last sample, with no
    # successor yet, stands for the usual 300 s at the board's 350.123 W = 105,036.9 J
    # = 0.029177 kWh, split like the time: vision-train 3/7 x 20/28 of it.
    board_kwh = 350.123 * 300 / 3.6e6
    assert ledger["energy_kwh"].sum() == pytest.approx(board_kwh)
    train_share = 3 / 7 * 20 / 28
    assert got["vision-train"]["cost_usd"] == pytest.approx(
        2 * train_share * BOARD_USD_PER_HOUR + board_kwh * train_share * 1.4 * 0.15
    )
    if gpm:
        assert got["vision-train"]["busy_gpu_hours"] == pytest.approx(2 * 3 / 7 * 20 / 28 * 0.45)
        assert got["vision-train"]["busy_fraction"] == pytest.approx(0.45)
        assert got[IDLE]["busy_gpu_hours"] == 0.0
        assert got[IDLE]["activity_gpu_hours"] == pytest.approx(2 * 3 / 7)
    else:
        for row in got.values():
            assert row["busy_gpu_hours"] is None and row["busy_fraction"] is None


def test_unknown_activity_on_an_idle_looking_mig_instance_opens_no_alert(mig_cfg, catalog):
    """A notebook holds a 1g.18gb instance of an H200 for 2 hours with no activity signal:
    nothing says it idles, so no allocated-idle (nor any other) run. The same on a second board
    with DCGM reporting 0.5 % SM active is one allocated-idle run: 2 hours on the clock, 7,200 / 7
    = 1,028.6 wasted GPU-seconds at the board's $2.10/h = $0.60, the instance's price $0.30/h."""
    times = every(T0, 60, 120)
    now = T0 + timedelta(hours=2)
    unknown = board_samples(times, [("MIG-nb", "1g.18gb", "notebook")], mem_used_mib=17_000.0)
    known = board_samples(
        times, [("MIG-nb2", "1g.18gb", "notebook")], mem_used_mib=17_000.0, sm=0.5, board="GPU-2"
    )
    ingest_each(mig_cfg, pl.concat([unknown, known]))
    with Warehouse(mig_cfg.db_path, mig_cfg.spool_dir) as wh:
        minutes = alert_reads.recent_minutes(wh, T0, pl.DataFrame(schema=REACH))
    assert minutes.filter(pl.col("gpu_uuid") == "MIG-nb")["seconds"].sum() == pytest.approx(
        7200.0 / 7
    )
    runs = wasted_runs(minutes, CLOUD, catalog, mig_cfg, now=now)
    assert runs["kind"].to_list() == ["allocated_idle"]  # none on MIG-nb
    run = runs.row(0, named=True)
    assert run["gpu_uuid"] == "MIG-nb2" and run["duration_s"] == pytest.approx(7200.0)
    assert run["wasted_s"] == pytest.approx(7200.0 / 7)
    assert run["usd_per_hour"] == pytest.approx(BOARD_USD_PER_HOUR / 7)
    assert run["wasted_usd"] == pytest.approx(2 * BOARD_USD_PER_HOUR / 7)
    # What each board costs right now: the instance its 1/7, the unpartitioned 6/7 __idle__.
    rates = cost_rates_now(minutes, CLOUD, catalog, mig_cfg, now=now)
    per = dict(rates.group_by("workload").agg(pl.col("usd_per_hour").sum()).iter_rows())
    assert per == pytest.approx(
        {"notebook": 2 * BOARD_USD_PER_HOUR / 7, IDLE: 2 * 6 * BOARD_USD_PER_HOUR / 7}
    )


REACH = {"host": pl.String, "gpu_uuid": pl.String, "since": pl.Datetime("us", "UTC")}
CLOUD = pl.DataFrame(schema={"host": pl.String, "instance_type": pl.String, "owner": pl.String})
