"""The NVML agent's own cost: CPU time per tick and resident memory, for 8 GPUs × 20 processes.

The collector runs on the fake pynvml of tests/collectors/gpu/fake_nvml.py (scenario `8x_h100_busy`
with 20 processes on every GPU, the same 20 pids on all 8 as NCCL and DataLoader workers are)
and reads a fake /proc tree of those 20 pids. Each tick is what `gpuledger collect` does once a
second: every NVML reading, one GPM sample per GPU and its metrics, the process lists and SM
shares, /proc for each pid, workload rules, the Polars frames, the Agent's buffer; every fifth
tick the Agent writes its spool batches (flush_interval_s = 5 at 1 Hz). The fake answers in
Python where real pynvml calls into the driver through ctypes; both cost a Python call and a
ctypes struct per reading, so the figure is the agent's share, not the driver's.

CPU time is `time.process_time()` over many ticks (user + system of this process). Memory is
the peak RSS (VmHWM) of a fresh interpreter that imports what `gpuledger collect` imports (the
console script sends `collect` to the lean cli/collect.py through cli/entry.py) and runs 300
ticks with flushes; and, for comparison only, the same with the whole CLI loaded (cli.main with
DuckDB and the advisor), which `gpuledger collect` no longer does.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import ROOT, Result

GPUS, PROCESSES = 8, 20
TICKS = 200
REPEAT = 3
RSS_TICKS = 300
CPU_GOAL_PCT = 0.5  # of one core at 1 Hz
RSS_GOAL_MB = 80.0

# Run in a fresh interpreter: the agent's imports and 300 ticks, nothing else of the project.
_RSS_SCRIPT = """
import json, resource, sys, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
{preload}
from benchmarks.bench_collector import agent_for
with tempfile.TemporaryDirectory() as tmp:
    agent, clock = agent_for(Path(tmp))
    for i in range({ticks}):
        agent.tick()
        clock.advance(1.0)
        if i % 5 == 4:
            agent.flush()
    agent.flush()
    files = agent.flushed_files
status = dict(
    line.split(":", 1) for line in open("/proc/self/status")
    if line.startswith(("Rss", "VmHWM"))
)
# VmHWM is this process's own peak; ru_maxrss would inherit the parent's across fork and exec.
print(json.dumps({{"maxrss_kib": int(status["VmHWM"].split()[0]),
                  "anon_kib": int(status.get("RssAnon", "0 kB").split()[0]),
                  "files": files}}))
"""


def agent_for(tmp: Path):
    """An Agent over an NvmlCollector on the fake 8×H100 node with 20 processes per GPU."""
    from collectors.gpu.agent import Agent
    from collectors.gpu.nvml import NvmlCollector
    from tests.collectors.gpu import fake_nvml as fk

    proc_root = fk.write_scenario_procs(tmp / "proc", [7100 + j for j in range(PROCESSES)])
    clock = fk.FakeClock()
    fake = fk.scenario_8x_h100_busy(clock, processes_per_gpu=PROCESSES)
    fake.record = False  # the fake's own call log would grow with the run
    collector = NvmlCollector(
        "bench-host", nvml=fake, proc_root=proc_root, clock=clock.monotonic, sleep=clock.sleep
    )
    return Agent(collector.sample, tmp / "spool", flush_interval_s=5.0), clock


def _cpu_per_tick_ms() -> tuple[float, int, int]:
    """Median CPU ms per tick over REPEAT runs of TICKS ticks; also rows per tick."""
    with tempfile.TemporaryDirectory() as tmp:
        agent, clock = agent_for(Path(tmp))
        agent.tick()  # the first tick primes GPM and warms imports; not measured
        clock.advance(1.0)
        first = agent.sample(None)  # one more, to count rows
        gpu_rows, proc_rows = first.gpu_samples.height, first.process_samples.height
        clock.advance(1.0)
        runs = []
        for _ in range(REPEAT):
            t0 = time.process_time()
            for i in range(TICKS):
                agent.tick()
                clock.advance(1.0)
                if i % 5 == 4:
                    agent.flush()
            runs.append((time.process_time() - t0) / TICKS * 1000)
        return statistics.median(runs), gpu_rows, proc_rows


# `python -m cli.collect`, the lean entry: the agent's own imports.
_LEAN = "import cli.collect"
# What `gpuledger collect` imports today before it samples: the whole CLI, every subcommand.
_AS_SHIPPED = "import cli.main; cli.main.build_parser()"  # the full CLI, for comparison


def _rss_mb(preload: str = "", env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Peak RSS and private (anonymous) RSS at the end, MB, and spool files written."""
    script = _RSS_SCRIPT.format(root=str(ROOT), ticks=RSS_TICKS, preload=preload)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    return answer["maxrss_kib"] / 1024, answer["anon_kib"] / 1024, answer["files"]


def bench() -> list[Result]:
    ms, gpu_rows, proc_rows = _cpu_per_tick_ms()
    pct = ms / 1000 * 100  # one tick per second
    rss, anon, files = _rss_mb(_LEAN, {"POLARS_MAX_THREADS": "1"})  # as the lean entry sets
    shipped, shipped_anon, _ = _rss_mb(_AS_SHIPPED)
    how = f"{gpu_rows} GPU rows + {proc_rows} process rows per tick"
    return [
        Result(
            "CPU time per tick (8 GPUs × 20 processes)",
            ms,
            "ms",
            note=f"median of {REPEAT} runs of {TICKS} ticks, spool flush every 5th; {how}",
        ),
        Result(
            "CPU share at 1 Hz",
            pct,
            "% of a core",
            goal=f"<= {CPU_GOAL_PCT} %",
            met=pct <= CPU_GOAL_PCT,
        ),
        Result(
            "peak RSS of the agent (`gpuledger collect`)",
            rss,
            "MB",
            goal=f"<= {RSS_GOAL_MB:g} MB",
            met=rss <= RSS_GOAL_MB,
            note=f"fresh interpreter, the lean entry's imports and its one Polars thread, "
            f"{RSS_TICKS} ticks, {files} spool "
            f"files; {anon:.0f} MB of it private (anonymous), the rest mostly the Polars "
            "library's shared code pages",
        ),
        Result(
            "for comparison: peak RSS with the whole CLI loaded",
            shipped,
            "MB",
            note=f"the same run after importing cli.main and every subcommand (DuckDB, the "
            f"advisor); `gpuledger collect` avoids this via cli/entry.py; "
            f"{shipped_anon:.0f} MB private",
        ),
    ]


if __name__ == "__main__":
    for r in bench():
        print(f"{r.name}: {r.value:.3f} {r.unit} {r.goal} {r.note}")
