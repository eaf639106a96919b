"""NvmlCollector against the fake pynvml: one scenario per situation seen on real hosts."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pynvml
import pytest

from collectors.gpu.nvml import (
    NvmlCollector,
    NvmlUnavailable,
    detect_host_id,
    mig_profile,
    nvml_available,
)
from tables.records import GPU_SAMPLE_SCHEMA, HEALTH_SCHEMA, PROCESS_SAMPLE_SCHEMA
from tests.clock import pinned_clock

try:  # run as a package (tests/collectors/__init__.py) or as rootdir-less test modules
    from tests.collectors.gpu import fake_nvml as fk
except ImportError:  # pragma: no cover - depends on how pytest was started
    import fake_nvml as fk  # type: ignore[no-redef]

TS = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GPU_COLUMNS = list(GPU_SAMPLE_SCHEMA)


@pytest.fixture
def clock() -> fk.FakeClock:
    return fk.FakeClock()


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    """The processes the scenarios put on GPUs, each named for its workload by default rules."""
    root = tmp_path / "proc"
    fk.write_proc_entry(
        root,
        4242,
        uid=0,
        cmdline=["python", "train.py", "--model", "llama"],
        environ={"GPULEDGER_WORKLOAD": "llm-finetune", "HOME": "/root"},
    )
    fk.write_proc_entry(
        root, 101, uid=4242424, cmdline=["python", "bert.py"], environ={"SLURM_JOB_NAME": "bert"}
    )
    fk.write_proc_entry(
        root,
        202,
        uid=0,
        cmdline=["jupyter-lab"],
        environ={"POD_NAMESPACE": "team-vision", "KUBERNETES_SERVICE_HOST": "10.0.0.1"},
    )
    fk.write_proc_entry(root, 5151, uid=0, environ={"GPULEDGER_WORKLOAD": "mig-inference"})
    return root


def make(fake: fk.FakeNvml, proc_root: Path, clock: fk.FakeClock, **kw) -> NvmlCollector:
    return NvmlCollector(
        "host-a",
        nvml=fake,
        proc_root=proc_root,
        clock=clock.monotonic,
        sleep=clock.sleep,
        **kw,
    )


def gpu_rows(batch) -> list[dict]:
    return batch.gpu_samples.sort("gpu_uuid").to_dicts()


def proc_rows(batch) -> list[dict]:
    return batch.process_samples.sort("gpu_uuid", "pid").to_dicts()


# --------------------------------------------------------------------------- the fake itself


def test_fake_raises_the_real_pynvml_error_classes():
    fake = fk.scenario_h100_gpm()
    assert fake.NVMLError_GpuIsLost is pynvml.NVMLError_GpuIsLost
    assert fake.NVMLError_NotSupported is pynvml.NVMLError_NotSupported
    assert fake.NVMLLibraryMismatchError is pynvml.NVMLLibraryMismatchError
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()


# --------------------------------------------------------------------------- H100 with GPM


def test_h100_first_tick_reads_every_metric_and_gpm(proc_root, clock):
    fake = fk.scenario_h100_gpm(clock)
    batch = make(fake, proc_root, clock).sample(TS)

    assert gpu_rows(batch) == [
        {
            "ts": TS,
            "host": "host-a",
            "gpu_uuid": "GPU-h100-0000",
            "gpu_index": 0,
            "gpu_model": "NVIDIA H100 80GB HBM3",
            "util_pct": 97.0,
            "sm_active_pct": 42.5,
            "activity_kind": "gpm",
            "mem_used_mib": 40960.0,  # v2: driver-reserved 512 MiB not counted as used
            "mem_total_mib": 81920.0,
            "power_w": 350.123,
            "energy_mj": 123456789.0,
            "sm_clock_mhz": 1980.0,
            "temperature_c": 61.0,
            "sm_occupancy_pct": 31.25,
            "tensor_active_pct": 12.5,
            "dram_active_pct": 55.0,
            "parent_gpu_uuid": None,
            "mig_profile": None,
            "workload": "llm-finetune",
            "source": "nvml",
            "power_limit_w": 700.0,  # nvmlDeviceGetEnforcedPowerLimit: 700,000 mW
            "ecc_errors": 0.0,  # volatile uncorrected
            "xid_error": None,  # NVML gives XIDs only as events
        }
    ]
    assert proc_rows(batch) == [
        {
            "ts": TS,
            "host": "host-a",
            "gpu_uuid": "GPU-h100-0000",
            "pid": 4242,
            "user": "root",
            "command": "python train.py --model llama",
            "container": None,
            "pod": None,
            "namespace": None,
            "used_mib": 40960.0,
            "sm_pct": 92.0,  # mean of the two buffered samples, 90 and 94
            "workload": "llm-finetune",
            "source": "nvml",
        }
    ]
    assert batch.health.height == 0
    # The first tick takes two GPM samples 100 ms apart, sleeping once for it.
    assert clock.slept == [pytest.approx(0.1)]
    assert fake.gpm_pairs == [("GPU-h100-0000", pytest.approx(0.1))]


def test_frames_have_exactly_the_schemas(proc_root, clock):
    batch = make(fk.scenario_h100_gpm(clock), proc_root, clock).sample(TS)
    assert dict(batch.gpu_samples.schema) == GPU_SAMPLE_SCHEMA
    assert dict(batch.process_samples.schema) == PROCESS_SAMPLE_SCHEMA
    assert dict(batch.health.schema) == HEALTH_SCHEMA


def test_steady_ticks_take_one_gpm_sample_each_and_free_the_old(proc_root, clock):
    fake = fk.scenario_h100_gpm(clock)
    collector = make(fake, proc_root, clock)
    for tick in range(3):
        batch = collector.sample(TS + timedelta(seconds=tick))
        assert batch.gpu_samples["sm_active_pct"].to_list() == [42.5]
        clock.advance(1.0)

    assert fake.count("nvmlGpmSampleGet") == 4  # two on the first tick, then one per tick
    assert clock.slept == [pytest.approx(0.1)]  # only the first tick waited
    assert [gap for _, gap in fake.gpm_pairs] == pytest.approx([0.1, 1.0, 1.0])
    assert fake.live_gpm_samples == 1  # the one kept for the next tick
    collector.close()
    collector.close()
    assert fake.live_gpm_samples == 0
    assert fake.shutdowns == 1
    with pytest.raises(RuntimeError, match="after close"):
        collector.sample(TS)


def test_tick_sooner_than_100ms_waits_out_the_rest(proc_root, clock):
    fake = fk.scenario_h100_gpm(clock)
    collector = make(fake, proc_root, clock)
    collector.sample(TS)
    clock.advance(0.03)
    collector.sample(TS)
    assert clock.slept == pytest.approx([0.1, 0.07])
    assert [gap for _, gap in fake.gpm_pairs] == pytest.approx([0.1, 0.1])


def test_gpm_values_follow_the_gpu_between_ticks(proc_root, clock):
    fake = fk.scenario_h100_gpm(clock)
    collector = make(fake, proc_root, clock)
    collector.sample(TS)
    fake.gpus[0].gpm = {fk.SM_UTIL: 3.0}  # a new phase; the others report not supported
    clock.advance(1.0)
    row = gpu_rows(collector.sample(TS))[0]
    assert (row["sm_active_pct"], row["sm_occupancy_pct"], row["activity_kind"]) == (
        3.0,
        None,
        "gpm",
    )


# --------------------------------------------------------------------------- unsupported metrics


def test_old_driver_unsupported_metrics_are_asked_exactly_once(proc_root, clock, caplog):
    fake = fk.scenario_old_driver_no_gpm_no_process_util(clock)
    collector = make(fake, proc_root, clock)
    with caplog.at_level(logging.INFO, logger="collectors.gpu.nvml"):
        batches = [collector.sample(TS + timedelta(seconds=i)) for i in range(3)]

    assert fake.count("nvmlDeviceGetProcessesUtilizationInfo") == 1  # FunctionNotFound
    assert fake.count("nvmlDeviceGetProcessUtilization") == 1  # NotSupported
    assert fake.count("nvmlGpmQueryDeviceSupport") == 1
    assert fake.count("nvmlGpmSampleAlloc") == 0
    assert fake.count("nvmlDeviceGetMigMode") == 1
    assert fake.count("nvmlDeviceGetTemperatureV") == 1
    assert fake.count("nvmlDeviceGetTemperature") == 3
    assert fake.count("nvmlDeviceGetMemoryInfo") == 1 + 3  # v2 once, then v1 each tick
    assert fake.count("nvmlDeviceGetComputeRunningProcesses") == 1  # library mismatch
    assert fake.count("nvmlDeviceGetComputeRunningProcesses_v2") == 3
    logged = [r.getMessage() for r in caplog.records if "process_util " in r.getMessage()]
    assert logged == [
        "GPU-v100-0000: process_util not available (nvmlDeviceGetProcessUtilization"
        ": NVMLError_NotSupported); not asking again"
    ]

    for batch in batches:
        row = gpu_rows(batch)[0]
        assert row["activity_kind"] == "nvml_util"
        assert row["sm_active_pct"] is None
        assert row["util_pct"] == 100.0
        assert row["mem_used_mib"] == 6 * 1024 + 256  # v1 counts reserved memory as used
        assert row["temperature_c"] == 70.0
        assert row["power_w"] == 250.5
        assert proc_rows(batch)[0]["sm_pct"] is None  # NVML cannot tell, so unknown, not 0
        assert proc_rows(batch)[0]["used_mib"] == 6144.0


def test_gpu_without_gpm_support_is_asked_once(proc_root, clock):
    fake = fk.scenario_a100_no_gpm(clock)
    collector = make(fake, proc_root, clock)
    rows = [gpu_rows(collector.sample(TS))[0] for _ in range(3)]
    assert fake.count("nvmlGpmQueryDeviceSupport") == 1
    assert fake.count("nvmlGpmSampleAlloc") == 0
    assert clock.slept == []
    assert {(r["activity_kind"], r["util_pct"], r["sm_active_pct"]) for r in rows} == {
        ("nvml_util", 55.0, None)
    }


# --------------------------------------------------------------------------- failing GPUs


@pytest.mark.parametrize(
    ("error", "kind"),
    [(pynvml.NVMLError_GpuIsLost, "gpu_lost"), (pynvml.NVMLError_Unknown, "unknown_error")],
)
@pytest.mark.parametrize(
    ("failing_call", "message"),
    [
        ("*", "GPU index 1: nvmlDeviceGetName"),  # fails from its first reading on
        ("nvmlDeviceGetUtilizationRates", "nvmlDeviceGetUtilizationRates"),  # only this one
    ],
)
def test_failing_gpu_is_a_health_row_and_the_other_gpu_is_sampled(
    proc_root, clock, error, kind, failing_call, message
):
    fake = fk.scenario_failing_one_gpu(error, clock)
    fake.gpus[1].errors = {failing_call: error}
    collector = make(fake, proc_root, clock)
    for _ in range(2):
        batch = collector.sample(TS)
        health = batch.health.to_dicts()
        assert [(h["gpu_uuid"], h["kind"], h["host"], h["source"]) for h in health] == [
            ("GPU-a100-bad", kind, "host-a", "nvml")
        ]
        assert health[0]["message"] == f"{message}: {error()}"
        good = gpu_rows(batch)
        assert [(r["gpu_uuid"], r["gpu_index"], r["util_pct"], r["power_w"]) for r in good] == [
            ("GPU-a100-good", 0, 55.0, 210.0)
        ]
        assert good[0]["workload"] == "llm-finetune"
        assert [r["gpu_uuid"] for r in proc_rows(batch)] == ["GPU-a100-good"]


def test_gpu_lost_at_its_handle_keeps_the_uuid_seen_before(proc_root, clock):
    fake = fk.scenario_gpu_lost_at_handle(clock)
    collector = make(fake, proc_root, clock)
    first = collector.sample(TS)
    assert first.health.select("gpu_uuid", "kind", "message").rows() == [
        (None, "gpu_lost", "GPU index 1: nvmlDeviceGetHandleByIndex: GPU is lost")
    ]
    assert first.gpu_samples["gpu_uuid"].to_list() == ["GPU-a100-good"]

    fake.gpus[1].errors = {}
    assert collector.sample(TS).gpu_samples.height == 2
    fake.gpus[1].errors = {"nvmlDeviceGetHandleByIndex": pynvml.NVMLError_GpuIsLost}
    assert collector.sample(TS).health["gpu_uuid"].to_list() == ["GPU-a100-bad"]


def test_gpu_lost_mid_gpm_frees_its_sample_and_starts_over_when_back(proc_root, clock):
    fake = fk.scenario_h100_gpm(clock)
    collector = make(fake, proc_root, clock)
    collector.sample(TS)
    clock.advance(1.0)
    fake.gpus[0].errors = {"nvmlGpmSampleGet": pynvml.NVMLError_GpuIsLost}
    lost = collector.sample(TS)
    assert lost.gpu_samples.height == 0
    assert lost.health.select("gpu_uuid", "kind").rows() == [("GPU-h100-0000", "gpu_lost")]
    assert fake.live_gpm_samples == 0

    fake.gpus[0].errors = {}
    clock.advance(1.0)
    back = collector.sample(TS)
    assert back.gpu_samples["sm_active_pct"].to_list() == [42.5]
    assert fake.gpm_pairs[-1] == ("GPU-h100-0000", pytest.approx(0.1))  # primed afresh


# --------------------------------------------------------------------------- MIG


@pytest.mark.parametrize(
    ("error", "health"),
    [
        (pynvml.NVMLError_Unknown, [("GPU-h100-mig", "unknown_error")]),
        (pynvml.NVMLError_NoPermission, []),
        (pynvml.NVMLError_NotFound, []),
    ],
)
def test_mig_instances_each_a_row_and_one_bad_slot_hides_no_other(proc_root, clock, error, health):
    fake = fk.scenario_mig_one_bad_slot(error, clock)
    collector = make(fake, proc_root, clock)
    for tick in range(2):
        batch = collector.sample(TS)
        board, *rows = gpu_rows(batch)
        # The board in MIG mode: its own row with the board readings, no utilization, no
        # activity and no workload (they belong to its instances); the rollups split its time.
        assert (board["gpu_uuid"], board["parent_gpu_uuid"], board["mig_profile"]) == (
            "GPU-h100-mig",
            None,
            None,
        )
        assert board["power_w"] is not None and board["energy_mj"] is not None
        assert (board["util_pct"], board["sm_active_pct"], board["activity_kind"]) == (
            None,
            None,
            "nvml_util",
        )
        assert board["workload"] is None
        assert [
            (r["gpu_uuid"], r["parent_gpu_uuid"], r["mig_profile"], r["gpu_index"]) for r in rows
        ] == [
            ("MIG-aaaa-3g", "GPU-h100-mig", "3g.40gb", 0),
            ("MIG-bbbb-1g", "GPU-h100-mig", "1g.10gb", 0),
        ]
        assert [(r["mem_used_mib"], r["mem_total_mib"]) for r in rows] == [
            (12288.0, 40960.0),
            (3072.0, 10240.0),
        ]
        assert [r["gpu_model"] for r in rows] == ["NVIDIA H100 80GB HBM3"] * 2
        assert [r["util_pct"] for r in rows] == [None, None]  # not supported on MIG
        assert [r["power_w"] for r in rows] == [None, None]  # a board reading, not per slice
        assert [
            (r["sm_active_pct"], r["sm_occupancy_pct"], r["dram_active_pct"], r["activity_kind"])
            for r in rows
        ] == [(70.0, 50.0, 30.0, "gpm"), (5.0, None, 1.5, "gpm")]
        assert [r["workload"] for r in rows] == [None, "mig-inference"]
        assert [
            (p["gpu_uuid"], p["pid"], p["used_mib"], p["sm_pct"]) for p in proc_rows(batch)
        ] == [("MIG-bbbb-1g", 5151, 3072.0, None)]
        assert batch.health.select("gpu_uuid", "kind").rows() == health
        assert fake.count("nvmlDeviceGetMigDeviceHandleByIndex") == 7 * (tick + 1)
        clock.advance(1.0)
    if health:
        assert batch.health["message"][0].startswith("MIG slot 1: ")
    assert {src for src, _ in fake.gpm_pairs} == {"MIG-aaaa-3g", "MIG-bbbb-1g"}
    assert fake.count("nvmlGpmMigSampleGet") == 2 * 3


# --------------------------------------------------------------------------- processes


def test_shared_gpu_merges_memory_by_pid_and_splits_sm_share(proc_root, clock):
    fake = fk.scenario_shared_gpu_two_processes(clock)
    collector = make(fake, proc_root, clock)
    batch = collector.sample(TS)
    procs = proc_rows(batch)
    assert [(p["pid"], p["used_mib"], p["sm_pct"], p["user"], p["workload"]) for p in procs] == [
        (101, 10240.0, 25.0, "4242424", "bert"),
        (202, 2048.0, 60.0, "root", "team-vision"),  # listed as compute and graphics: once
    ]
    assert procs[1]["namespace"] == "team-vision"
    # The GPU's workload is the process with the most SM share, not the most memory.
    assert gpu_rows(batch)[0]["workload"] == "team-vision"

    # Next tick asks only for samples newer than the last one seen.
    fake.gpus[0].util_samples.append((101, 6_000_000, 80))
    batch = collector.sample(TS)
    assert [(p["pid"], p["sm_pct"]) for p in proc_rows(batch)] == [(101, 80.0), (202, 0.0)]
    assert gpu_rows(batch)[0]["workload"] == "bert"

    # No samples since: NotFound means nobody ran a kernel, so shares are 0 and memory decides.
    batch = collector.sample(TS)
    assert [(p["pid"], p["sm_pct"]) for p in proc_rows(batch)] == [(101, 0.0), (202, 0.0)]
    assert gpu_rows(batch)[0]["workload"] == "bert"
    assert [ts for _, _, ts in fake.util_queries] == [0, 5_200_000, 6_000_000]
    assert fake.count("nvmlDeviceGetProcessUtilization") == 0  # the newer form answered


def test_gpu_without_processes_has_no_workload(proc_root, clock):
    fake = fk.scenario_h100_gpm(clock)
    fake.gpus[0].processes = []
    batch = make(fake, proc_root, clock).sample(TS)
    assert gpu_rows(batch)[0]["workload"] is None
    assert batch.process_samples.height == 0
    assert fake.util_queries == []


def test_configured_rules_and_unattributed_and_vanished_processes(proc_root, clock):
    fake = fk.scenario_shared_gpu_two_processes(clock)
    fake.gpus[0].processes.append(fk.FakeProcess(999, 1 * fk.GIB))  # gone from /proc already
    rules = [
        {"match": "cmdline", "pattern": "jupyter", "workload": "notebooks"},
        {"match": "user", "pattern": "^nobody$"},
    ]
    batch = make(fake, proc_root, clock, rules=rules).sample(TS)
    assert [(p["pid"], p["user"], p["command"], p["workload"]) for p in proc_rows(batch)] == [
        (101, "4242424", "python bert.py", "unattributed:4242424"),
        (202, "root", "jupyter-lab", "notebooks"),
        (999, "unknown", "", "unattributed:unknown"),
    ]


def test_bad_rules_fail_at_construction(clock):
    with pytest.raises(ValueError, match=r"rules\[0\]: key 'match'"):
        NvmlCollector("h", rules=[{"match": "nope"}], nvml=fk.scenario_h100_gpm(clock))


# --------------------------------------------------------------------------- time stamps


def test_naive_now_is_utc_and_default_now_is_current(proc_root, clock, pinned_instant):
    collector = make(fk.scenario_a100_no_gpm(clock), proc_root, clock)
    naive = collector.sample(datetime(2025, 3, 1, 12, 0))
    assert naive.gpu_samples["ts"].to_list() == [TS]
    with pinned_clock(pinned_instant):  # the wall clock (`clock` here is NVML's fake one)
        ts = collector.sample().gpu_samples["ts"][0]
    assert pinned_instant <= ts <= pinned_instant + timedelta(seconds=1)


# --------------------------------------------------------------------------- no NVML


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (pynvml.NVMLError_DriverNotLoaded, "NVMLError_DriverNotLoaded: Driver Not Loaded"),
        (
            pynvml.NVMLError_LibraryNotFound,
            "NVMLError_LibraryNotFound: NVML Shared Library Not Found",
        ),
    ],
)
def test_no_driver_raises_nvml_unavailable(error, detail):
    fake = fk.scenario_no_driver(error)
    expected = f"no NVIDIA GPU or driver on this host (nvmlInit: {detail})"
    with pytest.raises(NvmlUnavailable) as raised:
        NvmlCollector("h", nvml=fake)
    assert str(raised.value) == expected
    assert nvml_available(fake) == (False, expected)


def test_missing_pynvml_raises_nvml_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    with pytest.raises(NvmlUnavailable, match=r"^no NVIDIA GPU or driver on this host \(pynvml"):
        NvmlCollector("h")
    ok, why = nvml_available()
    assert not ok and why.startswith("no NVIDIA GPU or driver on this host (pynvml not importable")


def test_nvml_available_describes_the_gpus():
    fake = fk.scenario_h100_gpm()
    assert nvml_available(fake) == (True, "NVML driver 550.54.15, 1 GPU(s): NVIDIA H100 80GB HBM3")
    assert fake.shutdowns == 1


def test_real_pynvml_on_this_host():
    """Without a GPU the real pynvml gives NvmlUnavailable; with one, a sample per GPU."""
    ok, why = nvml_available()
    if not ok:
        assert why.startswith("no NVIDIA GPU or driver on this host (")
        with pytest.raises(NvmlUnavailable):
            NvmlCollector("h")
        return
    with NvmlCollector("h") as collector:  # pragma: no cover - needs a GPU
        batch = collector.sample()
    assert batch.gpu_samples.height >= 1
    assert batch.gpu_samples["gpu_uuid"].null_count() == 0


# --------------------------------------------------------------------------- host id and helpers


def test_detect_host_id_prefers_configured_then_ec2_then_hostname(monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "ws1")
    assert detect_host_id("  rack7-gpu3 ", metadata_reader=lambda: "i-0123456789abcdef0") == (
        "rack7-gpu3"
    )
    assert detect_host_id(metadata_reader=lambda: "i-0123456789abcdef0\n") == "i-0123456789abcdef0"
    assert detect_host_id(metadata_reader=lambda: "Default string") == "ws1"
    assert detect_host_id(metadata_reader=lambda: None) == "ws1"

    def unreadable() -> str:
        raise PermissionError("board_asset_tag")

    assert detect_host_id(metadata_reader=unreadable) == "ws1"


def test_mig_profile_from_device_name():
    assert mig_profile("NVIDIA H100 80GB HBM3 MIG 1g.10gb") == "1g.10gb"
    assert mig_profile("NVIDIA A100-SXM4-40GB MIG 3g.20gb+me") == "3g.20gb+me"
    assert mig_profile("NVIDIA H100 80GB HBM3") is None
    assert mig_profile(None) is None


def test_a_mig_board_row_from_nvml_imports_back(proc_root, clock, tmp_path, capsys):
    """What `collect --format csv` prints for a MIG board sampled through NVML (the board's own
    row with its power and no utilization, then its instances) is taken back by `import
    samples` with every value kept: the product reads its own output."""
    import csv
    import io

    from cli.collect import print_samples
    from collectors.gpu.samples_file import read_samples_file

    collector = make(
        fk.scenario_mig_one_bad_slot(pynvml.NVMLError_NotFound, clock), proc_root, clock
    )
    batch = collector.sample(TS)
    print_samples(batch, "csv")
    text = capsys.readouterr().out
    path = tmp_path / "mig.csv"
    path.write_text(text)
    written = list(csv.DictReader(io.StringIO(text)))
    back = read_samples_file(path).sort("gpu_uuid").to_dicts()
    assert [r["gpu_uuid"] for r in back] == ["GPU-h100-mig", "MIG-aaaa-3g", "MIG-bbbb-1g"]
    for w, k in zip(sorted(written, key=lambda r: r["gpu_uuid"]), back, strict=True):
        for column, value in w.items():
            if column == "ts":
                assert datetime.fromisoformat(value) == k["ts"]
            elif value == "":
                assert k[column] is None, column
            elif isinstance(k[column], int | float):
                assert float(value) == k[column], column
            else:
                assert value == k[column], column
