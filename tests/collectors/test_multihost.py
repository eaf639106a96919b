"""Past one machine, with real processes: three agents sample their GPUs and ship their spool
batches (to a shared directory, or to an S3 prefix on moto), one `gpuledger run` daemon ingests
them. Every sample every agent took is in the warehouse exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.collectors.billing.aws_fakes import MotoAws, aws, moto_server  # noqa: F401
from warehouse.snapshot import Snapshot, SnapshotMissing
from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ("gpu-node-1", "gpu-node-2", "gpu-node-3")
GPUS = 4
SECONDS = 3.0

# One agent: an Agent sampling 4 fake GPUs every 0.1 s into its own spool, flushing every 0.5 s,
# and a Shipper beside it every 0.3 s, as `gpuledger collect` + `gpuledger ship` would run.
AGENT = f"""
import json, sys, threading, time
from datetime import datetime
from pathlib import Path
import polars as pl
from collectors.gpu.agent import Agent
from tables.records import Batch
from collectors.shipping import Shipper

host, spool_dir, target, seconds = sys.argv[1], Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])

def sample(now: datetime) -> Batch:
    g = range({GPUS})
    return Batch(pl.DataFrame({{
        "ts": [now] * {GPUS}, "host": [host] * {GPUS},
        "gpu_uuid": [f"GPU-{{host}}-{{i}}" for i in g], "gpu_index": list(g),
        "gpu_model": ["H100"] * {GPUS}, "util_pct": [float(i * 10) for i in g],
        "mem_used_mib": [1000.0] * {GPUS}, "mem_total_mib": [81559.0] * {GPUS},
        "power_w": [300.0] * {GPUS}, "workload": ["train"] * {GPUS}, "source": ["test"] * {GPUS},
    }}))

agent = Agent(sample, spool_dir, interval_s=0.1, flush_interval_s=0.5)
ship_stop = threading.Event()
shipper = Shipper(spool_dir, target)
shipping = threading.Thread(target=shipper.run, args=(ship_stop, 0.3))
shipping.start()
sampling = agent.start_thread()
time.sleep(seconds)
agent.stop()
sampling.join()
ship_stop.set()
shipping.join()
left = len(list(spool_dir.rglob("part-*.parquet")))
print(json.dumps({{"rows": agent.ticks * {GPUS}, "errors": agent.errors, "left": left}}))
"""


def daemon_config(tmp: Path, spool_dir: Path, pull_from: str = "") -> Path:
    path = tmp / "central.toml"
    path.write_text(
        f"""
[warehouse]
path = "{tmp / "central" / "warehouse.duckdb"}"
spool_dir = "{spool_dir}"
[catalog]
path = "{ROOT / "config" / "catalog.csv"}"
[demo]
mode = "off"
[run]
ingest_interval_s = 1.0
publish_interval_s = 1.0
[alerts]
enabled = false
[metrics]
enabled = false
[report]
weekly = false
[ship]
interval_s = 1.0
pull_from = "{pull_from}"
"""
    )
    return path


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "GPULEDGER_CONFIG"}
    out["PYTHONPATH"] = str(ROOT)
    out.update(extra or {})
    return out


def run_fleet(tmp: Path, target_for: callable, central_spool: Path, config: Path, extra_env=None):
    daemon = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "run", "--config", str(config)],
        cwd=ROOT,
        env=env(extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        agents = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    AGENT,
                    host,
                    str(tmp / host),
                    target_for(host),
                    str(SECONDS),
                ],
                cwd=ROOT,
                env=env(extra_env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for host in AGENTS
        ]
        reports = {}
        for host, proc in zip(AGENTS, agents, strict=True):
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            reports[host] = json.loads(out.strip().splitlines()[-1])
        expected = sum(r["rows"] for r in reports.values())
        # The daemon publishes what it ingested; wait for all of it (a reader never blocks it).
        snap = Snapshot(tmp / "central" / "dashboard.duckdb")
        deadline = time.monotonic() + 60
        seen = -1
        while time.monotonic() < deadline and seen != expected and daemon.poll() is None:
            try:
                seen = snap.sample_count()
            except (SnapshotMissing, Exception):
                seen = -1
            time.sleep(0.3)
        snap.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        log, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, log
    assert seen == expected, f"snapshot counted {seen} of {expected}\n{log}"
    with Warehouse(tmp / "central" / "warehouse.duckdb", central_spool) as wh:
        per_host = dict(
            wh.db.execute("SELECT host, count(*) FROM gpu_samples GROUP BY host").fetchall()
        )
        distinct = wh.db.execute(
            "SELECT count(*) FROM (SELECT DISTINCT host, gpu_uuid, ts FROM gpu_samples)"
        ).fetchall()[0][0]
        minute_samples = wh.db.execute("SELECT sum(samples) FROM gpu_minute").fetchall()[0][0]
    assert per_host == {h: r["rows"] for h, r in reports.items()}
    assert distinct == expected == minute_samples
    assert all(r["left"] == 0 and r["errors"] == 0 for r in reports.values()), reports
    assert all(r["rows"] >= GPUS * 10 for r in reports.values())


@pytest.mark.slow
def test_three_agents_ship_to_a_shared_directory_and_one_daemon_ingests(tmp_path: Path) -> None:
    shared = tmp_path / "shared-spool"
    shared.mkdir()
    config = daemon_config(tmp_path, shared)
    run_fleet(tmp_path, lambda host: str(shared), shared, config)


@pytest.mark.slow
def test_three_agents_ship_to_s3_and_the_daemon_pulls(
    aws: MotoAws,  # noqa: F811
    tmp_path: Path,
) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="fleet")
    central = tmp_path / "central-spool"
    config = daemon_config(tmp_path, central, pull_from="s3://fleet/gpuledger")
    run_fleet(
        tmp_path,
        lambda host: "s3://fleet/gpuledger",
        central,
        config,
        {"AWS_ENDPOINT_URL": aws.url},
    )
    keys = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket="fleet")
    hosts = {k["Key"].split("/")[3] for k in keys["Contents"]}
    assert hosts == {f"host={h}" for h in AGENTS}  # the objects stay for Athena & co.
