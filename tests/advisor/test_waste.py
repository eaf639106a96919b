"""Wasted high-end GPU time (advisor/waste.py): the three kinds, runs, and money worked by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from advisor.waste import cost_rates_now, gpu_rates, wasted_runs
from config.catalog import load_catalog
from config.gpu_class import GpuClasses
from tests.advisor.waste_samples import H100_HOST, H100_UUID, T0, ingest, notebook, p5_bill
from warehouse import alerts as store

HOURS_3Y = 3 * 8760.0
A100_LOCAL = 12_000 / HOURS_3Y + 0.10  # catalog purchase price, 3 years, $0.10/GPU-h operations
RTX4090_LOCAL = 1_599 / HOURS_3Y + 0.10


@pytest.fixture
def catalog(cfg):
    return load_catalog(cfg.catalog_path)


def minutes(
    host: str,
    model: str,
    start: datetime,
    n: int,
    *,
    util: float,
    sm: float | None = None,
    mem_gib: float = 30.0,
    workload: str | None = "wl",
    gpu_uuid: str = "GPU-x",
    seconds: float = 60.0,
    power_w: float = 100.0,
) -> pl.DataFrame:
    """`n` gpu_minute rows of one GPU, one per minute (the rollup's shape)."""
    activity = sm if sm is not None else util
    return pl.DataFrame(
        {
            "minute": [start + timedelta(minutes=i) for i in range(n)],
            "host": [host] * n,
            "gpu_uuid": [gpu_uuid] * n,
            "gpu_model": [model] * n,
            "workload": [workload] * n,
            "seconds": [seconds] * n,
            "busy_seconds": [seconds * activity / 100] * n,
            "util_avg": [float(util)] * n,
            "sm_active_avg": [sm] * n,
            "activity_kind": ["gpm" if sm is not None else "nvml_util"] * n,
            "mem_used_max_mib": [mem_gib * 1024] * n,
            "mem_total_mib": [80.0 * 1024] * n,
            "power_avg_w": [power_w] * n,
        },
        schema_overrides={"sm_active_avg": pl.Float64, "workload": pl.String},
    )


def cloud(*rows: tuple[str, str | None, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"host": pl.String, "instance_type": pl.String, "owner": pl.String},
        orient="row",
    )


P5 = cloud((H100_HOST, "p5.4xlarge", "research-notebook"))
NO_CLOUD = cloud()


@pytest.mark.parametrize(
    ("model", "high_end"),
    [
        ("H100", True),
        ("NVIDIA H100 80GB HBM3", True),
        ("A100-80GB", True),
        ("NVIDIA A100-SXM4-40GB", True),
        ("NVIDIA GH200 480GB", True),
        ("NVIDIA B200", True),
        ("NVIDIA RTX A1000", False),  # "A100" inside a longer number is another card
        ("RTX 4090", False),
        ("L40S", False),
        ("Tesla T4", False),
    ],
)
def test_high_end_is_the_catalog_class_flag(catalog, model, high_end):
    """A GPU is high-end when the class its reported name resolves to has high_end = true in
    the catalog; "RTX A1000" resolves to no class (A1000 is not the A100)."""
    classes = GpuClasses(catalog)
    assert classes.is_high_end(classes.resolve(model, 80 * 1024)) is high_end


def test_an_h100_idle_45_minutes_is_one_run_worth_5_16(cfg, catalog):
    frame = pl.concat(
        [
            minutes(H100_HOST, "H100", T0, 45, util=1.0, sm=0.5, workload="research-notebook"),
            minutes(
                H100_HOST,
                "H100",
                T0 + timedelta(minutes=45),
                5,
                util=70,
                sm=60,
                workload="research-notebook",
            ),
        ]
    )
    runs = wasted_runs(frame, P5, catalog, cfg, now=T0 + timedelta(minutes=50))
    assert runs.height == 1
    run = runs.row(0, named=True)
    assert (run["kind"], run["workload"], run["ongoing"]) == (
        "allocated_idle",
        "research-notebook",
        False,
    )
    assert run["started_at"] == T0 and run["ended_at"] == T0 + timedelta(minutes=45)
    assert run["duration_s"] == 45 * 60
    # p5.4xlarge: $6.88/h on demand for its one H100; 45 minutes = 0.75 h -> $5.16
    assert run["usd_per_hour"] == pytest.approx(6.88)
    assert run["wasted_usd"] == pytest.approx(0.75 * 6.88) == pytest.approx(5.16)


@pytest.mark.parametrize(("idle_minutes", "runs"), [(29, 0), (30, 1)])
def test_a_run_alerts_from_idle_min_minutes_on(cfg, catalog, idle_minutes, runs):
    frame = minutes(H100_HOST, "H100", T0, idle_minutes, util=0.0, sm=0.0)
    assert wasted_runs(frame, P5, catalog, cfg, now=T0).height == runs


def test_a_consumer_gpu_idle_for_hours_is_no_high_end_waste(cfg, catalog):
    frame = pl.concat(
        [
            minutes("ws-4090", "RTX 4090", T0, 180, util=0.0, gpu_uuid="GPU-a"),
            minutes("ws-a1000", "NVIDIA RTX A1000", T0, 180, util=0.0, gpu_uuid="GPU-b"),
        ]
    )
    assert wasted_runs(frame, NO_CLOUD, catalog, cfg, now=T0).height == 0


def test_a_local_gpu_is_valued_at_capital_plus_operations(cfg, catalog):
    frame = minutes("dgx-a100", "A100-80GB", T0, 60, util=2.0, mem_gib=40)
    run = wasted_runs(frame, NO_CLOUD, catalog, cfg, now=T0).row(0, named=True)
    # $12,000 / (3 y x 8,760 h) = $0.4566 + $0.10 operations = $0.5566 per GPU-hour
    assert run["placement"] == "local"
    assert run["usd_per_hour"] == pytest.approx(0.556621, abs=1e-6)
    assert run["wasted_usd"] == pytest.approx(A100_LOCAL * 1.0)


def test_a_local_gpu_reported_by_its_real_name_is_valued_at_its_class(cfg, catalog):
    """NVML names the board "NVIDIA H100 80GB HBM3": it is the catalog's H100, so idle time is
    worth $30,000 / (3 y x 8,760 h) = $1.141553 + $0.10 operations = $1.241553 per GPU-hour (not
    the $0.10 of operations alone); 45 idle minutes waste 0.75 h x $1.241553 = $0.931164. The
    current cost rate (results_gpu_cost_rates) is the same computation: $1.241553/h plus the
    measured energy, 0.1 kW x 1.4 x $0.15 = $0.021/h."""
    frame = minutes("gpu-box-1", "NVIDIA H100 80GB HBM3", T0, 45, util=1.0, sm=0.5)
    run = wasted_runs(frame, NO_CLOUD, catalog, cfg, now=T0).row(0, named=True)
    assert (run["kind"], run["placement"]) == ("allocated_idle", "local")
    assert run["usd_per_hour"] == pytest.approx(1.241553, abs=1e-6)
    assert run["wasted_usd"] == pytest.approx(0.931164, abs=1e-6)
    now = cost_rates_now(frame, NO_CLOUD, catalog, cfg, now=T0 + timedelta(minutes=45))
    assert now.select("usd_per_hour", "energy_usd_per_hour").row(0) == pytest.approx(
        (1.241553, 0.021), abs=1e-6
    )


def test_an_unknown_local_model_is_valued_at_operations_and_says_unpriced(cfg, catalog):
    rates = gpu_rates(
        pl.DataFrame({"host": ["ws-1660"], "gpu_model": ["Graphics Device"]}),
        NO_CLOUD,
        cfg,
        catalog,
    ).row(0, named=True)
    assert rates["usd_per_hour"] == pytest.approx(0.10)
    assert rates["price_basis"].startswith(
        "unpriced: Graphics Device has no catalog purchase price"
    )


def test_a_cloud_gpu_without_a_known_instance_type_takes_its_class_price(cfg, catalog):
    host = "i-0bbbbbbbbbbbb0002"
    rates = gpu_rates(
        pl.DataFrame({"host": [host], "gpu_model": ["A100-80GB"]}),
        cloud((host, "x9.custom", "team-a")),
        cfg,
        catalog,
    ).row(0, named=True)
    # the catalog's cheapest A100-80GB on demand: p4de.24xlarge $27.45 / 8 GPUs
    assert rates["placement"] == "cloud"
    assert rates["usd_per_hour"] == pytest.approx(27.45 / 8)
    assert "A100-80GB" in rates["price_basis"]


def test_inefficient_busy_counts_the_idle_sm_share(cfg, catalog):
    frame = minutes(H100_HOST, "H100", T0, 40, util=80.0, sm=40.0)
    run = wasted_runs(frame, P5, catalog, cfg, now=T0).row(0, named=True)
    assert run["kind"] == "inefficient_busy"
    assert run["duration_s"] == 2400
    # 40 min busy with 60% of the SMs idle: 2,400 s x 0.6 = 1,440 s at $6.88/h = $2.752
    assert run["wasted_s"] == pytest.approx(1440)
    assert run["wasted_usd"] == pytest.approx(1440 / 3600 * 6.88)


def test_inefficient_busy_needs_sm_active(cfg, catalog):
    frame = minutes(H100_HOST, "H100", T0, 40, util=80.0, sm=None)
    assert wasted_runs(frame, P5, catalog, cfg, now=T0).height == 0


def test_over_powered_names_the_cheapest_smaller_class_and_values_the_difference(cfg, catalog):
    # chat-inference of the demo fleet: 9 GiB and ~15% of an A100-80GB, local
    frame = minutes("dgx-a100", "A100-80GB", T0, 90, util=15.0, mem_gib=9.0)
    runs = wasted_runs(frame, NO_CLOUD, catalog, cfg, now=T0)
    assert runs.height == 1
    run = runs.row(0, named=True)
    assert run["kind"] == "over_powered"
    # 9 GiB + 10% fits 24 GB; 0.15 x 1.00 throughput fits 0.53: the RTX 4090 at $0.1608/h
    assert run["suggested_class"] == "RTX 4090"
    assert run["suggested_usd_per_hour"] == pytest.approx(RTX4090_LOCAL)
    assert run["wasted_usd"] == pytest.approx(1.5 * (A100_LOCAL - RTX4090_LOCAL))


def test_over_powered_needs_an_hour(cfg, catalog):
    frame = minutes("dgx-a100", "A100-80GB", T0, 59, util=15.0, mem_gib=9.0)
    assert wasted_runs(frame, NO_CLOUD, catalog, cfg, now=T0).height == 0


def test_a_gpu_that_needs_its_memory_is_not_over_powered(cfg, catalog):
    frame = minutes("dgx-a100", "A100-80GB", T0, 90, util=15.0, mem_gib=60.0)
    assert wasted_runs(frame, NO_CLOUD, catalog, cfg, now=T0).height == 0


def test_a_billed_cloud_gpu_without_a_process_is_held_by_its_tag(cfg, catalog):
    frame = pl.concat(
        [
            minutes(H100_HOST, "H100", T0, 40, util=0.0, sm=0.0, workload=None),
            minutes("dgx-a100", "A100-80GB", T0, 40, util=0.0, workload=None, gpu_uuid="GPU-l"),
        ]
    )
    runs = wasted_runs(frame, P5, catalog, cfg, now=T0)
    # the cloud instance's owner pays for it; a local GPU with no process is spare capacity
    assert runs.select("host", "workload").rows() == [(H100_HOST, "research-notebook")]


def test_a_run_is_ongoing_until_its_gpu_reports_otherwise_or_goes_quiet(cfg, catalog):
    frame = minutes(H100_HOST, "H100", T0, 40, util=0.0, sm=0.0)
    end = T0 + timedelta(minutes=40)
    assert wasted_runs(frame, P5, catalog, cfg, now=end).item(0, "ongoing") is True
    stale = end + timedelta(minutes=16)
    assert wasted_runs(frame, P5, catalog, cfg, now=stale).item(0, "ongoing") is False


def test_one_missing_minute_keeps_a_run_a_longer_gap_splits_it(cfg, catalog):
    one_gap = pl.concat(
        [
            minutes(H100_HOST, "H100", T0, 20, util=0.0, sm=0.0),
            minutes(H100_HOST, "H100", T0 + timedelta(minutes=21), 20, util=0.0, sm=0.0),
        ]
    )
    runs = wasted_runs(one_gap, P5, catalog, cfg, now=T0)
    assert runs.height == 1 and runs.item(0, "duration_s") == 40 * 60
    two_gap = pl.concat(
        [
            minutes(H100_HOST, "H100", T0, 20, util=0.0, sm=0.0),
            minutes(H100_HOST, "H100", T0 + timedelta(minutes=22), 20, util=0.0, sm=0.0),
        ]
    )
    assert wasted_runs(two_gap, P5, catalog, cfg, now=T0).height == 0


def test_five_minute_samples_make_one_run(cfg, catalog):
    """One rollup row every 5 minutes (each standing for 300 s) is continuous, not gappy."""
    frame = minutes(H100_HOST, "H100", T0, 60, util=0.0, sm=0.0, seconds=300.0)
    frame = frame.filter(pl.col("minute").dt.minute() % 5 == 0)
    run = wasted_runs(frame, P5, catalog, cfg, now=T0).row(0, named=True)
    assert run["duration_s"] == 12 * 300
    assert run["ended_at"] - run["started_at"] == timedelta(minutes=60)


def test_cost_rates_split_a_shared_gpu_and_add_energy_locally(cfg, catalog):
    shared = pl.concat(
        [
            minutes(
                "dgx-a100", "A100-80GB", T0, 1, util=50, workload="a", seconds=45.0, power_w=300.0
            ),
            minutes(
                "dgx-a100", "A100-80GB", T0, 1, util=50, workload="b", seconds=15.0, power_w=300.0
            ),
            minutes(H100_HOST, "H100", T0, 1, util=0, sm=0, workload=None, gpu_uuid="GPU-h"),
        ]
    )
    rates = cost_rates_now(shared, P5, catalog, cfg, now=T0)
    got = {r["workload"]: r for r in rates.iter_rows(named=True)}
    # 300 W x PUE 1.4 x $0.15/kWh = $0.063/h of energy, split 3:1 like the GPU's time
    assert got["a"]["usd_per_hour"] == pytest.approx(0.75 * A100_LOCAL)
    assert got["a"]["energy_usd_per_hour"] == pytest.approx(0.75 * 0.3 * 1.4 * 0.15)
    assert got["b"]["usd_per_hour"] == pytest.approx(0.25 * A100_LOCAL)
    assert got["research-notebook"]["usd_per_hour"] == pytest.approx(6.88)
    assert got["research-notebook"]["energy_usd_per_hour"] == 0.0


def test_runs_from_the_warehouse_rollups_of_10_second_samples(cfg, catalog):
    """The real path: spool batches -> warehouse minute rollups -> runs."""
    from cli import app

    with app.open_warehouse(cfg) as wh:
        ingest(
            cfg,
            wh,
            p5_bill(),
            notebook(T0, 45, idle=True, interval_s=10),
            notebook(T0 + timedelta(minutes=45), 10, idle=False, interval_s=10),
        )
        reach = pl.DataFrame(
            schema={"host": pl.String, "gpu_uuid": pl.String, "since": pl.Datetime("us", "UTC")}
        )
        frame = store.recent_minutes(wh, T0 - timedelta(hours=1), reach)
        bills = store.cloud_instances(wh, [H100_HOST], T0 - timedelta(days=1))
    assert bills.rows() == [(H100_HOST, "p5.4xlarge", "research-notebook")]
    runs = wasted_runs(frame, bills, catalog, cfg, now=T0 + timedelta(minutes=55))
    assert runs.height == 1
    run = runs.row(0, named=True)
    assert run["gpu_uuid"] == H100_UUID
    assert run["duration_s"] == pytest.approx(2700)  # 270 samples x 10 s
    assert run["wasted_usd"] == pytest.approx(5.16)
