"""GPU time per workload, GPU and hour: shared GPUs split by SM share, else memory share."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from advisor.attribution import IDLE, hourly_usage, minute_shares, split_shared_minutes

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
MINUTE_SCHEMA = {
    "minute": pl.Datetime("us", "UTC"),
    "host": pl.String,
    "gpu_uuid": pl.String,
    "gpu_model": pl.String,
    "workload": pl.String,
    "seconds": pl.Float64,
    "busy_seconds": pl.Float64,
    "energy_j": pl.Float64,
    "mem_used_max_mib": pl.Float64,
    "mem_total_mib": pl.Float64,
}
SHARE_SCHEMA = {
    "minute": pl.Datetime("us", "UTC"),
    "host": pl.String,
    "gpu_uuid": pl.String,
    "workload": pl.String,
    "sm_pct_sum": pl.Float64,
    "sm_samples": pl.Int64,
    "used_mib_sum": pl.Float64,
    "samples": pl.Int64,
}


def minute_row(i, workload, seconds=60.0, busy=30.0, energy=12000.0, mem=20000.0):
    return (
        T0 + timedelta(minutes=i),
        "h1",
        "GPU-1",
        "A100-80GB",
        workload,
        seconds,
        busy,
        energy,
        mem,
        81920.0,
    )


def minutes(*rows):
    return pl.DataFrame(list(rows), schema=MINUTE_SCHEMA, orient="row")


def process_minutes(*rows):
    return pl.DataFrame(
        [(T0 + timedelta(minutes=i), "h1", "GPU-1", *rest) for i, *rest in rows],
        schema=SHARE_SCHEMA,
        orient="row",
    )


@pytest.mark.parametrize(
    ("procs", "expected"),
    [
        # SM shares known: 60 % and 20 % of the SM -> 3/4 and 1/4 of the minute.
        (
            [(0, "train", 360.0, 6, 30000.0, 6), (0, "eval", 120.0, 6, 10000.0, 6)],
            {"train": 0.75, "eval": 0.25},
        ),
        # No SM shares (NVML could not tell): memory 30 GiB against 10 GiB.
        (
            [(0, "train", None, 0, 30720.0, 6), (0, "eval", None, 0, 10240.0, 6)],
            {"train": 0.75, "eval": 0.25},
        ),
        # SM reported but nobody ran a kernel (0 %): memory decides.
        (
            [(0, "train", 0.0, 6, 12000.0, 6), (0, "eval", 0.0, 6, 36000.0, 6)],
            {"train": 0.25, "eval": 0.75},
        ),
        # Neither known: an even split.
        ([(0, "a", None, 0, None, 6), (0, "b", None, 0, None, 6)], {"a": 0.5, "b": 0.5}),
    ],
)
def test_shares_of_a_shared_gpu_minute(procs, expected):
    shares = minute_shares(process_minutes(*procs))
    assert dict(shares.select("workload", "share").iter_rows()) == pytest.approx(expected)


def test_a_shared_minute_is_split_and_nothing_is_lost():
    # The rollup names the dominant workload for the whole minute (60 s, 30 s busy, 12 kJ).
    frame = minutes(minute_row(0, "train"), minute_row(1, None, busy=0.0, energy=3000.0))
    shares = minute_shares(
        process_minutes((0, "train", 360.0, 6, 30000.0, 6), (0, "eval", 120.0, 6, 10000.0, 6))
    )
    out = split_shared_minutes(frame, shares)
    rows = {(r["minute"], r["workload"]): r for r in out.iter_rows(named=True)}
    train, evaluation = rows[(T0, "train")], rows[(T0, "eval")]
    assert (train["seconds"], train["busy_seconds"], train["energy_j"]) == (45.0, 22.5, 9000.0)
    assert (evaluation["seconds"], evaluation["busy_seconds"]) == (15.0, 7.5)
    # Each workload's memory is what its processes held that minute (sum / samples).
    assert train["mem_used_max_mib"] == 5000.0 and evaluation["mem_used_max_mib"] == pytest.approx(
        10000.0 / 6
    )
    assert rows[(T0 + timedelta(minutes=1), None)]["seconds"] == 60.0
    for column in ("seconds", "busy_seconds", "energy_j"):
        assert out[column].sum() == pytest.approx(frame[column].sum())


def test_hourly_usage_adds_up_per_workload_gpu_and_hour_with_idle_as_its_own_row():
    rows = [minute_row(i, "train") for i in range(30)]
    rows += [minute_row(30 + i, None, busy=0.0, energy=3000.0, mem=500.0) for i in range(30)]
    rows += [minute_row(60 + i, "train", busy=60.0) for i in range(60)]  # the next hour
    out = hourly_usage(minutes(*rows), minute_shares(process_minutes()))
    got = {(r["hour"].hour, r["workload"]): r for r in out.iter_rows(named=True)}
    assert set(got) == {(10, "train"), (10, IDLE), (11, "train")}
    assert got[(10, "train")]["seconds"] == 1800.0
    assert got[(10, "train")]["busy_seconds"] == 900.0
    assert got[(10, IDLE)]["seconds"] == 1800.0 and got[(10, IDLE)]["busy_seconds"] == 0.0
    assert got[(10, IDLE)]["energy_j"] == 30 * 3000.0
    assert got[(11, "train")]["busy_seconds"] == 3600.0
    assert got[(10, "train")]["mem_peak_mib"] == 20000.0


def test_no_minutes_give_an_empty_frame_of_the_right_shape():
    out = hourly_usage(minutes())
    assert out.height == 0 and "busy_seconds" in out.columns
