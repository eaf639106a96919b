"""collectors/gpu/smi.py against the real nvidia-smi captures in tests/fixtures/realdata.

Expected figures are read from the raw files with regexes or the csv module, never through the
parser under test.
"""

from __future__ import annotations

import csv
import io
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from collectors.gpu import smi
from collectors.gpu.workload_rules import ProcessAttributor
from tables.records import GPU_SAMPLE_SCHEMA, PROCESS_SAMPLE_SCHEMA, Batch

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "realdata"
XML_FILES = sorted((REAL / "nvidia-smi-xml-datakit").glob("*.xml"))
CAPTURES = sorted((REAL / "nvidia-smi-captures-utkuozdemir" / "captures").glob("*.txt"))
CSV_DIR = REAL / "nvidia-smi-captures-utkuozdemir" / "query-gpu-csv"
QUERY_GPU = sorted(CSV_DIR.glob("*__query-gpu.csv"))
COMPUTE_APPS = sorted(CSV_DIR.glob("*__query-compute-apps.csv"))
MIG_CAPTURE = CAPTURES[0].parent / "linux-x86_64__nvidia-h100-mig__590.48.01.txt"


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _value(raw: str | None) -> float | None:
    """`'19818 MiB'` -> 19818.0, `'[N/A]'` -> None (the test's own reading of a raw value)."""
    if raw is None or raw.strip().startswith("[") or raw.strip() == "N/A":
        return None
    return float(raw.split()[0])


def _csv_dicts(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.strip()), skipinitialspace=True))


def test_every_capture_file_is_a_fixture() -> None:
    assert (len(XML_FILES), len(CAPTURES), len(QUERY_GPU), len(COMPUTE_APPS)) == (3, 8, 16, 16)
    assert any("windows" in p.name for p in CAPTURES) and MIG_CAPTURE.exists()


# ---------------------------------------------------------------- XML


@pytest.mark.parametrize("path", XML_FILES, ids=_ids(XML_FILES))
def test_xml_capture_matches_raw_text(path: Path) -> None:
    text = path.read_text()
    batch = smi.parse_capture_file(path)
    gpus, procs = batch.gpu_samples, batch.process_samples
    fb = re.search(
        r"<fb_memory_usage>\s*<total>(\d+) MiB</total>.*?<used>(\d+) MiB</used>", text, re.S
    )
    stamp = re.search(r"<timestamp>(.*?)</timestamp>", text).group(1)
    power = re.search(r"<power_draw>(.*?)</power_draw>", text).group(1)
    pids = re.findall(r"<process_info>.*?<pid>(\d+)</pid>", text, re.S)

    assert gpus.height == len(re.findall(r"<gpu id=", text)) == 1
    row = gpus.row(0, named=True)
    assert row["gpu_model"] == re.search(r"<product_name>(.*?)</product_name>", text).group(1)
    assert row["gpu_uuid"] == re.search(r"<uuid>(.*?)</uuid>", text).group(1)
    assert (row["mem_total_mib"], row["mem_used_mib"]) == (float(fb.group(1)), float(fb.group(2)))
    assert row["util_pct"] == float(re.search(r"<gpu_util>(\d+) %</gpu_util>", text).group(1))
    assert row["power_w"] == _value(power)
    assert row["ts"] == datetime.strptime(" ".join(stamp.split()), "%a %b %d %H:%M:%S %Y").replace(
        tzinfo=UTC
    )
    assert (row["source"], row["activity_kind"], row["host"]) == ("smi", "nvml_util", path.stem)
    assert sorted(procs["pid"].to_list()) == sorted(map(int, pids))
    assert procs["gpu_uuid"].unique().to_list() in ([], [row["gpu_uuid"]])
    assert gpus.schema == pl.Schema(GPU_SAMPLE_SCHEMA)
    assert procs.schema == pl.Schema(PROCESS_SAMPLE_SCHEMA)


MIG_XML = """<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
<nvidia_smi_log>
  <timestamp>Tue Jul 14 09:00:44 2026</timestamp>
  <gpu id="00000000:00:09.0">
    <product_name>NVIDIA H100 80GB HBM3</product_name>
    <mig_mode><current_mig>Enabled</current_mig></mig_mode>
    <mig_devices>
      <mig_device>
        <index>0</index><gpu_instance_id>2</gpu_instance_id>
        <compute_instance_id>0</compute_instance_id>
        <fb_memory_usage><total>40448 MiB</total><used>11091 MiB</used></fb_memory_usage>
      </mig_device>
      <mig_device>
        <index>1</index><gpu_instance_id>3</gpu_instance_id>
        <compute_instance_id>0</compute_instance_id>
        <uuid>MIG-11111111-1111-1111-1111-111111111111</uuid>
        <fb_memory_usage><total>20096 MiB</total><used>17 MiB</used></fb_memory_usage>
      </mig_device>
    </mig_devices>
    <uuid>GPU-aaaaaaaa-0000-0000-0000-000000000000</uuid>
    <minor_number>3</minor_number>
    <fb_memory_usage><total>81559 MiB</total><used>11125 MiB</used></fb_memory_usage>
    <utilization><gpu_util>N/A</gpu_util></utilization>
    <temperature><gpu_temp>53 C</gpu_temp></temperature>
    <gpu_power_readings>
      <power_draw>N/A</power_draw><average_power_draw>432.21 W</average_power_draw>
    </gpu_power_readings>
    <clocks><sm_clock>1980 MHz</sm_clock></clocks>
    <processes>
      <process_info><gpu_instance_id>2</gpu_instance_id><compute_instance_id>0</compute_instance_id>
        <pid>21180</pid><process_name>/root/tools/memhog</process_name>
        <used_memory>2296 MiB</used_memory></process_info>
      <process_info><gpu_instance_id>3</gpu_instance_id><compute_instance_id>0</compute_instance_id>
        <pid>21198</pid><process_name>./gpu_burn</process_name>
        <used_memory>7484 MiB</used_memory></process_info>
    </processes>
  </gpu>
</nvidia_smi_log>
"""
MIG_LISTING = """GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaaaaaa-0000-0000-0000-000000000000)
  MIG 3g.40gb     Device  0: (UUID: MIG-00000000-0000-0000-0000-000000000000)
  MIG 2g.20gb     Device  1: (UUID: MIG-22222222-2222-2222-2222-222222222222)
"""
BOARD = "GPU-aaaaaaaa-0000-0000-0000-000000000000"


def test_xml_mig_devices_become_rows_with_their_processes() -> None:
    batch = smi.parse_smi_xml(MIG_XML, "h100-node")
    gpus = batch.gpu_samples.sort("gpu_uuid")
    board = gpus.filter(pl.col("parent_gpu_uuid").is_null()).row(0, named=True)
    migs = gpus.filter(pl.col("parent_gpu_uuid") == BOARD)
    assert (board["gpu_uuid"], board["gpu_index"], board["util_pct"]) == (BOARD, 3, None)
    assert (board["power_w"], board["sm_clock_mhz"], board["temperature_c"]) == (432.21, 1980, 53)
    assert migs["gpu_uuid"].to_list() == [
        f"{BOARD}/gi2/ci0",
        "MIG-11111111-1111-1111-1111-111111111111",
    ]
    assert migs["mem_total_mib"].to_list() == [40448, 20096]
    assert migs["mem_used_mib"].to_list() == [11091, 17]
    assert migs["util_pct"].null_count() == 2 and migs["power_w"].null_count() == 2
    owners = dict(batch.process_samples.select("pid", "gpu_uuid").iter_rows())
    assert owners == {21180: f"{BOARD}/gi2/ci0", 21198: "MIG-11111111-1111-1111-1111-111111111111"}


def test_xml_mig_listing_supplies_profiles_and_missing_uuids() -> None:
    migs = smi.parse_smi_xml(MIG_XML, "h100-node", listing=MIG_LISTING).gpu_samples.filter(
        pl.col("parent_gpu_uuid").is_not_null()
    )
    assert dict(migs.select("gpu_uuid", "mig_profile").iter_rows()) == {
        "MIG-00000000-0000-0000-0000-000000000000": "3g.40gb",
        "MIG-11111111-1111-1111-1111-111111111111": "2g.20gb",  # the XML's own UUID wins
    }


def test_xml_with_entity_declarations_is_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><nvidia_smi_log>&a;</nvidia_smi_log>'
    )
    with pytest.raises(ValueError, match="ENTITY"):
        smi.parse_smi_xml(bomb, "h")


def test_malformed_xml_error_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text(XML_FILES[0].read_text()[:2000])
    with pytest.raises(ValueError, match=r"broken\.xml: malformed XML: .*line \d+"):
        smi.parse_capture_file(broken)


def test_xml_non_numeric_reading_names_element() -> None:
    bad = MIG_XML.replace("<gpu_temp>53 C</gpu_temp>", "<gpu_temp>hot</gpu_temp>")
    with pytest.raises(
        ValueError, match=r"<gpu> #0 \(00000000:00:09.0\) temperature/gpu_temp: 'hot'"
    ):
        smi.parse_smi_xml(bad, "h")


# ---------------------------------------------------------------- CSV


@pytest.mark.parametrize("path", QUERY_GPU, ids=_ids(QUERY_GPU))
def test_query_gpu_csv_matches_raw_text(path: Path) -> None:
    expected = _csv_dicts(path.read_text())
    gpus = smi.parse_capture_file(path).gpu_samples
    assert gpus.height == len(expected) == 1
    row, raw = gpus.row(0, named=True), expected[0]
    assert row["gpu_model"] == raw["name"] and row["gpu_uuid"] == raw["uuid"]
    assert row["mem_used_mib"] == _value(raw["memory.used [MiB]"])
    assert row["mem_total_mib"] == _value(raw["memory.total [MiB]"])
    assert row["util_pct"] == _value(raw["utilization.gpu [%]"])
    assert row["power_w"] == _value(raw["power.draw [W]"])
    assert row["sm_clock_mhz"] == _value(raw["clocks.current.sm [MHz]"])
    assert row["ts"] == datetime.strptime(raw["timestamp"], "%Y/%m/%d %H:%M:%S.%f").replace(
        tzinfo=UTC
    )
    assert row["host"] == path.name.split("__idle")[0].split("__load")[0]


@pytest.mark.parametrize("path", COMPUTE_APPS, ids=_ids(COMPUTE_APPS))
def test_compute_apps_csv_matches_raw_text(path: Path) -> None:
    expected = _csv_dicts(path.read_text())
    procs = smi.parse_capture_file(path).process_samples
    assert procs["pid"].to_list() == [int(r["pid"]) for r in expected]
    assert procs["command"].to_list() == [r["process_name"] for r in expected]
    assert procs["used_mib"].to_list() == [_value(r["used_gpu_memory [MiB]"]) for r in expected]
    assert set(procs["gpu_uuid"]) <= {r["gpu_uuid"] for r in expected}


def test_nounits_csv_with_unsupported_fields() -> None:
    text = (
        "timestamp, name, uuid, index, utilization.gpu, memory.used, memory.total, power.draw, "
        "clocks.sm, temperature.gpu\n"
        "2024/01/02 03:04:05.600, NVIDIA A100-SXM4-40GB, GPU-1, 0, 87, 30000, 40960, "
        "[Not Supported], 1410, 61\n"
        "2024/01/02 03:04:05.600, NVIDIA A100-SXM4-40GB, GPU-2, 1, [N/A], 5, 40960, 55.5, 210, 30\n"
    )
    gpus = smi.parse_query_gpu_csv(text, "a100").gpu_samples
    assert gpus.select("gpu_uuid", "gpu_index", "util_pct", "power_w").rows() == [
        ("GPU-1", 0, 87.0, None),
        ("GPU-2", 1, None, 55.5),
    ]
    assert gpus["ts"].to_list() == [datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)] * 2


def test_csv_non_numeric_value_names_file_row_and_field(tmp_path: Path) -> None:
    text = QUERY_GPU[0].read_text().replace(" 0 %,", " lots %,", 1)
    bad = tmp_path / "bad__query-gpu.csv"
    bad.write_text(text)
    with pytest.raises(ValueError, match=r"bad__query-gpu\.csv: row 2 field 'utilization.gpu'"):
        smi.parse_capture_file(bad)


def test_csv_row_with_too_few_values_names_the_row() -> None:
    with pytest.raises(ValueError, match="row 3: 2 values for 3 columns"):
        smi.parse_query_gpu_csv("uuid, name, memory.used [MiB]\nGPU-1, T4, 5 MiB\nGPU-2, T4\n", "h")


def test_ts_argument_overrides_timestamps_in_the_file() -> None:
    when = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    batch = smi.parse_capture_file(COMPUTE_APPS[1], host="explicit", ts=when)
    assert set(batch.process_samples["ts"]) == {when}
    assert set(batch.process_samples["host"]) == {"explicit"}


# ---------------------------------------------------------------- multi-section captures


def _section(text: str, state: str, kind: str) -> str:
    pattern = rf"^# {state} :: {kind} \(.*?\n#{{80}}\n(.*?)(?=\n#{{80}}\n|\Z)"
    return re.search(pattern, text, re.S | re.M).group(1).strip()


@pytest.mark.parametrize("path", CAPTURES, ids=_ids(CAPTURES))
def test_capture_text_matches_its_sections(path: Path) -> None:
    text = path.read_text()
    batch = smi.parse_capture_file(path)
    boards = batch.gpu_samples.filter(pl.col("parent_gpu_uuid").is_null()).sort("ts")
    expected = [_csv_dicts(_section(text, s, "query-gpu"))[0] for s in ("idle", "load")]
    apps = [
        r for s in ("idle", "load") for r in _csv_dicts(_section(text, s, "query-compute-apps"))
    ]

    assert boards.height == 2  # one GPU, idle and load
    assert boards["gpu_model"].to_list() == [r["name"] for r in expected]
    assert boards["mem_used_mib"].to_list() == [_value(r["memory.used [MiB]"]) for r in expected]
    assert boards["util_pct"].to_list() == [_value(r["utilization.gpu [%]"]) for r in expected]
    assert boards["power_w"].to_list() == [_value(r["power.draw [W]"]) for r in expected]
    assert sorted(batch.process_samples["pid"]) == sorted(int(r["pid"]) for r in apps)
    assert set(boards["host"]) == {path.name.removesuffix(".txt")}
    # The derived query-gpu CSV files hold the same sections: both paths must agree.
    derived = [
        smi.parse_capture_file(CSV_DIR / f"{path.stem}__{s}__query-gpu.csv")
        for s in ("idle", "load")
    ]
    assert boards.equals(pl.concat([b.gpu_samples for b in derived]))


def test_h100_mig_capture_yields_mig_devices_and_attributes_processes() -> None:
    text = MIG_CAPTURE.read_text()
    listed = re.findall(r"^\s+MIG (\S+)\s+Device\s+\d+: \(UUID: (\S+)\)", text, re.M)
    load_q = _section(text, "load", "query")
    used = re.findall(
        r"Shared FB Memory Usage\n\s+Total\s+: (\d+) MiB\n.*\n\s+Used\s+: (\d+) MiB", load_q
    )
    batch = smi.parse_capture_file(MIG_CAPTURE)
    load = batch.gpu_samples.filter(pl.col("ts") == batch.gpu_samples["ts"].max())
    migs = load.filter(pl.col("parent_gpu_uuid").is_not_null())

    assert len(listed) == migs.height == 4
    assert migs.select("mig_profile", "gpu_uuid").rows() == listed
    assert migs.select("mem_total_mib", "mem_used_mib").rows() == [
        (float(t), float(u)) for t, u in used
    ]
    assert load["util_pct"].null_count() == load.height  # MIG: utilization is [N/A] everywhere
    first_mig = listed[0][1]  # every load process runs in GPU instance 2 = MIG device 0
    assert set(batch.process_samples["gpu_uuid"]) == {first_mig}


# ---------------------------------------------------------------- live sampling


def _fake_smi(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_sample_live_runs_xml_and_listing(tmp_path: Path, clock: datetime) -> None:
    (tmp_path / "q.xml").write_text(MIG_XML)
    (tmp_path / "l.txt").write_text(MIG_LISTING)
    script = _fake_smi(
        tmp_path, f'if [ "$1" = "-L" ]; then cat {tmp_path}/l.txt; else cat {tmp_path}/q.xml; fi'
    )
    batch = smi.sample_live("node-7", nvidia_smi=str(script))
    assert set(batch.gpu_samples["host"]) == {"node-7"}
    # Stamped now (the pinned clock), not with the XML's local time.
    assert clock <= batch.gpu_samples["ts"].min() <= clock + timedelta(seconds=5)
    assert "3g.40gb" in batch.gpu_samples["mig_profile"].to_list()


def test_smi_sampler_stamps_the_tick_and_names_workloads_from_this_hosts_proc(
    tmp_path: Path,
) -> None:
    from tests.collectors.gpu.fake_nvml import write_proc_entry

    xml = (REAL / "nvidia-smi-xml-datakit" / "gtx-1card.xml").read_text()
    (tmp_path / "q.xml").write_text(xml)
    script = _fake_smi(tmp_path, f"cat {tmp_path}/q.xml")
    proc = tmp_path / "proc"
    write_proc_entry(proc, 4027538, environ={"GPULEDGER_WORKLOAD": "plugin"})
    tick = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    batch = smi.SmiSampler("node-1", nvidia_smi=str(script), proc_root=proc).sample(tick)
    assert batch.gpu_samples.select("ts", "host", "workload").rows() == [
        (tick, "node-1", "unattributed:unknown")  # the biggest (3288 MiB) is not on this host
    ]
    procs = batch.process_samples.sort("pid")
    assert procs.select("pid", "user", "command", "workload").rows() == [
        (4027538, "root", "python train.py", "plugin"),
        (4027590, "unknown", "mtopen-plugin:worker", "unattributed:unknown"),
        (4157880, "unknown", "mtopen-plugin:worker", "unattributed:unknown"),
        (4165319, "unknown", "mtopen-plugin:worker", "unattributed:unknown"),
    ]
    with pytest.raises(smi.SmiUnavailable, match="nvidia-smi not found"):
        smi.SmiSampler("h", nvidia_smi=str(tmp_path / "absent"))


def test_sample_live_without_binary_raises_smi_unavailable(tmp_path: Path) -> None:
    with pytest.raises(smi.SmiUnavailable) as err:
        smi.sample_live("h", nvidia_smi=str(tmp_path / "absent" / "nvidia-smi"))
    assert str(err.value) == "nvidia-smi not found on PATH: no NVIDIA driver on this host?"


def test_sample_live_failing_binary_reports_its_message(tmp_path: Path) -> None:
    script = _fake_smi(
        tmp_path, "echo 'NVIDIA-SMI has failed because it could not communicate' >&2; exit 9"
    )
    with pytest.raises(smi.SmiUnavailable, match="exited 9: NVIDIA-SMI has failed"):
        smi.sample_live("h", nvidia_smi=str(script))


def test_compute_apps_process_name_with_commas_stays_whole() -> None:
    text = (
        "gpu_uuid, pid, process_name, used_gpu_memory [MiB]\n"
        "GPU-1, 42, C:\\Games\\Hello, World\\game.exe, 300 MiB\n"
    )
    procs = smi.parse_query_compute_apps_csv(text, "h").process_samples
    assert procs.select("pid", "command", "used_mib").rows() == [
        (42, "C:\\Games\\Hello, World\\game.exe", 300.0)
    ]


# ---------------------------------------------------------------- sampling cycles

H100 = "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01"


def _raw_time(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=UTC)


def test_query_gpu_and_compute_apps_of_one_cycle_share_the_gpu_rows_time() -> None:
    """The H100 under gpu_burn: its query-gpu row is stamped 08:12:53.353, its processes
    08:12:53.500 (147 ms later). Taken together they are one sampling cycle: the processes get
    the GPU row's time, so the 100 %-busy GPU carries the workload of its biggest process."""
    gpu_csv = CSV_DIR / f"{H100}__load__query-gpu.csv"
    apps_csv = CSV_DIR / f"{H100}__load__query-compute-apps.csv"
    gpu_raw, apps_raw = _csv_dicts(gpu_csv.read_text()), _csv_dicts(apps_csv.read_text())
    gpu_time = _raw_time(gpu_raw[0]["timestamp"])
    assert {_raw_time(r["timestamp"]) for r in apps_raw} == {gpu_time + timedelta(milliseconds=147)}

    batch = smi.parse_capture_files([gpu_csv, apps_csv])
    assert batch.gpu_samples["ts"].to_list() == [gpu_time]
    assert set(batch.process_samples["ts"]) == {gpu_time}
    assert sorted(batch.process_samples["pid"]) == sorted(int(r["pid"]) for r in apps_raw)

    rules = [{"match": "cmdline", "pattern": "gpu_burn", "workload": "burn-in"}]
    named = ProcessAttributor(rules).apply(batch).gpu_samples
    # gpu_burn holds 15690 MiB, the two memhogs 2566 and 1542: gpu_burn is dominant.
    assert named.select("util_pct", "workload").rows() == [(100.0, "burn-in")]
    # Each file alone, as before: the processes' own time matches no GPU row.
    alone = ProcessAttributor(rules).apply(
        Batch(
            smi.parse_capture_file(gpu_csv).gpu_samples,
            smi.parse_capture_file(apps_csv).process_samples,
        )
    )
    assert alone.gpu_samples["workload"].to_list() == [None]


@pytest.mark.parametrize("path", CAPTURES, ids=_ids(CAPTURES))
def test_capture_text_stamps_processes_with_their_states_gpu_row(path: Path) -> None:
    batch = smi.parse_capture_file(path)
    boards = batch.gpu_samples.filter(pl.col("parent_gpu_uuid").is_null())
    assert set(batch.process_samples["ts"]) <= set(boards["ts"])


def _frame(schema: dict, rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={k: schema[k] for k in ("ts", "host", "gpu_uuid")}, orient="row"
    )


def test_same_cycle_takes_the_nearest_gpu_row_within_half_its_interval() -> None:
    """GPU g sampled every 4 s (at 0, 4 and 8 s): a process row may lie at most 2 s from its
    cycle's GPU row. GPU h has a single row: the cap of MAX_CYCLE_SKEW_S (5 s) applies."""
    t0 = datetime(2026, 7, 14, 8, 0, tzinfo=UTC)
    at = [t0 + timedelta(seconds=s) for s in (0, 4, 8)]
    gpus = _frame(GPU_SAMPLE_SCHEMA, [(t, "n", "g") for t in at] + [(t0, "n", "h")])
    procs = pl.DataFrame(
        [
            (t0 + timedelta(seconds=0.3), "n", "g", 1),  # 0.3 s after the first row
            (t0 + timedelta(seconds=5.9), "n", "g", 2),  # 1.9 s after the second
            (t0 + timedelta(seconds=10.5), "n", "g", 3),  # 2.5 s after the last: no cycle
            (t0 + timedelta(seconds=4.2), "n", "h", 4),  # 4.2 s ≤ 5 s
            (t0 + timedelta(seconds=5.2), "n", "h", 5),  # 5.2 s > 5 s
            (t0 + timedelta(seconds=0.1), "n", "other", 6),  # no such GPU
            (t0 + timedelta(seconds=0.5), "n", "g", 1),  # pid 1 again in the same cycle
        ],
        schema={**{k: PROCESS_SAMPLE_SCHEMA[k] for k in ("ts", "host", "gpu_uuid", "pid")}},
        orient="row",
    )
    out = smi.same_cycle(gpus, procs)
    offsets = {pid: (ts - t0).total_seconds() for ts, pid in out.select("ts", "pid").iter_rows()}
    assert offsets == {1: 0.0, 2: 4.0, 3: 10.5, 4: 0.0, 5: 5.2, 6: 0.1}
    assert out.height == 6  # pid 1's farther row (0.5 s) is the same cycle's: dropped
    assert out.columns == procs.columns
