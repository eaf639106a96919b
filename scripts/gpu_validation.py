#!/usr/bin/env python3
"""Validate the NVML agent on a real GPU: 60 s idle, then 60 s under a PyTorch matmul load,
recorded by `gpuledger collect --source nvml` into a spool directory, then summarised.

Run from the repository root on a host with an NVIDIA driver (H100 or H200 preferred):

    .venv/bin/python scripts/gpu_validation.py                 # writes gpu-validation-<UTC stamp>/
    .venv/bin/python scripts/gpu_validation.py --out DIR --gpu 0 --idle-s 60 --load-s 60

Needs PyTorch with CUDA for the load (`pip install torch`; it is not a project dependency). What
it writes under the output directory (commit it as a fixture, see docs/gpu-validation.md):

    gpuledger.toml        the configuration the agent ran with (1 s samples, 5 s flushes)
    spool/                the agent's Parquet batches (gpu_samples, process_samples, health)
    once.json             `collect --source nvml --once --format json` before the run
    smi-idle.xml, smi-load.xml   `nvidia-smi -q -x` in each phase, to cross-check (if present)
    phases.json           the UTC start and end of each phase
    agent.log             the agent's stderr (what NVML did not support is logged there, once)
    load.log              the load's output (its matmul rate)
    summary.json, summary.md    per phase and GPU: samples, utilization, SM active, memory,
                          power, energy, the processes seen and their workloads; and checks

The checks compare the phases (the load raises SM activity and power on the loaded GPU, its
process is seen with its workload, the energy counter grows); they say PASS or FAIL, and the
exit status is 0 only when all pass. `--load-cmd` replaces the PyTorch load (for a dry run of
the plumbing on a machine without CUDA), `--summarise DIR` only re-summarises a finished run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = "gpu-validation-matmul"

# Square bf16 matmuls on one GPU for `seconds`; prints the achieved TFLOP/s.
MATMUL = """
import sys, time, torch
gpu, seconds = int(sys.argv[1]), float(sys.argv[2])
dev = torch.device("cuda", gpu)
n = 8192
a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
torch.cuda.synchronize(dev)
start, done = time.monotonic(), 0
while time.monotonic() - start < seconds:
    for _ in range(20):
        a @ b
    torch.cuda.synchronize(dev)
    done += 20
took = time.monotonic() - start
rate = 2 * n**3 * done / took / 1e12
print(f"{done} matmuls of {n}x{n} bf16 in {took:.1f} s: {rate:.1f} TFLOP/s")
"""


def utc_now() -> str:
    return datetime.now(UTC).isoformat()


def write_config(out: Path) -> Path:
    conf = out / "gpuledger.toml"
    conf.write_text(
        "[warehouse]\n"
        f'path = "{out}/warehouse.duckdb"\n'
        f'spool_dir = "{out}/spool"\n'
        "[catalog]\n"
        f'path = "{ROOT}/config/catalog.csv"\n'
        "[demo]\n"
        'mode = "off"\n'
        "[collect]\n"
        "interval_s = 1.0\n"
        "flush_interval_s = 5.0\n"
    )
    return conf


def smi_capture(path: Path) -> None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return
    done = subprocess.run([exe, "-q", "-x"], capture_output=True, text=True, timeout=30)
    if done.returncode == 0:
        path.write_text(done.stdout)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out or f"gpu-validation-{datetime.now(UTC):%Y%m%dT%H%M%SZ}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    conf = write_config(out)
    agent_cmd = [sys.executable, "-m", "cli.collect", "--config", str(conf), "--source", "nvml"]
    once = subprocess.run(
        [*agent_cmd, "--once", "--format", "json"], cwd=ROOT, capture_output=True, text=True
    )
    if once.returncode != 0:
        print(f"the agent cannot sample here:\n{once.stderr}", file=sys.stderr)
        return 2
    (out / "once.json").write_text(once.stdout)
    phases: dict[str, dict[str, str]] = {}
    with open(out / "agent.log", "w") as log:
        agent = subprocess.Popen(agent_cmd, cwd=ROOT, stderr=log, stdout=log)
        try:
            time.sleep(3)  # the first tick primes GPM; let it settle before the idle phase
            phases["idle"] = {"start": utc_now()}
            time.sleep(args.idle_s / 2)
            smi_capture(out / "smi-idle.xml")
            time.sleep(args.idle_s / 2)
            phases["idle"]["end"] = utc_now()
            load_cmd = args.load_cmd or [
                sys.executable,
                "-c",
                MATMUL,
                str(args.gpu),
                str(args.load_s),
            ]
            env = {**os.environ, "GPULEDGER_WORKLOAD": WORKLOAD}
            phases["load"] = {"start": utc_now()}
            with open(out / "load.log", "w") as load_log:
                load = subprocess.Popen(
                    load_cmd, stdout=load_log, stderr=subprocess.STDOUT, env=env
                )
                time.sleep(min(args.load_s / 2, 30))
                smi_capture(out / "smi-load.xml")
                load_rc = load.wait(timeout=args.load_s + 120)
            phases["load"]["end"] = utc_now()
            time.sleep(2)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent_rc = agent.wait(timeout=60)
    (out / "phases.json").write_text(json.dumps(phases, indent=2) + "\n")
    print(f"agent exit {agent_rc}, load exit {load_rc}; recorded in {out}")
    return summarise(out, gpu_index=args.gpu)


def summarise(out: Path, gpu_index: int = 0) -> int:
    import polars as pl

    from tables import spool as layout

    spool = out / "spool"
    phases = json.loads((out / "phases.json").read_text())

    def read(kind: str) -> pl.DataFrame:
        files = sorted(layout.kind_dir(spool, kind).rglob(layout.BATCH_GLOB))
        return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()

    gpus, procs, health = read("gpu_samples"), read("process_samples"), read("health")
    report: dict[str, object] = {"phases": phases, "per_phase": {}, "health": health.height}
    for name, span in phases.items():
        lo = datetime.fromisoformat(span["start"])
        hi = datetime.fromisoformat(span["end"])
        g = gpus.filter(pl.col("ts").is_between(lo, hi, closed="left"))
        per_gpu = (
            g.group_by("gpu_index", "gpu_uuid", "gpu_model")
            .agg(
                samples=pl.len(),
                util_pct=pl.col("util_pct").mean(),
                sm_active_pct=pl.col("sm_active_pct").mean(),
                tensor_active_pct=pl.col("tensor_active_pct").mean(),
                mem_used_mib_max=pl.col("mem_used_mib").max(),
                power_w=pl.col("power_w").mean(),
                energy_j=(pl.col("energy_mj").max() - pl.col("energy_mj").min()) / 1000,
                activity_kinds=pl.col("activity_kind").unique().sort().str.join(","),
            )
            .sort("gpu_index", "gpu_uuid")
        )
        p = procs.filter(pl.col("ts").is_between(lo, hi, closed="left")) if procs.height else procs
        seen = (
            p.group_by("gpu_uuid", "pid", "command", "workload")
            .agg(
                samples=pl.len(), used_mib=pl.col("used_mib").max(), sm_pct=pl.col("sm_pct").mean()
            )
            .sort("gpu_uuid", "pid")
            if p.height
            else pl.DataFrame()
        )
        report["per_phase"][name] = {"gpus": per_gpu.to_dicts(), "processes": seen.to_dicts()}
    checks = _checks(report, gpu_index)
    report["checks"] = checks
    (out / "summary.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    lines = [f"# GPU validation run {out.name}", ""]
    for name, data in report["per_phase"].items():
        lines += [
            f"## {name}",
            "",
            "| GPU | model | samples | util % | SM active % | tensor % | max MiB | W | J | kinds |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in data["gpus"]:
            lines.append(
                f"| {r['gpu_index']} | {r['gpu_model']} | {r['samples']} | {_f(r['util_pct'])} |"
                f" {_f(r['sm_active_pct'])} | {_f(r['tensor_active_pct'])} |"
                f" {_f(r['mem_used_mib_max'])} | {_f(r['power_w'])} | {_f(r['energy_j'])} |"
                f" {r['activity_kinds']} |"
            )
        seen = "; ".join(
            f"pid {p['pid']} {p['workload']} ({_f(p['used_mib'])} MiB, SM {_f(p['sm_pct'])} %)"
            for p in data["processes"]
        )
        lines += ["", f"Processes: {seen or 'none'}", ""]
    lines += ["## Checks", ""] + [f"- {'PASS' if ok else 'FAIL'}: {what}" for what, ok in checks]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(ok for _, ok in checks) else 1


def _f(value: object) -> str:
    return "" if value is None else f"{value:,.1f}" if isinstance(value, float) else str(value)


def _checks(report: dict, gpu_index: int) -> list[tuple[str, bool]]:
    phases = report["per_phase"]

    def gpu(phase: str) -> dict:
        rows = [r for r in phases.get(phase, {}).get("gpus", []) if r["gpu_index"] == gpu_index]
        return rows[0] if rows else {}

    idle, load = gpu("idle"), gpu("load")
    seconds = min(
        (datetime.fromisoformat(s["end"]) - datetime.fromisoformat(s["start"])).total_seconds()
        for s in report["phases"].values()
    )
    activity = "sm_active_pct" if load.get("sm_active_pct") is not None else "util_pct"
    loaded = [p for p in phases.get("load", {}).get("processes", []) if p["workload"] == WORKLOAD]
    return [
        (
            f"about one sample a second in each phase (idle {idle.get('samples')}, load "
            f"{load.get('samples')}, shortest phase {seconds:.0f} s)",
            min(idle.get("samples") or 0, load.get("samples") or 0) >= 0.8 * seconds,
        ),
        (
            f"the load raises {activity} on GPU {gpu_index} above 50 % (idle "
            f"{_f(idle.get(activity))}, load {_f(load.get(activity))})",
            (load.get(activity) or 0) > 50 and (idle.get(activity) or 0) < 10,
        ),
        (
            f"GPM activity recorded (activity kinds under load: {load.get('activity_kinds')})",
            "gpm" in (load.get("activity_kinds") or ""),
        ),
        (
            f"power rises under load ({_f(idle.get('power_w'))} W -> {_f(load.get('power_w'))} W)",
            (load.get("power_w") or 0) > (idle.get("power_w") or 0),
        ),
        (
            f"the energy counter grows ({_f(load.get('energy_j'))} J in the load phase)",
            (load.get("energy_j") or 0) > 0,
        ),
        (
            f"the matmul process is seen with workload {WORKLOAD} ({len(loaded)} process(es))",
            bool(loaded),
        ),
        (f"no health records ({report['health']})", report["health"] == 0),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="output directory (default: gpu-validation-<UTC stamp>)")
    parser.add_argument("--gpu", type=int, default=0, help="GPU index to load (default 0)")
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--load-s", type=float, default=60.0)
    parser.add_argument("--load-cmd", nargs="+", help="run this instead of the PyTorch load")
    parser.add_argument("--summarise", type=Path, metavar="DIR", help="only summarise DIR")
    args = parser.parse_args(argv)
    if args.summarise:
        return summarise(args.summarise.resolve(), gpu_index=args.gpu)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
