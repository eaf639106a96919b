"""`gpuledger collect --source prometheus --since` against real servers from Debian's packages,
each started by a session fixture on a free port in a temporary folder: VictoriaMetrics
(`victoria-metrics`, fed through its Prometheus text import once it runs) and Prometheus
(`prometheus`, its TSDB backfilled with `promtool tsdb create-blocks-from openmetrics` before it
starts). Both answer the `/api/v1/query_range` and `/api/v1/series` that Thanos and Mimir answer
too. A test is skipped, naming the package, where its binary is missing or does not start.

The fleet, one sample a minute at whole minutes from SINCE for 3 hours (180 per series):
- node-a (dcgm-exporter, instance 10.0.0.1:9400): GPU-a0 at 50 % all along; GPU-a1 at 0 %, 25 %,
  50 % in hours 0, 1, 2; FB used 1000 / 2000 MiB with 79,000 / 78,000 free; 300 W.
- node-b (dcgm-exporter with profiling, instance 10.0.0.2:9400): GPU-b0 at 100 % util, SM
  active 0.75; 4,000 MiB used, 76,000 free; 500 W.
- node-c (nvidia_gpu_exporter, instance node-c:9835, no Hostname): one GPU, uuid without its
  `GPU-` prefix, utilization ratio 0.25, 2 GiB of 16 GiB used, 70 W.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from collectors.gpu import prometheus_history as ph
from config.settings import Config

SINCE = datetime(2025, 3, 1, tzinfo=UTC)
HOURS = 3
MINUTES = HOURS * 60
C_UUID = "c0c0c0c0-0000-1111-2222-333333333333"
GIB = 1024**3
Value = float | Callable[[int], float]


def _dcgm(host: str, instance: str, uuid: str, gpu: int) -> str:
    return (
        f'UUID="{uuid}",gpu="{gpu}",Hostname="{host}",modelName="NVIDIA H100 80GB HBM3",'
        f'instance="{instance}",job="dcgm"'
    )


def fleet() -> list[tuple[str, str, Value]]:
    """(metric, labels as written in the exposition, value or value of the minute) per series."""
    a0, a1 = (
        _dcgm("node-a", "10.0.0.1:9400", "GPU-a0", 0),
        _dcgm("node-a", "10.0.0.1:9400", "GPU-a1", 1),
    )
    b0 = _dcgm("node-b", "10.0.0.2:9400", "GPU-b0", 0)
    c0 = f'uuid="{C_UUID}",instance="node-c:9835",job="nvidia_gpu_exporter"'
    return [
        ("DCGM_FI_DEV_GPU_UTIL", a0, 50),
        ("DCGM_FI_DEV_FB_USED", a0, 1000),
        ("DCGM_FI_DEV_FB_FREE", a0, 79000),
        ("DCGM_FI_DEV_POWER_USAGE", a0, 300),
        ("DCGM_FI_DEV_GPU_UTIL", a1, lambda m: 25 * (m // 60)),
        ("DCGM_FI_DEV_FB_USED", a1, 2000),
        ("DCGM_FI_DEV_FB_FREE", a1, 78000),
        ("DCGM_FI_DEV_POWER_USAGE", a1, 300),
        ("DCGM_FI_DEV_GPU_UTIL", b0, 100),
        ("DCGM_FI_PROF_SM_ACTIVE", b0, 0.75),
        ("DCGM_FI_DEV_FB_USED", b0, 4000),
        ("DCGM_FI_DEV_FB_FREE", b0, 76000),
        ("DCGM_FI_DEV_POWER_USAGE", b0, 500),
        ("nvidia_smi_utilization_gpu_ratio", c0, 0.25),
        ("nvidia_smi_memory_used_bytes", c0, 2 * GIB),
        ("nvidia_smi_memory_total_bytes", c0, 16 * GIB),
        ("nvidia_smi_power_draw_watts", c0, 70),
    ]


SERIES = len(fleet())  # 17


def exposition(openmetrics: bool = False) -> str:
    """The fleet as Prometheus text with millisecond timestamps (VictoriaMetrics' import), or
    as OpenMetrics (seconds, each family together, `# EOF`) for promtool's backfill."""
    t0 = int(SINCE.timestamp())
    lines = []
    for name, labels, value in sorted(fleet(), key=lambda s: s[0]) if openmetrics else fleet():
        for m in range(MINUTES):
            v = value(m) if callable(value) else value
            t = f"{t0 + m * 60}" if openmetrics else f"{(t0 + m * 60) * 1000}"
            lines.append(f"{name}{{{labels}}} {v} {t}")
    return "\n".join([*lines, "# EOF"] if openmetrics else lines) + "\n"


@dataclass
class Server:
    package: str
    url: str
    process: subprocess.Popen

    def post(self, path: str, body: bytes = b"") -> int:
        request = urllib.request.Request(self.url + path, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status

    def get(self, path: str, **params: str) -> dict:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def points(self) -> int:
        """Raw samples stored in [SINCE, SINCE + HOURS h] (VictoriaMetrics' sum: Prometheus
        refuses a sum over series that lose their names)."""
        at = (SINCE + timedelta(hours=HOURS)).timestamp()
        query = f'sum(count_over_time({{__name__=~".+"}}[{HOURS + 1}h]))'
        result = self.get("/api/v1/query", query=query, time=str(at))["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    def wait_for_points(self, points: int) -> None:
        """Until VictoriaMetrics has made every imported sample searchable."""
        deadline = time.monotonic() + 15
        while (held := self.points()) < points:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.package} holds {held} of {points} samples after 15 s")
            self.post("/internal/force_flush")
            time.sleep(0.2)


def _binary(package: str, name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"no {name} binary: install Debian's package {package} (apt-get install)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(package: str, args: list[str], folder: Path, port: int) -> Iterator[Server]:
    """`args` started with its output in `folder`; the server once it answers, stopped after."""
    log = folder / f"{package}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    server = Server(package, f"http://127.0.0.1:{port}", process)
    try:
        _wait_healthy(server, log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(server: Server, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.skip(f"{server.package} exited at start: {log.read_text()[-500:]}")
        try:
            if server.get("/api/v1/labels").get("status") == "success":
                return
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.1)
    pytest.skip(f"{server.package} did not answer within 15 s: {log.read_text()[-500:]}")


def start_victoria(folder: Path, *flags: str) -> Iterator[Server]:
    """VictoriaMetrics holding the fleet, until the generator closes."""
    binary, port = _binary("victoria-metrics", "victoria-metrics"), _free_port()
    args = [binary, f"-storageDataPath={folder / 'data'}", f"-httpListenAddr=127.0.0.1:{port}"]
    args += ["-retentionPeriod=100y", "-search.disableCache", *flags]
    for vm in _run("victoria-metrics", args, folder, port):
        assert vm.post("/api/v1/import/prometheus", exposition().encode()) in (200, 204)
        vm.wait_for_points(SERIES * MINUTES)
        yield vm


def start_prometheus(folder: Path, *flags: str) -> Iterator[Server]:
    """Prometheus over a TSDB backfilled with the fleet, until the generator closes."""
    binary, promtool = _binary("prometheus", "prometheus"), _binary("prometheus", "promtool")
    source = folder / "fleet.om"
    source.write_text(exposition(openmetrics=True))
    backfill = [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), "data"]
    done = subprocess.run(backfill, cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
    (folder / "prometheus.yml").write_text("global: {}\n")  # no scrapes: the backfill only
    port = _free_port()
    args = [binary, f"--config.file={folder / 'prometheus.yml'}"]
    args += [f"--storage.tsdb.path={folder / 'data'}", "--storage.tsdb.retention.time=100y"]
    args += [f"--web.listen-address=127.0.0.1:{port}", *flags]
    for server in _run("prometheus", args, folder, port):
        # The backfilled blocks are whole once loaded: their series listed means all samples.
        span = {"start": str(SINCE.timestamp()), "end": str(SINCE.timestamp() + HOURS * 3600)}
        found = server.get("/api/v1/series", **{"match[]": '{__name__=~".+"}'}, **span)
        assert len(found["data"]) == SERIES
        yield server


START = {"victoria-metrics": start_victoria, "prometheus": start_prometheus}


@pytest.fixture(scope="session", params=list(START))
def server(request, tmp_path_factory) -> Iterator[Server]:
    """Each server holding the fleet of the module docstring."""
    yield from START[request.param](tmp_path_factory.mktemp(request.param))


def collect(cfg: Config, url: str, *extra: str) -> int:
    until = (SINCE + timedelta(hours=HOURS)).isoformat()
    args = ["--source", "prometheus", "--url", url, "--since", SINCE.isoformat()]
    args += ["--until", until, "--format", "json", *extra]
    return main(["--config", cfg.source, "--db", str(cfg.db_path), "collect", *args])


def stored(cfg: Config, sql: str) -> list[tuple]:
    con = duckdb.connect(str(cfg.db_path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_history_lands_exactly_in_the_warehouse(server, cfg, capsys, clock):
    # 17 series a window but at most 6 a call: one call per instance (8, 5 and 4 series).
    assert collect(cfg, server.url, "--max-series", "6") == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert (report["windows"], report["hosts"]) == (3, 3)
    assert report["gpu_samples"] == 4 * MINUTES  # 4 GPUs x 180 minutes
    assert "window 3/3 2025-03-01T02:00:00Z..02:59:00Z: 240 samples, 17 series, 4 call(s)" in (
        out.err
    )
    c0 = f"GPU-{C_UUID}"
    # Per GPU: 180 samples, one a minute from SINCE to 02:59; the values written.
    assert stored(
        cfg,
        "SELECT host, gpu_uuid, count(*), count(DISTINCT ts), min(ts), max(ts), avg(util_pct),"
        " max(mem_used_mib), max(mem_total_mib), avg(power_w), any_value(activity_kind)"
        " FROM gpu_samples GROUP BY ALL ORDER BY gpu_uuid",
    ) == [
        (h, g, 180, 180, SINCE, SINCE + timedelta(minutes=179), util, used, total, watts, kind)
        for h, g, util, used, total, watts, kind in (
            ("node-a", "GPU-a0", 50.0, 1000.0, 80000.0, 300.0, "nvml_util"),
            ("node-a", "GPU-a1", 25.0, 2000.0, 80000.0, 300.0, "nvml_util"),  # (0+25+50)/3
            ("node-b", "GPU-b0", 100.0, 4000.0, 80000.0, 500.0, "dcgm"),
            ("node-c", c0, 25.0, 2048.0, 16384.0, 70.0, "nvml_util"),  # ratio 0.25; bytes/MiB
        )
    ]
    assert stored(
        cfg,
        "SELECT hour(ts), avg(util_pct) FROM gpu_samples WHERE gpu_uuid = 'GPU-a1' GROUP BY 1"
        " ORDER BY 1",
    ) == [(0, 0.0), (1, 25.0), (2, 50.0)]
    # GPU-hours: each sample stands for its 60 s, so 180 x 60 s = 3 GPU-hours per GPU; busy
    # hours are 3 h x activity: a0 50 % -> 1.5; a1 (0 + 0.25 + 0.5) x 1 h -> 0.75; b0 SM active
    # 75 % (the DCGM signal wins over util) -> 2.25; c0 25 % -> 0.75.
    assert stored(
        cfg,
        "SELECT gpu_uuid, round(sum(seconds) / 3600, 6), round(sum(busy_seconds) / 3600, 6)"
        " FROM gpu_minute GROUP BY 1 ORDER BY 1",
    ) == [("GPU-a0", 3.0, 1.5), ("GPU-a1", 3.0, 0.75), ("GPU-b0", 3.0, 2.25), (c0, 3.0, 0.75)]


def test_a_run_stopped_after_two_windows_then_run_again_stores_every_sample_once(
    server, cfg, capsys, clock, monkeypatch
):
    reads = ph.RangeClient.matrix

    def fails_in_window_3(self, query, start, end, step_s, window):
        if start >= SINCE + timedelta(hours=2):
            raise ph.HistoryError(f"{self.base}/api/v1/query_range ({window}): timed out")
        return reads(self, query, start, end, step_s, window)

    monkeypatch.setattr(ph.RangeClient, "matrix", fails_in_window_3)
    assert collect(cfg, server.url) == 1
    assert "window 2025-03-01T02:00:00Z..2025-03-01T02:59:00Z): timed out" in (
        capsys.readouterr().err
    )
    monkeypatch.setattr(ph.RangeClient, "matrix", reads)
    assert collect(cfg, server.url) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["resumed_at"].startswith("2025-03-01T02:00:00")
    assert (report["windows"], report["gpu_samples"]) == (1, 4 * 60)  # window 3 only
    # Both runs' spool files ingested together: 4 GPUs x 180 minutes, each once.
    assert stored(cfg, "SELECT count(*), count(DISTINCT (gpu_uuid, ts)) FROM gpu_samples") == [
        (720, 720)
    ]
    # 3 windows x 3 hosts of gpu_samples batches, none written twice.
    assert stored(cfg, "SELECT count(*) FROM ingested_files WHERE kind = 'gpu_samples'") == [(9,)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("package", "flag", "refusal"),
    [
        (
            "victoria-metrics",
            "-search.maxPointsPerTimeseries=40",
            "cannot exceed -search.maxPointsPerTimeseries=40",
        ),
        ("prometheus", "--query.max-samples=600", "would load too many samples into memory"),
    ],
)
def test_a_server_refusing_too_many_samples_is_read_in_halves(
    package, flag, refusal, tmp_path, cfg, capsys, caplog, clock
):
    """A server of its own refusing the 60-step call for 17 series (VictoriaMetrics: over 40
    points a series; Prometheus: 17 x 60 = 1,020 samples over 600): that call is halved, and
    every later call is 30 steps (17 x 30 = 510)."""
    for server in START[package](tmp_path, flag):
        assert collect(cfg, server.url) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["gpu_samples"] == 4 * MINUTES
    (halved,) = [r.getMessage() for r in caplog.records if "halves" in r.getMessage()]
    assert refusal in halved
    assert halved.endswith("reading it in halves of 30 steps")
    # Every window: the series call and two answers of 30 steps (the refused call not counted).
    assert "window 1/3 2025-03-01T00:00:00Z..00:59:00Z: 240 samples, 17 series, 3 call(s)" in (
        out.err
    )
    assert "window 3/3 2025-03-01T02:00:00Z..02:59:00Z: 240 samples, 17 series, 3 call(s)" in (
        out.err
    )
    assert stored(cfg, "SELECT count(*), count(DISTINCT (gpu_uuid, ts)) FROM gpu_samples") == [
        (720, 720)
    ]


@pytest.mark.slow
def test_victoriametrics_refusing_to_list_every_series_is_asked_per_metric(
    tmp_path, cfg, capsys, caplog, clock
):
    """-search.maxSeries=5: the 17 series are listed one metric name at a time (3 at most)."""
    for server in start_victoria(tmp_path, "-search.maxSeries=5"):
        assert collect(cfg, server.url) == 0
    assert json.loads(capsys.readouterr().out)["gpu_samples"] == 4 * MINUTES
    assert "number of matching timeseries exceeds 5" in caplog.text
    assert stored(cfg, "SELECT count(*), count(DISTINCT (gpu_uuid, ts)) FROM gpu_samples") == [
        (720, 720)
    ]
