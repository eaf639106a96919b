"""A MIG board is one GPU in the minute rollups (warehouse/mig.py): its time split over its
instances by compute slices, the unpartitioned rest `__idle__`, activity unknown where no signal
exists. Figures worked by hand in the comments."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from collectors.gpu.prometheus import parse_exposition
from tests.warehouse.mig_samples import (
    BOARD,
    FIVE,
    T0,
    board_samples,
    every,
    ingest_each,
    minute_rows,
)
from warehouse.mig import UNPARTITIONED, board_slices, profile_slices

TWO_HOURS = 7200.0


def per_gpu(frame: pl.DataFrame) -> dict[str, dict[str, float]]:
    sums = frame.group_by("gpu_uuid").agg(
        pl.col("seconds", "busy_seconds", "activity_seconds", "energy_j").sum(),
        pl.col("board_share").mean(),
        pl.col("mig_profile").first(),
        pl.col("workload").first(),
    )
    return {r["gpu_uuid"]: r for r in sums.iter_rows(named=True)}


@pytest.mark.parametrize(
    ("profile", "slices"),
    [
        ("1g.10gb", 1),
        ("2g.20gb", 2),
        ("3g.40gb", 3),
        ("4g.40gb", 4),
        ("7g.80gb", 7),
        ("1g.10gb+me", 1),  # a media-extension profile is still one slice
        ("1c.3g.40gb", 1),  # a compute instance: 1 of its GPU instance's 3 slices
        ("2c.3g.40gb", 2),
        ("unpartitioned", None),
        (None, None),
    ],
)
def test_profile_slices(profile, slices):
    got = pl.select(profile_slices(pl.lit(profile, pl.String))).item()
    assert got == slices


@pytest.mark.parametrize(
    ("model", "slices"),
    [
        ("NVIDIA A30", 4),
        ("NVIDIA A100-SXM4-80GB", 7),
        ("NVIDIA H100 80GB HBM3", 7),
        ("NVIDIA H200", 7),
        ("NVIDIA B200", 7),
        ("NVIDIA GH200 480GB", 7),
        ("Some Future GPU", 7),  # a model it does not know: 7, the common case
        (None, 7),
    ],
)
def test_board_slices(model, slices):
    assert pl.select(board_slices(pl.lit(model, pl.String))).item() == slices


def test_five_instances_over_two_hours_are_two_gpu_hours(cfg):
    """NVML's shape (no board row): 1g+1g+1g+2g+2g on an H200, a sample a minute for 2 hours,
    ingested in four batches. Each instance's own seconds are 120 x 60 s = 7,200 s; its share is
    slices / 7, so 1g = 7,200 / 7 = 1,028.57 s and 2g = 2 x 7,200 / 7 = 2,057.14 s; together
    exactly 7,200 s = 2.0 GPU-hours, not 5 x 2 = 10."""
    times = every(T0, 60, 120)
    ingest_each(cfg, *(board_samples(times[i : i + 30]) for i in range(0, 120, 30)))
    rows = minute_rows(cfg)
    assert rows["seconds"].sum() == pytest.approx(TWO_HOURS)
    got = per_gpu(rows)
    assert set(got) == {uuid for uuid, _, _ in FIVE}  # all 7 slices held: no remainder row
    for uuid, profile, workload in FIVE:
        slices = int(profile[0])
        assert got[uuid]["seconds"] == pytest.approx(TWO_HOURS * slices / 7), uuid
        assert got[uuid]["board_share"] == pytest.approx(slices / 7)
        assert got[uuid]["workload"] == workload
        # No utilization on MIG and no DCGM profiling: activity unknown, never 0 % busy.
        assert got[uuid]["activity_seconds"] == 0.0 and got[uuid]["busy_seconds"] == 0.0
    assert rows["parent_gpu_uuid"].unique().to_list() == [BOARD]


def test_unpartitioned_slices_are_the_board_and_its_power_is_split(cfg):
    """nvidia-smi's shape: a board row with 350 W and four instances 1g+1g+2g+2g = 6 of 7
    slices, 2 hours at 60 s. Energy is the board's: 350 W x 7,200 s = 2,520,000 J, 360,000 J a
    slice; the seventh slice (7,200 / 7 = 1,028.57 s, 360,000 J) is the board's own row with no
    workload (`__idle__`) and unknown activity. The board row is never a GPU of its own."""
    four = [i for i in FIVE if i[0] != "MIG-1g-c"]
    times = every(T0, 60, 120)
    ingest_each(cfg, board_samples(times[:60], four, board_power_w=350.0, source="smi"))
    ingest_each(cfg, board_samples(times[60:], four, board_power_w=350.0, source="smi"))
    rows = minute_rows(cfg)
    assert rows["seconds"].sum() == pytest.approx(TWO_HOURS)
    assert rows["energy_j"].sum() == pytest.approx(350.0 * TWO_HOURS)
    got = per_gpu(rows)
    rest = got[BOARD]
    assert rest["mig_profile"] == UNPARTITIONED and rest["workload"] is None
    assert rest["seconds"] == pytest.approx(TWO_HOURS / 7)
    assert rest["energy_j"] == pytest.approx(360_000.0)
    assert rest["activity_seconds"] == 0.0
    assert got["MIG-2g-a"]["seconds"] == pytest.approx(2 * TWO_HOURS / 7)
    assert got["MIG-2g-a"]["energy_j"] == pytest.approx(720_000.0)
    # Power on an instance's row is its share of the board's: 350 W x 2/7 = 100 W.
    power = rows.filter(pl.col("gpu_uuid") == "MIG-2g-a")["power_avg_w"]
    assert power.to_list() == pytest.approx([100.0] * 120)


def test_an_instance_removed_midway_leaves_its_slice_idle_and_the_board_exact(cfg):
    """The first hour all five instances; then MIG-1g-c is destroyed (4 instances, 6 slices).
    The second batch recomputes the first batch's last 10 minutes, MIG-1g-c's rows included (it
    has no new samples: the board's instances are read back by their parent). MIG-1g-c: 60 x 60 s
    x 1/7 = 514.29 s; the board's remainder in the second hour 3,600 / 7 = 514.29 s; the board
    still adds up to 7,200 s."""
    four = [i for i in FIVE if i[0] != "MIG-1g-c"]
    times = every(T0, 60, 120)
    ingest_each(cfg, board_samples(times[:60]), board_samples(times[60:], four))
    rows = minute_rows(cfg)
    assert rows["seconds"].sum() == pytest.approx(TWO_HOURS)
    got = per_gpu(rows)
    assert got["MIG-1g-c"]["seconds"] == pytest.approx(3600.0 / 7)
    assert got[BOARD]["seconds"] == pytest.approx(3600.0 / 7)
    assert rows.filter(pl.col("gpu_uuid") == BOARD)["minute"].min() == T0 + timedelta(hours=1)


def test_dcgm_profiling_gives_an_instance_known_activity(cfg):
    """SM active 40 % on every instance (DCGM_FI_PROF_SM_ACTIVE per GPU instance): a 2g's
    busy seconds are 2,057.14 s x 0.4 = 822.86 s, all of its seconds with a signal."""
    ingest_each(cfg, board_samples(every(T0, 60, 120), sm=40.0, source="prometheus"))
    got = per_gpu(minute_rows(cfg))
    two_g = 2 * TWO_HOURS / 7
    assert got["MIG-2g-b"]["activity_seconds"] == pytest.approx(two_g)
    assert got["MIG-2g-b"]["busy_seconds"] == pytest.approx(two_g * 0.4)


def test_an_a30_has_four_slices_and_compute_instances_share_their_gpu_instance(cfg):
    """An A30 (4 slices): a 2g.12gb GPU instance split into compute instances 1c.2g.12gb twice,
    and a 1g.6gb; the fourth slice is unpartitioned. Shares 1/4, 1/4, 1/4 and 1/4 of 3,600 s =
    900 s each. Both compute instances report their GPU instance's 5,000 MiB: per GPU that is
    their memory, never a sum."""
    instances = [
        ("MIG-ci-0", "1c.2g.12gb", "a"),
        ("MIG-ci-1", "1c.2g.12gb", "b"),
        ("MIG-1g", "1g.6gb", "c"),
    ]
    ingest_each(
        cfg,
        board_samples(
            every(T0, 60, 60), instances, model="NVIDIA A30", board="GPU-a30", mem_used_mib=5000
        ),
    )
    rows = minute_rows(cfg)
    got = per_gpu(rows)
    assert {u: round(g["seconds"], 6) for u, g in got.items()} == {
        "MIG-ci-0": 900.0,
        "MIG-ci-1": 900.0,
        "MIG-1g": 900.0,
        "GPU-a30": 900.0,
    }
    assert rows.filter(pl.col("gpu_uuid") == "MIG-ci-0")["mem_used_max_mib"].max() == 5000.0


def test_gpus_not_in_mig_mode_are_whole_gpus(cfg):
    """A plain GPU next to a MIG board keeps its seconds and a board share of 1."""
    plain = board_samples(every(T0, 60, 10), [], board_power_w=200.0, board="GPU-plain")
    plain = plain.with_columns(util_pct=pl.lit(50.0), workload=pl.lit("x"))
    ingest_each(cfg, pl.concat([plain, board_samples(every(T0, 60, 10))]))
    got = per_gpu(minute_rows(cfg))
    assert got["GPU-plain"]["seconds"] == pytest.approx(600.0)
    assert got["GPU-plain"]["board_share"] == 1.0
    assert got["GPU-plain"]["activity_seconds"] == pytest.approx(600.0)
    assert got["GPU-plain"]["busy_seconds"] == pytest.approx(300.0)


def dcgm_page(sm_3g: float, sm_2g: float) -> str:
    """A dcgm-exporter page of an H100 in MIG mode: the board's power, and per GPU instance
    (GPU_I_ID / GPU_I_PROFILE labels) SM active and memory."""
    board = 'gpu="0",UUID="GPU-b",modelName="NVIDIA H100 80GB HBM3",Hostname="dcgm-node"'
    three = f'{board},GPU_I_ID="2",GPU_I_PROFILE="3g.40gb"'
    two = f'{board},GPU_I_ID="5",GPU_I_PROFILE="2g.20gb"'
    return "\n".join(
        [
            f"DCGM_FI_DEV_POWER_USAGE{{{board}}} 300",
            f"DCGM_FI_PROF_SM_ACTIVE{{{three}}} {sm_3g}",
            f"DCGM_FI_DEV_FB_USED{{{three}}} 11091",
            f"DCGM_FI_PROF_SM_ACTIVE{{{two}}} {sm_2g}",
            f"DCGM_FI_DEV_FB_USED{{{two}}} 17",
        ]
    )


def test_a_dcgm_exporter_mig_page_gives_instances_their_activity(cfg):
    """Two pages a minute apart: each stands for 60 s, the board for 120 s. The 3g.40gb instance
    (GPU_I_ID 2) gets 120 x 3/7 = 51.43 s, busy at 25 % SM active = 12.86 s; the 2g.20gb 34.29 s,
    busy 50 % = 17.14 s; the 2 unpartitioned slices 34.29 s, activity unknown. The board's
    300 W x 120 s = 36,000 J split the same way: the 3g 15,428.6 J."""
    pages = [
        parse_exposition(dcgm_page(0.25, 0.5), ts=T0).gpu_samples,
        parse_exposition(dcgm_page(0.25, 0.5), ts=T0 + timedelta(seconds=60)).gpu_samples,
    ]
    ingest_each(cfg, pl.concat(pages))
    got = per_gpu(minute_rows(cfg))
    assert got["GPU-b/gi2"]["seconds"] == pytest.approx(120 * 3 / 7)
    assert got["GPU-b/gi2"]["busy_seconds"] == pytest.approx(120 * 3 / 7 * 0.25)
    assert got["GPU-b/gi2"]["activity_seconds"] == pytest.approx(120 * 3 / 7)
    assert got["GPU-b/gi2"]["energy_j"] == pytest.approx(36_000 * 3 / 7)
    assert got["GPU-b/gi5"]["busy_seconds"] == pytest.approx(120 * 2 / 7 * 0.5)
    assert got["GPU-b"]["seconds"] == pytest.approx(120 * 2 / 7)
    assert got["GPU-b"]["activity_seconds"] == 0.0
    assert sum(g["seconds"] for g in got.values()) == pytest.approx(120.0)


def test_migration_5_fills_in_the_activity_of_minutes_and_results_rolled_up_before(
    tmp_path, monkeypatch
):
    """A warehouse from before migration 5: a minute with an average utilization had a signal in
    all its seconds, one without had none; stored results counted busy over every second."""
    import duckdb

    from warehouse import schema

    db = tmp_path / "w.duckdb"
    monkeypatch.setattr(schema, "MIGRATIONS", [m for m in schema.MIGRATIONS if m[0] < 5])
    con = duckdb.connect(str(db))
    schema.migrate(con)
    con.execute(
        "INSERT INTO gpu_minute (minute, host, gpu_uuid, seconds, busy_seconds, util_avg)"
        " VALUES (TIMESTAMPTZ '2026-01-01 00:00:00+00', 'h', 'G', 60, 30, 50),"
        " (TIMESTAMPTZ '2026-01-01 00:01:00+00', 'h', 'G', 60, 0, NULL)"
    )
    con.execute("INSERT INTO results_daily_ledger (day, gpu_hours) VALUES ('2026-01-01', 2.0)")
    monkeypatch.undo()
    schema.migrate(con)
    rows = con.execute(
        "SELECT activity_seconds, board_share, parent_gpu_uuid FROM gpu_minute ORDER BY minute"
    ).fetchall()
    assert rows == [(60.0, 1.0, None), (0.0, 1.0, None)]
    assert con.execute("SELECT activity_gpu_hours FROM results_daily_ledger").fetchall() == [(2.0,)]
    con.close()
