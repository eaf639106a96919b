"""The issue's named NVML scenarios, three ticks each, against golden files and figures by hand.

Golden files (`golden/nvml/<scenario>.json`) hold every row the collector emitted. They were
written by this test with GPULEDGER_UPDATE_GOLDEN=1 and then read line by line against the
scenario's description in fake_nvml.py; the hand-worked assertions below pin the figures that
matter, so a regenerated golden cannot quietly accept a wrong number.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collectors.gpu.nvml import NvmlCollector

try:
    from tests.collectors.gpu import fake_nvml as fk
except ImportError:  # pragma: no cover - depends on how pytest was started
    import fake_nvml as fk  # type: ignore[no-redef]

GOLDEN = Path(__file__).resolve().parent / "golden" / "nvml"
UPDATE = os.environ.get("GPULEDGER_UPDATE_GOLDEN") == "1"
TS = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TICKS = 3
GIB_MIB = 1024.0


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _rows(frame, *keys: str) -> list[dict[str, Any]]:
    return [
        {k: _jsonable(v) for k, v in row.items()} for row in frame.sort(*keys).iter_rows(named=True)
    ]


def run_scenario(name: str, proc_root: Path, rules=None) -> list[dict[str, list[dict]]]:
    """Three ticks one second apart on the fake clock; every row as JSON-ready dicts."""
    clock = fk.FakeClock()
    fake = fk.ISSUE_SCENARIOS[name](clock)
    collector = NvmlCollector(
        "host-golden",
        rules=rules,
        nvml=fake,
        proc_root=proc_root,
        clock=clock.monotonic,
        sleep=clock.sleep,
    )
    ticks = []
    with collector:
        for i in range(TICKS):
            batch = collector.sample(TS + timedelta(seconds=i))
            ticks.append(
                {
                    "gpu_samples": _rows(batch.gpu_samples, "gpu_uuid"),
                    "process_samples": _rows(batch.process_samples, "gpu_uuid", "pid"),
                    "health": _rows(batch.health, "gpu_uuid", "kind"),
                }
            )
            clock.advance(1.0)
    assert fake.live_gpm_samples == 0  # close() freed every kept GPM sample
    return ticks


@pytest.fixture(scope="module")
def proc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fk.write_scenario_procs(tmp_path_factory.mktemp("proc"))


@pytest.mark.parametrize("name", sorted(fk.ISSUE_SCENARIOS))
def test_scenario_matches_its_golden_file(name: str, proc_root: Path) -> None:
    ticks = run_scenario(name, proc_root)
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ticks, indent=1, sort_keys=True) + "\n")
    assert ticks == json.loads(path.read_text())


def test_every_scenario_the_issue_names_exists() -> None:
    assert sorted(fk.ISSUE_SCENARIOS) == sorted(
        [
            "8x_h100_busy",
            "notebook_70gb_idle",
            "gpu_lost_mid_run",
            "mig_3g40gb_two_processes",
            "consumer_card_no_gpm",
            "driver_without_process_utilization",
        ]
    )
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(fk.ISSUE_SCENARIOS)


# --------------------------------------------------------------------------- figures by hand


def test_8x_h100_busy(proc_root: Path) -> None:
    ticks = run_scenario("8x_h100_busy", proc_root)
    for tick in ticks:
        gpus = tick["gpu_samples"]
        assert [g["gpu_index"] for g in gpus] == list(range(8))
        # GPU i: SM active 80 + i, tensor 60 + i, power 650 W + i W, 72 + 1 GiB used of 80.
        assert [g["sm_active_pct"] for g in gpus] == [80.0 + i for i in range(8)]
        assert [g["tensor_active_pct"] for g in gpus] == [60.0 + i for i in range(8)]
        assert [g["power_w"] for g in gpus] == [650.0 + i for i in range(8)]
        assert {(g["mem_used_mib"], g["mem_total_mib"]) for g in gpus} == {(73 * 1024.0, 81920.0)}
        assert {(g["util_pct"], g["activity_kind"], g["workload"]) for g in gpus} == {
            (100.0, "gpm", "llm-pretrain")
        }
        procs = tick["process_samples"]
        assert [(p["pid"], p["gpu_uuid"]) for p in procs] == [
            (7100 + i, f"GPU-h100-busy-{i}") for i in range(8)
        ]
        assert {(p["used_mib"], p["sm_pct"], p["workload"]) for p in procs} == {
            (72 * 1024.0, 96.0, "llm-pretrain")
        }
        assert tick["health"] == []


def test_notebook_70gb_idle(proc_root: Path) -> None:
    rules = [{"match": "cmdline", "pattern": "ipykernel", "workload": "notebooks"}]
    for tick in run_scenario("notebook_70gb_idle", proc_root, rules=rules):
        (gpu,) = tick["gpu_samples"]
        # 70 GiB held, nothing running: the allocated-idle pattern.
        assert (gpu["mem_used_mib"], gpu["util_pct"], gpu["sm_active_pct"]) == (71680.0, 0.0, 0.0)
        assert (gpu["activity_kind"], gpu["power_w"], gpu["workload"]) == ("gpm", 72.0, "notebooks")
        (proc,) = tick["process_samples"]
        assert (proc["pid"], proc["used_mib"], proc["sm_pct"]) == (3131, 71680.0, 0.0)
        assert proc["container"] == fk.DOCKER_ID
    # The default rules know nothing of notebooks: the time is the user's, unattributed.
    default = run_scenario("notebook_70gb_idle", proc_root)
    assert default[0]["gpu_samples"][0]["workload"] == "unattributed:root"


def test_gpu_lost_mid_run(proc_root: Path) -> None:
    first, second, third = run_scenario("gpu_lost_mid_run", proc_root)
    assert [g["gpu_uuid"] for g in first["gpu_samples"]] == ["GPU-h100-lost-0", "GPU-h100-lost-1"]
    assert first["health"] == []
    for tick in (second, third):  # lost before tick 2: a health row, GPU 0 sampled as before
        assert [g["gpu_uuid"] for g in tick["gpu_samples"]] == ["GPU-h100-lost-0"]
        assert [p["pid"] for p in tick["process_samples"]] == [7200]
        assert [(h["gpu_uuid"], h["kind"]) for h in tick["health"]] == [
            ("GPU-h100-lost-1", "gpu_lost")
        ]
        assert tick["gpu_samples"][0]["sm_active_pct"] == 42.5


def test_mig_3g40gb_two_processes(proc_root: Path) -> None:
    for tick in run_scenario("mig_3g40gb_two_processes", proc_root):
        board, *gpus = tick["gpu_samples"]
        # The board's own row: its power (350.123 W) and no activity, workload or processes.
        assert (board["gpu_uuid"], board["parent_gpu_uuid"], board["power_w"]) == (
            "GPU-h100-mig3g",
            None,
            350.123,
        )
        assert (board["util_pct"], board["activity_kind"], board["workload"]) == (
            None,
            "nvml_util",
            None,
        )
        assert [(g["gpu_uuid"], g["mig_profile"], g["parent_gpu_uuid"]) for g in gpus] == [
            ("MIG-3g40-busy", "3g.40gb", "GPU-h100-mig3g"),
            ("MIG-3g40-idle", "3g.40gb", "GPU-h100-mig3g"),
        ]
        # Memory per instance: 28 GiB + 200 MiB = 28872 MiB and 13 MiB, of 40 GiB each.
        assert [(g["mem_used_mib"], g["mem_total_mib"]) for g in gpus] == [
            (28872.0, 40960.0),
            (13.0, 40960.0),
        ]
        assert [(g["sm_active_pct"], g["activity_kind"]) for g in gpus] == [
            (45.0, "gpm"),
            (0.0, "gpm"),
        ]
        assert [g["power_w"] for g in gpus] == [None, None]  # a board reading, not per slice
        # No per-process SM share on MIG: the bigger memory holder names the instance.
        assert [g["workload"] for g in gpus] == ["vision-train", None]
        procs = tick["process_samples"]
        assert [(p["pid"], p["used_mib"], p["sm_pct"], p["workload"]) for p in procs] == [
            (6101, 20480.0, None, "vision-train"),
            (6102, 8192.0, None, "vision-eval"),
        ]


def test_consumer_card_no_gpm(proc_root: Path) -> None:
    for tick in run_scenario("consumer_card_no_gpm", proc_root):
        (gpu,) = tick["gpu_samples"]
        assert (gpu["activity_kind"], gpu["util_pct"], gpu["sm_active_pct"]) == (
            "nvml_util",
            99.0,
            None,
        )
        assert (gpu["mem_used_mib"], gpu["mem_total_mib"]) == (19 * 1024 + 300.0, 24564.0)
        assert (gpu["power_w"], gpu["gpu_model"]) == (410.5, "NVIDIA GeForce RTX 4090")
        procs = tick["process_samples"]
        assert [
            (p["pid"], p["command"], p["used_mib"], p["sm_pct"], p["workload"]) for p in procs
        ] == [
            (1500, "/usr/lib/xorg/Xorg vt1 -displayfd 3", 300.0, 2.0, "unattributed:root"),
            (1600, "python sd_webui.py", 19456.0, 97.0, "image-gen"),
        ]
        assert gpu["workload"] == "image-gen"


def test_driver_without_process_utilization(proc_root: Path) -> None:
    for tick in run_scenario("driver_without_process_utilization", proc_root):
        (gpu,) = tick["gpu_samples"]
        assert (gpu["activity_kind"], gpu["util_pct"]) == ("nvml_util", 71.0)
        procs = tick["process_samples"]
        # SM share unknown (null, never 0): the 30 GiB Slurm job outweighs the 10 GiB pod.
        assert [(p["pid"], p["used_mib"], p["sm_pct"], p["workload"]) for p in procs] == [
            (101, 30720.0, None, "bert"),
            (202, 10240.0, None, "team-vision"),
        ]
        assert gpu["workload"] == "bert"
