"""The real pynvml ctypes layer against a C stub of libnvidia-ml.so.1 (nvml_stub/stub.c).

The fake in fake_nvml.py replaces pynvml; this replaces only the driver library, so pynvml's own
symbol lookup, structs, two-call list protocol and error mapping run for real. The stub is built
with gcc into a temporary directory and found through LD_LIBRARY_PATH, which is why each check
runs `gpuledger` in a subprocess. Skipped, with the reason, where gcc is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tables import spool

ROOT = Path(__file__).resolve().parents[3]
STUB = Path(__file__).resolve().parent / "nvml_stub" / "stub.c"
H100 = "GPU-5b1d0c2e-0000-4000-8000-stub00000000"
A100 = "GPU-5b1d0c2e-0001-4000-8000-stub00000001"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("gcc not found: cannot build the libnvidia-ml.so.1 stub")
    out = tmp_path_factory.mktemp("nvml-stub")
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-Wall", "-Werror", "-o", str(out / "libnvidia-ml.so.1"), STUB],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "gpuledger.toml"
    path.write_text(
        f'[warehouse]\npath = "{tmp_path}/data/warehouse.duckdb"\n'
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n'
        '[demo]\nmode = "off"\n'
        '[collect]\ninterval_s = 0.2\nflush_interval_s = 0.2\nhost_id = "stub-host"\n'
    )
    return path


def _env(stub_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LD_LIBRARY_PATH": f"{stub_dir}:{os.environ.get('LD_LIBRARY_PATH', '')}",
        "GPULEDGER_WORKLOAD": "stub-e2e",  # the stub reports the agent itself as GPU 0's process
    }


def _gpuledger(conf: Path, stub_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--config", str(conf), *args],
        cwd=ROOT,
        env=_env(stub_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_collect_once_through_the_real_pynvml(stub_dir: Path, conf: Path) -> None:
    done = _gpuledger(conf, stub_dir, "collect", "--source", "nvml", "--once", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = {r["gpu_uuid"]: r for r in json.loads(done.stdout)}
    assert set(rows) == {H100, A100}
    h100, a100 = rows[H100], rows[A100]
    assert (h100["gpu_index"], h100["gpu_model"], h100["host"]) == (
        0,
        "NVIDIA H100 80GB HBM3",
        "stub-host",
    )
    # v2 memory: 20 GiB used of 80 (the 512 MiB reserved is not "used"); mW -> W.
    assert (h100["mem_used_mib"], h100["mem_total_mib"], h100["power_w"]) == (
        20480.0,
        81920.0,
        312.5,
    )
    assert (h100["util_pct"], h100["sm_clock_mhz"], h100["temperature_c"]) == (88.0, 1755.0, 55.0)
    assert (h100["energy_mj"], h100["activity_kind"], h100["sm_active_pct"]) == (
        1234567.0,
        "nvml_util",  # no GPM symbols in the stub: FunctionNotFound, remembered
        None,
    )
    assert h100["workload"] == "stub-e2e"  # the process it lists is the agent, read from /proc
    assert (a100["power_w"], a100["mem_used_mib"], a100["workload"]) == (None, 512.0, None)
    # Each unavailable metric is said once, at INFO, naming the GPU and the call.
    assert (
        f"{A100}: power not available (nvmlDeviceGetPowerUsage: NVMLError_NotSupported)"
        in done.stderr
    )
    assert "gpm not available (nvmlGpmQueryDeviceSupport: NVMLError_FunctionNotFound)" in (
        done.stderr
    )


def test_doctor_sees_the_stub_driver(stub_dir: Path, conf: Path) -> None:
    done = _gpuledger(conf, stub_dir, "doctor", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["nvml"] == (
        "ok: NVML driver 999.0.0-stub, 2 GPU(s): NVIDIA H100 80GB HBM3, NVIDIA A100-SXM4-40GB"
    )


def test_continuous_collect_fills_the_spool_with_process_shares(
    stub_dir: Path, conf: Path, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "data" / "spool"
    # The lean entry: `gpuledger collect` without the warehouse, advisor and billing imports.
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.collect", "--config", str(conf), "--source", "nvml"],
        cwd=ROOT,
        env=_env(stub_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(spool.list_batches(spool_dir, "process_samples")) >= 2:
                break
            time.sleep(0.1)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    files = spool.list_batches(spool_dir, "process_samples")
    assert len(files) >= 2, out
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT DISTINCT gpu_uuid, pid, used_mib, sm_pct, workload FROM read_parquet(?)",
            [[str(p) for p in files]],
        ).fetchall()
    finally:
        con.close()
    # The stub names the agent's pid and a fresh 37 % sample each tick (later ticks ask for
    # samples newer than the last one seen, and get them).
    assert rows == [(H100, proc.pid, 2048.0, 37.0, "stub-e2e")]
    assert "libnvidia-ml.so.1" in maps and str(stub_dir) in maps  # our stub, really loaded
    assert "duckdb" not in maps  # the lean agent never loads the warehouse's engine
