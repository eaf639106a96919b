from datetime import UTC, datetime

import polars as pl
import pytest

from collectors.errors import InputError
from collectors.gpu.samples_file import read_samples_file

HEADER = "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,workload\n"


def _write(tmp_path, body: str, name: str = "s.csv"):
    p = tmp_path / name
    p.write_text(HEADER + body)
    return p


def test_iso_with_offset_and_epoch_seconds_are_both_read(tmp_path):
    p = _write(
        tmp_path,
        "2026-11-27T10:00:00+02:00,ws1,GPU-a,RTX 4090,55,1000,24564,200.5,vision\n"
        "1795773601,ws1,GPU-a,RTX 4090,0,0,24564,20,\n",
    )
    f = read_samples_file(p)
    assert f["ts"].to_list() == [
        datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
        datetime.fromtimestamp(1795773601, UTC),
    ]
    assert f["workload"].to_list() == ["vision", None]
    assert f["activity_kind"].to_list() == ["nvml_util", "nvml_util"]
    assert f["source"].unique().to_list() == ["import"]


def test_parquet_is_read_too(tmp_path):
    p = tmp_path / "s.parquet"
    pl.DataFrame(
        {
            "ts": [datetime(2026, 11, 27, tzinfo=UTC)],
            "host": ["h"],
            "gpu_uuid": ["GPU-1"],
            "gpu_model": ["H100"],
            "util_pct": [90.0],
            "mem_used_mib": [100.0],
            "mem_total_mib": [81559.0],
            "power_w": [500.0],
            "sm_active_pct": [40.0],
        }
    ).write_parquet(p)
    f = read_samples_file(p)
    assert f.height == 1 and f["sm_active_pct"][0] == 40.0 and f["activity_kind"][0] == "dcgm"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "2026-11-27T10:00:00+00:00,h,g,m,50,1,2,3,\n27/11/2026 10:00,h,g,m,50,1,2,3,\n",
            "s.csv: row 3, column ts: '27/11/2026 10:00' is not a timestamp",
        ),
        (
            "2026-11-27T10:00:00,h,g,m,50,1,2,3,\n",
            "s.csv: row 2, column ts: '2026-11-27T10:00:00' is not a timestamp",
        ),
        (
            "2026-11-27T10:00:00Z,h,g,m,-5,1,2,3,\n",
            "s.csv: row 2, column util_pct: -5.0 is out of range",
        ),
        ("2026-11-27T10:00:00Z,h,g,m,150,1,2,3,\n", "column util_pct: 150.0 is out of range"),
        ("2026-11-27T10:00:00Z,h,g,m,fifty,1,2,3,\n", "column util_pct: 'fifty' is not a number"),
        ("2026-11-27T10:00:00Z,,g,m,5,1,2,3,\n", "row 2, column host: value required"),
        ("2026-11-27T10:00:00Z,h,g,m,5,9,2,3,\n", "column mem_used_mib: memory used exceeds"),
    ],
)
def test_bad_rows_are_refused_naming_file_row_and_column(tmp_path, body, expected):
    p = _write(tmp_path, body)
    with pytest.raises(InputError) as err:
        read_samples_file(p)
    assert str(err.value).startswith(str(tmp_path))
    assert expected in str(err.value)


def test_a_missing_column_is_named(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("ts,host\n2026-11-27T10:00:00Z,h\n")
    with pytest.raises(InputError, match="missing required column.*gpu_uuid"):
        read_samples_file(p)


MIG_HEADER = (
    "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,parent_gpu_uuid,"
    "mig_profile,tensor_active_pct,source\n"
)


def test_mig_rows_come_back_without_utilization_and_with_their_board(tmp_path):
    p = tmp_path / "mig.csv"
    p.write_text(
        MIG_HEADER
        + "2026-07-14T09:00:44+00:00,h,GPU-b,H100,40,11125,81559,433.78,,,12.5,smi\n"
        + "2026-07-14T09:00:44+00:00,h,MIG-1,H100,,11091,40448,,GPU-b,3g.40gb,,smi\n"
    )
    f = read_samples_file(p)
    assert f.select("gpu_uuid", "util_pct", "parent_gpu_uuid", "mig_profile").rows() == [
        ("GPU-b", 40.0, None, None),
        ("MIG-1", None, "GPU-b", "3g.40gb"),
    ]
    assert f["tensor_active_pct"].to_list() == [12.5, None]
    assert f["source"].to_list() == ["smi", "smi"]  # as the agent wrote it


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # A whole GPU with no utilization and nothing saying why: still refused.
        ("2026-07-14T09:00:44Z,h,GPU-b,H100,,1,2,3,,,,", "row 2, column util_pct: value required"),
        ("2026-07-14T09:00:44Z,h,GPU-b,H100,5,1,2,3,,,101,", "column tensor_active_pct: 101.0"),
        ("2026-07-14T09:00:44Z,h,GPU-b,H100,5,1,2,3,,,,nvidia", "column source: must be one of"),
    ],
)
def test_the_agents_columns_are_checked_too(tmp_path, row, expected):
    p = tmp_path / "s.csv"
    p.write_text(MIG_HEADER + row + "\n")
    with pytest.raises(InputError, match=expected):
        read_samples_file(p)


def test_a_gpu_without_utilization_comes_back_where_the_row_states_its_activity_kind(tmp_path):
    """The agent writes `activity_kind` on every row: a GPU whose utilization nvidia-smi read as
    [N/A] comes back with util_pct empty (unknown), not refused and not 0."""
    p = tmp_path / "s.csv"
    p.write_text(
        "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,activity_kind\n"
        "2026-07-14T09:00:44Z,h,GPU-b,A100,,5,40960,55.5,nvml_util\n"
    )
    assert read_samples_file(p)["util_pct"].to_list() == [None]


# Record times and required measures (issue 14): a refused row, never a stored NULL or a time
# that overflows later.
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ts", "words"),
    [
        ("", "row 3, column ts: value required"),
        ("2199-01-01T00:00:00+00:00", "row 3, column ts: 2199-01-01"),
        ("2026-11-27T12:06:00+00:00", "more than 5 minutes after the clock"),
        ("1700000000000", "row 3, column ts: +55840"),  # epoch milliseconds read as seconds
        ("9999-12-31T23:59:59+00:00", "row 3, column ts: 9999-12-31"),
        ("0001-01-01T00:00:00+00:00", "before 2000-01-01"),
        ("946684799", "row 3, column ts: 1999-12-31 23:59:59"),  # epoch seconds, just too early
    ],
)
def test_implausible_sample_times_are_refused(tmp_path, ts, words):
    p = _write(tmp_path, f"2026-11-27T10:00:00Z,h,g,m,5,1,2,3,\n{ts},h,g,m,5,1,2,3,\n")
    with pytest.raises(InputError) as err:
        read_samples_file(p, now=NOW)
    assert words in str(err.value)


def test_a_clock_a_few_minutes_fast_is_tolerated(tmp_path):
    p = _write(tmp_path, "2026-11-27T12:04:59Z,h,g,m,5,1,2,3,\n")
    assert read_samples_file(p, now=NOW).height == 1


@pytest.mark.parametrize("column", ["mem_used_mib", "mem_total_mib", "power_w"])
def test_an_empty_required_number_is_a_refused_row(tmp_path, column):
    values = {"mem_used_mib": "1", "mem_total_mib": "2", "power_w": "3", column: ""}
    row = f"2026-11-27T10:00:00Z,h,g,m,5,{values['mem_used_mib']},{values['mem_total_mib']},"
    p = _write(tmp_path, "2026-11-27T10:00:00Z,h,g,m,5,1,2,3,\n" + row + values["power_w"] + ",\n")
    with pytest.raises(InputError, match=f"row 3, column {column}: value required"):
        read_samples_file(p, now=NOW)


def test_the_agents_own_rows_may_leave_power_empty(tmp_path):
    """A GPU without a power sensor: the agent writes activity_kind, and power empty."""
    p = tmp_path / "s.csv"
    p.write_text(
        "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,activity_kind\n"
        "2026-07-14T09:00:44Z,h,GPU-b,A100,5,5,40960,,nvml_util\n"
    )
    assert read_samples_file(p, now=NOW)["power_w"].to_list() == [None]


def test_rows_are_named_by_their_file_row_across_chunks(tmp_path):
    from collectors.gpu.samples_file import iter_samples_file

    good = "".join(f"2026-11-27T10:00:{i:02d}Z,h,g,m,5,1,2,3,\n" for i in range(7))
    p = _write(tmp_path, good + "2026-11-27T10:01:00Z,h,g,m,500,1,2,3,\n")
    chunks = iter_samples_file(p, now=NOW, chunk_rows=3)
    assert next(chunks).height == 3  # rows 2-4, handed over before the bad one is read
    with pytest.raises(InputError, match="row 9, column util_pct"):
        list(chunks)
