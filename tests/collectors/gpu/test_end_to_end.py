"""Every telemetry source end to end: sampled into the spool, ingested by the warehouse writer,
published in the snapshot and seen by the dashboard's live view, with process samples and
their workloads in `process_samples`.

- NVML: the collector on the fake pynvml (tests/collectors/gpu/fake_nvml.py), driven by the Agent
  in this process (the fake is passed as `nvml=`; production code has no test seam).
- nvidia-smi: `gpuledger collect --source smi` in a subprocess, with a fake `nvidia-smi` on PATH
  that prints a real `-q -x` capture naming a real process of this host; stopped by SIGTERM.
- dcgm-exporter: `gpuledger collect --source prometheus --url` in a subprocess scraping a real
  capture served on 127.0.0.1; stopped by SIGTERM.
- Prometheus history: `gpuledger collect --source prometheus --url SERVER --since …` against a
  fake Prometheus HTTP API, ingested at once (or queued while the daemon owns the warehouse).

The subprocess agents run with a flush interval far longer than the test, so every row they
wrote reached the spool in the flush on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cli import app
from cli.main import main
from collectors.gpu.agent import Agent
from collectors.gpu.nvml import NvmlCollector
from config.settings import Config, load_config
from tables import spool
from tests.clock import stamp_now
from warehouse.live import latest_gpu_samples
from warehouse.lock import WriterLock
from warehouse.snapshot import Snapshot

try:
    from tests.collectors.gpu import fake_nvml as fk
    from tests.collectors.gpu.fake_prometheus import FakePrometheus, serve_page
except ImportError:  # pragma: no cover - depends on how pytest was started
    import fake_nvml as fk  # type: ignore[no-redef]
    from fake_prometheus import FakePrometheus, serve_page  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[3]
REAL = ROOT / "tests" / "fixtures" / "realdata"
SMI_XML = REAL / "nvidia-smi-xml-datakit" / "gtx-1card.xml"  # a V100, four processes
DCGM_PAGE = REAL / "dcgm-exporter-cncf-ai-conformance" / "kops.prom"  # an L4 on EC2
NOTEBOOK_RULES = (
    {"match": "env", "key": "GPULEDGER_WORKLOAD"},
    {"match": "cmdline", "pattern": "ipykernel", "workload": "notebooks"},
)


def stored(cfg: Config, sql: str) -> list[tuple]:
    con = duckdb.connect(str(cfg.db_path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")  # as the warehouse's own sessions; not the machine's
        return con.execute(sql).fetchall()
    finally:
        con.close()


def ingest(cfg: Config) -> dict[str, int]:
    """What `gpuledger run` does each cycle: ingest the spool, run the jobs, publish."""
    with app.open_warehouse(cfg) as wh:
        result = app.cycle(wh, cfg, app.catalog_for(cfg))
    assert result.rejected == []
    return result.rows


def snapshot_reads(cfg: Config) -> tuple[pl.DataFrame, pl.DataFrame]:
    snap = Snapshot(cfg.snapshot_path)
    try:
        return snap.hosts(), snap.gpus_now()
    finally:
        snap.close()


# --------------------------------------------------------------------------- NVML (fake)


def nvml_agent(cfg: Config, host: str, fake: fk.FakeNvml, clock: fk.FakeClock, proc_root: Path):
    collector = NvmlCollector(
        host,
        rules=list(cfg.workloads.rules),
        nvml=fake,
        proc_root=proc_root,
        clock=clock.monotonic,
        sleep=clock.sleep,
    )
    return Agent(collector.sample, cfg.spool_dir, flush_interval_s=5.0), collector


def test_nvml_hosts_reach_the_warehouse_the_snapshot_and_the_live_view(cfg, tmp_path, clock):
    cfg = replace(cfg, workloads=replace(cfg.workloads, rules=NOTEBOOK_RULES))
    proc_root = fk.write_scenario_procs(tmp_path / "proc")
    clock = fk.FakeClock()
    hosts = {
        "dgx-h100": fk.scenario_8x_h100_busy(clock),
        "ws-notebook": fk.scenario_notebook_70gb_idle(clock),
        "node-lost": fk.scenario_gpu_lost_mid_run(clock),
    }
    agents = [nvml_agent(cfg, h, fake, clock, proc_root) for h, fake in hosts.items()]
    for _ in range(3):
        for agent, _collector in agents:
            agent.tick()
        clock.advance(1.0)
        time.sleep(0.002)  # distinct wall-clock stamps per tick
    for agent, collector in agents:
        assert agent.flush() >= 2  # gpu_samples and process_samples (and health where lost)
        collector.close()

    rows = ingest(cfg)
    # 8 + 1 + (2, then 1 after the loss, twice) GPU rows, one process per GPU row.
    assert rows == {"gpu_samples": 3 * 8 + 3 * 1 + 4, "process_samples": 31, "health": 2}
    assert stored(
        cfg,
        "SELECT host, workload, count(*), round(sum(used_mib)) FROM process_samples"
        " GROUP BY ALL ORDER BY host",
    ) == [
        ("dgx-h100", "llm-pretrain", 24, 24 * 72 * 1024.0),
        ("node-lost", "llm-finetune", 4, 4 * 40 * 1024.0),
        ("ws-notebook", "notebooks", 3, 3 * 70 * 1024.0),
    ]
    assert (
        stored(cfg, "SELECT host, gpu_uuid, kind FROM health")
        == [("node-lost", "GPU-h100-lost-1", "gpu_lost")] * 2
    )
    assert stored(cfg, "SELECT DISTINCT source FROM gpu_samples") == [("nvml",)]

    hosts_seen, gpus_now = snapshot_reads(cfg)
    assert hosts_seen.select("host", "gpus", "source").rows() == [
        ("dgx-h100", 8, "nvml"),
        ("node-lost", 2, "nvml"),
        ("ws-notebook", 1, "nvml"),
    ]
    notebook = gpus_now.filter(pl.col("host") == "ws-notebook").row(0, named=True)
    assert (notebook["mem_used_mib"], notebook["sm_active_pct"], notebook["workload"]) == (
        71680.0,
        0.0,
        "notebooks",
    )

    stamp_now(*cfg.spool_dir.rglob("*.parquet"))  # written now by the pinned clock
    live = latest_gpu_samples(cfg.spool_dir)
    assert live.height == 8 + 1 + 2
    busy = live.filter(pl.col("host") == "dgx-h100")
    assert busy["sm_active_pct"].to_list() == [80.0 + i for i in range(8)]
    assert set(busy["activity_kind"]) == {"gpm"} and set(busy["workload"]) == {"llm-pretrain"}


# --------------------------------------------------------------------------- subprocess agents


def write_config(tmp_path: Path, **collect: object) -> Path:
    conf = tmp_path / "gpuledger.toml"
    lines = [
        "[warehouse]",
        f'path = "{tmp_path}/data/warehouse.duckdb"',
        "[catalog]",
        f'path = "{ROOT}/config/catalog.csv"',
        "[demo]",
        'mode = "off"',
        "[collect]",
        "interval_s = 0.2",
        "flush_interval_s = 300.0",  # nothing flushed before SIGTERM: the stop must flush
        *(f"{k} = {json.dumps(v)}" for k, v in collect.items()),
    ]
    conf.write_text("\n".join(lines) + "\n")
    return conf


def run_agent_until(args: list[str], conf: Path, done, env: dict | None = None) -> str:
    """`gpuledger --config conf collect ARGS` until `done()` (at most 60 s), then SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "--config", str(conf), "collect", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not done() and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, "the agent exited before it was stopped"
        assert done(), "the agent did not sample in time"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    return out


@pytest.mark.slow
def test_smi_agent_samples_a_capture_and_attributes_a_real_process(tmp_path):
    child = subprocess.Popen(["sleep", "120"], env={**os.environ, "GPULEDGER_WORKLOAD": "smi-e2e"})
    try:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        calls = tmp_path / "calls"
        # The capture's biggest process (pid 4027590, 3288 MiB) becomes our child.
        script = bin_dir / "nvidia-smi"
        script.write_text(
            f'#!/bin/sh\necho "$@" >> {calls}\nsed "s/<pid>4027590</<pid>{child.pid}</" {SMI_XML}\n'
        )
        script.chmod(0o755)
        conf = write_config(tmp_path, host_id="smi-host")
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

        def sampled() -> bool:
            return calls.exists() and len(calls.read_text().splitlines()) >= 3

        run_agent_until(["--source", "smi"], conf, sampled, env)
    finally:
        child.kill()
        child.wait()
    ticks = len(calls.read_text().splitlines())
    assert set(calls.read_text().splitlines()) == {"-q -x"}  # no MIG, so no `-L`

    cfg = load_config(conf)
    rows = ingest(cfg)
    assert rows["gpu_samples"] == ticks  # one V100; every tick reached the spool on SIGTERM
    assert rows["process_samples"] == 4 * ticks
    assert stored(
        cfg, "SELECT DISTINCT host, gpu_model, mem_used_mib, workload FROM gpu_samples"
    ) == [("smi-host", "Tesla V100-PCIE-32GB", 12311.0, "smi-e2e")]
    procs = stored(
        cfg,
        "SELECT DISTINCT pid, used_mib, command, workload FROM process_samples"
        f" WHERE pid = {child.pid}",
    )
    assert procs == [(child.pid, 3288.0, "sleep 120", "smi-e2e")]  # /proc, not the capture
    others = stored(cfg, f"SELECT DISTINCT workload FROM process_samples WHERE pid <> {child.pid}")
    assert all(w.startswith("unattributed:") for (w,) in others)

    hosts_seen, _ = snapshot_reads(cfg)
    assert hosts_seen.select("host", "gpus", "source").rows() == [("smi-host", 1, "smi")]
    live = latest_gpu_samples(cfg.spool_dir)
    assert live.select("host", "util_pct", "workload").rows() == [("smi-host", 91.0, "smi-e2e")]


def with_pod_labels(page: str, pod: str, namespace: str, container: str) -> str:
    """The page as dcgm-exporter writes it with Kubernetes pod mapping on (the pod's labels on
    each series of the GPU it holds)."""
    extra = f',pod="{pod}",namespace="{namespace}",container="{container}"'
    return "\n".join(
        line.replace("}", extra + "}", 1) if line.startswith("DCGM_FI_") else line
        for line in page.splitlines()
    )


@pytest.mark.slow
def test_dcgm_exporter_agent_scrapes_until_sigterm(tmp_path):
    page = with_pod_labels(DCGM_PAGE.read_text(), "llama-0", "team-llm", "trainer").encode()
    conf = write_config(tmp_path)
    with serve_page(lambda: page) as (url, hits):
        run_agent_until(
            ["--source", "prometheus", "--url", url], conf, lambda: len(hits) >= 3, None
        )
        scrapes = len(hits)

    cfg = load_config(conf)
    rows = ingest(cfg)
    assert rows["gpu_samples"] == scrapes  # one L4 per scrape
    assert rows["process_samples"] == scrapes
    # Host from the exporter's Hostname label: the EC2 instance id the bill names.
    assert stored(cfg, "SELECT DISTINCT host, gpu_model, workload FROM gpu_samples") == [
        ("i-030791dc5a37cd257", "NVIDIA L4", "team-llm")
    ]
    assert stored(
        cfg, "SELECT DISTINCT pod, namespace, container, workload FROM process_samples"
    ) == [("llama-0", "team-llm", "trainer", "team-llm")]
    hosts_seen, gpus_now = snapshot_reads(cfg)
    assert hosts_seen.select("host", "source").rows() == [("i-030791dc5a37cd257", "prometheus")]
    assert gpus_now["workload"].to_list() == ["team-llm"]
    live = latest_gpu_samples(cfg.spool_dir)
    assert live.select("host", "gpu_model", "mem_used_mib").rows() == [
        ("i-030791dc5a37cd257", "NVIDIA L4", 0.0)
    ]


# --------------------------------------------------------------------------- Prometheus history

SINCE = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
KOPS = {
    "UUID": "GPU-2e8f2b87-5c44-4c5c-dfbf-5b7c3c69a8c4",
    "gpu": "0",
    "Hostname": "i-030791dc5a37cd257",
    "modelName": "NVIDIA L4",
    "pod": "dcgm-exporter-x7k2p",  # as Prometheus labels it: the exporter's pod…
    "exported_pod": "llama-0",  # …and the workload's pod it reported
    "exported_namespace": "team-llm",
}


def fake_history(hours: int) -> FakePrometheus:
    """15-second scrapes of one L4: utilization = the hour x 10, 20 GiB used, 70 W."""
    api = FakePrometheus()
    t0 = SINCE.timestamp()
    times = [t0 + 15 * k for k in range(hours * 240)]
    for name, value in (
        ("DCGM_FI_DEV_GPU_UTIL", lambda t: 10.0 * ((t - t0) // 3600)),
        ("DCGM_FI_DEV_FB_USED", lambda t: 20480.0),
        ("DCGM_FI_DEV_FB_FREE", lambda t: 2355.0),
        ("DCGM_FI_DEV_POWER_USAGE", lambda t: 70.0),
    ):
        api.add(
            {"__name__": name, **KOPS, "instance": "10.0.3.7:9400"}, {t: value(t) for t in times}
        )
    return api


def run_cli(cfg: Config, *args: str) -> int:
    return main(["--config", cfg.source, "--db", str(cfg.db_path), *args])


def test_prometheus_history_lands_in_the_warehouse(cfg, capsys, clock):
    """(The clock is pinned: the snapshot keeps the last 35 days, SINCE among them.)"""
    api = fake_history(hours=3)
    with api.running() as base:
        code = run_cli(
            cfg,
            "collect",
            "--source",
            "prometheus",
            "--url",
            base,
            "--since",
            "2026-11-20T00:00:00Z",
            "--until",
            "2026-11-20T03:00:00+00:00",
            "--format",
            "json",
        )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["gpu_samples"], report["process_samples"], report["hosts"]) == (180, 180, 1)
    # Three 1-hour windows x (gpu_samples + process_samples) files, all ingested at once.
    assert report["status"] == ("ingested 6 spool file(s): 180 gpu_samples, 180 process_samples")
    assert report["windows"] == 3  # 60 steps of 60 s per window (--window 3600, the default)
    # One point a minute for three hours; hour h at 10 h %.
    assert stored(
        cfg,
        "SELECT hour(ts), count(*), avg(util_pct), max(mem_total_mib), any_value(workload)"
        " FROM gpu_samples GROUP BY 1 ORDER BY 1",
    ) == [
        (0, 60, 0.0, 22835.0, "team-llm"),
        (1, 60, 10.0, 22835.0, "team-llm"),
        (2, 60, 20.0, 22835.0, "team-llm"),
    ]
    assert stored(cfg, "SELECT min(ts), max(ts) FROM gpu_samples") == [
        (SINCE, SINCE + timedelta(hours=3) - timedelta(minutes=1))
    ]
    assert stored(cfg, "SELECT DISTINCT pod, namespace, workload FROM process_samples") == [
        ("llama-0", "team-llm", "team-llm")
    ]
    hosts_seen, _ = snapshot_reads(cfg)
    assert hosts_seen.select("host", "gpus", "source").rows() == [
        ("i-030791dc5a37cd257", 1, "prometheus")
    ]


def test_prometheus_history_is_queued_while_the_daemon_owns_the_warehouse(cfg, capsys, clock):
    assert run_cli(cfg, "init") == 0
    capsys.readouterr()
    api = fake_history(hours=1)
    lock = WriterLock(cfg.db_path).acquire()
    try:
        with api.running() as base:
            args = ["--url", base, "--since", "2026-11-20", "--until", "2026-11-20T01:00:00Z"]
            assert run_cli(cfg, "collect", "--source", "prometheus", *args, "--format", "json") == 0
        report = json.loads(capsys.readouterr().out)
        assert report["status"].startswith("queued in the spool")
        assert len(spool.list_batches(cfg.spool_dir, "gpu_samples")) == 1
    finally:
        lock.release()
    assert ingest(cfg)["gpu_samples"] == 60


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-11-20T00:00:00"], "has no offset: add Z for UTC"),
        (["--since", "yesterday"], "is not an ISO 8601 time"),
        (["--since", "2026-11-20", "--until", "2026-11-19"], "is not before until"),
        (["--since", "2026-11-20", "--step", "0"], "--step must be between 1 and 3600"),
        (["--until", "2026-11-20"], "--until needs --since"),
        (["--step", "60"], "--step goes with --since"),
    ],
)
def test_history_usage_errors_exit_2(cfg, capsys, args, message):
    code = run_cli(cfg, "collect", "--source", "prometheus", "--url", "http://127.0.0.1:9", *args)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not cfg.db_path.exists()


def test_history_needs_source_prometheus(cfg, capsys):
    assert run_cli(cfg, "collect", "--source", "smi", "--since", "2026-11-20") == 2
    assert "--source prometheus only" in capsys.readouterr().err


def test_unreachable_prometheus_exits_1_naming_the_url(cfg, capsys):
    with FakePrometheus().running() as base:
        pass  # closed: nothing listens there any more
    code = run_cli(cfg, "collect", "--source", "prometheus", "--url", base, "--since", "2026-11-20")
    assert code == 1
    # The first call of a window counts its series: a server that never answered fails at once.
    assert f"cannot fetch {base}/api/v1/series" in capsys.readouterr().err


# --------------------------------------------------------------------------- captures, lean entry


def test_a_capture_with_processes_prints_their_workload_by_the_rules(cfg, tmp_path, capsys):
    conf = tmp_path / "rules.toml"
    conf.write_text(
        Path(cfg.source)
        .read_text()
        .replace("rules = []", 'rules = [{ match = "cmdline", pattern = "^mtopen-(\\\\w+)" }]')
    )
    args = ["collect", "--source", "smi", "--from", str(SMI_XML), "--once", "--format", "json"]
    assert main(["--config", str(cfg.source), *args]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["workload"] == "unattributed:unknown"  # a capture's processes: no user known
    assert main(["--config", str(conf), *args]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["workload"] == "plugin"  # group 1 of the pattern on the command


def test_the_lean_entry_takes_the_same_options(cfg, capsys):
    from cli.collect import main as lean

    args = ["--config", cfg.source, "--source", "smi", "--from", str(SMI_XML), "--once"]
    assert lean([*args, "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ts,host,gpu_uuid,") and len(out) == 2
    assert lean(["--config", cfg.source, "--source", "nvml", "--once"]) == 2
    assert "no NVIDIA GPU or driver on this host" in capsys.readouterr().err
    assert lean(["--config", "/nonexistent.toml", "--once"]) == 2
    assert "configuration file not found" in capsys.readouterr().err
    assert lean(["--source", "nope"]) == 2  # argparse's own usage error
