"""collectors/gpu/prometheus.py against real dcgm-exporter and nvidia_gpu_exporter pages, a real
HTTP server and a fake Prometheus HTTP API.

Expected figures are read from the raw files with regexes, never through the parser under test.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from collectors.gpu import prometheus as prom
from tables.records import GPU_SAMPLE_SCHEMA, PROCESS_SAMPLE_SCHEMA

try:
    from tests.collectors.gpu.fake_prometheus import FakePrometheus, QuietHandler, serve, serve_page
except ImportError:  # pragma: no cover - depends on how pytest was started
    from fake_prometheus import FakePrometheus, QuietHandler, serve, serve_page  # type: ignore

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "realdata"
DCGM = sorted((REAL / "dcgm-exporter-cncf-ai-conformance").glob("*.prom"))
EXPORTER = sorted((REAL / "nvidia-smi-captures-utkuozdemir" / "exporter-metrics").glob("*.metrics"))
MIB = 1024 * 1024


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _last(text: str, metric: str, gpu: str | None = None) -> float | None:
    """The last value of `metric` (for GPU index `gpu`) in a raw page, read with a regex."""
    where = rf'[^}}]*\bgpu="{gpu}"' if gpu is not None else ""
    found = re.findall(rf"^{metric}\{{{where}[^}}]*\}} (\S+)$", text, re.M)
    return float(found[-1]) if found else None


def test_every_exporter_page_is_a_fixture() -> None:
    assert (len(DCGM), len(EXPORTER)) == (6, 16)


# ---------------------------------------------------------------- real pages


@pytest.mark.parametrize("path", DCGM, ids=_ids(DCGM))
def test_dcgm_page_matches_raw_text(path: Path) -> None:
    text = path.read_text()
    gpus = prom.parse_capture_file(path).gpu_samples.sort("gpu_index")
    indexes = sorted(set(re.findall(r'\bgpu="(\d+)"', text)), key=int)
    assert gpus["gpu_index"].to_list() == [int(i) for i in indexes]  # duplicates collapse
    assert set(gpus["gpu_model"]) == set(re.findall(r'modelName="([^"]*)"', text))
    assert set(gpus["host"]) == set(re.findall(r'Hostname="([^"]*)"', text))
    for row, gpu in zip(gpus.iter_rows(named=True), indexes, strict=True):
        used, free = (
            _last(text, "DCGM_FI_DEV_FB_USED", gpu),
            _last(text, "DCGM_FI_DEV_FB_FREE", gpu),
        )
        reserved = _last(text, "DCGM_FI_DEV_FB_RESERVED", gpu) or 0.0
        assert row["mem_used_mib"] == used
        assert row["mem_total_mib"] == used + free + reserved
        assert row["util_pct"] == _last(text, "DCGM_FI_DEV_GPU_UTIL", gpu)
        assert row["power_w"] == _last(text, "DCGM_FI_DEV_POWER_USAGE", gpu)  # vks (vGPU): none
        assert row["energy_mj"] == _last(text, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", gpu)
        tensor = _last(text, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", gpu)
        assert row["tensor_active_pct"] == (None if tensor is None else pytest.approx(tensor * 100))
        assert row["gpu_uuid"].startswith("GPU-") and row["activity_kind"] == "nvml_util"


def _without(text: str, *metrics: str) -> str:
    return "\n".join(
        line for line in text.splitlines() if not line.startswith(tuple(f"{m}{{" for m in metrics))
    )


@pytest.mark.parametrize("path", DCGM, ids=_ids(DCGM))
def test_dcgm_page_without_fb_used_has_unknown_memory_not_zero(path: Path) -> None:
    """None of the real pages has DCGM_FI_DEV_FB_TOTAL: without FB_USED neither the memory in
    use nor the total can be told, with or without FB_FREE. Null, never 0."""
    text = path.read_text()
    assert _last(text, "DCGM_FI_DEV_FB_USED") is not None  # the real page has it
    for dropped in (("DCGM_FI_DEV_FB_USED",), ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE")):
        gpus = prom.parse_exposition(_without(text, *dropped), host="h").gpu_samples
        assert gpus.height > 0
        assert gpus["mem_used_mib"].null_count() == gpus.height
        assert gpus["mem_total_mib"].null_count() == gpus.height
        assert gpus["util_pct"].to_list() == [
            _last(text, "DCGM_FI_DEV_GPU_UTIL", str(i)) for i in gpus["gpu_index"]
        ]


def test_dcgm_used_memory_follows_from_total_free_and_reserved_when_fb_used_is_missing() -> None:
    """The ericsson T4 page reads FB_USED 5120, FB_FREE 9791, FB_RESERVED 447 MiB. Given a
    DCGM_FI_DEV_FB_TOTAL of their sum, 15358 MiB, and its FB_USED dropped, the memory in use is
    15358 − 9791 − 447 = 5120 MiB again: what the page said."""
    path = next(p for p in DCGM if p.name == "ericsson-ccd.prom")
    text = path.read_text()
    used, free = _last(text, "DCGM_FI_DEV_FB_USED"), _last(text, "DCGM_FI_DEV_FB_FREE")
    reserved = _last(text, "DCGM_FI_DEV_FB_RESERVED")
    assert (used, free, reserved) == (5120.0, 9791.0, 447.0)
    labels = re.search(r"^DCGM_FI_DEV_FB_FREE(\{[^}]*\})", text, re.M).group(1)
    page = _without(text, "DCGM_FI_DEV_FB_USED") + f"\nDCGM_FI_DEV_FB_TOTAL{labels} 15358\n"
    row = prom.parse_exposition(page, host="h").gpu_samples.row(0, named=True)
    assert (row["mem_used_mib"], row["mem_total_mib"]) == (5120.0, 15358.0)


@pytest.mark.parametrize("path", EXPORTER, ids=_ids(EXPORTER))
def test_nvidia_gpu_exporter_page_matches_raw_text(path: Path) -> None:
    text = path.read_text()
    batch = prom.parse_capture_file(path)
    gpus, procs = batch.gpu_samples, batch.process_samples
    info = re.findall(r'^nvidia_smi_gpu_info\{.*\bname="([^"]*)".*\buuid="([^"]*)"', text, re.M)
    util = _last(text, "nvidia_smi_utilization_gpu_ratio")  # absent on the MIG capture
    pids = re.findall(r'^nvidia_smi_compute_app_info\{pid="(\d+)"', text, re.M)

    assert gpus.height == len(info) == 1
    row = gpus.row(0, named=True)
    assert (row["gpu_model"], row["gpu_uuid"]) == (info[0][0], f"GPU-{info[0][1]}")
    assert row["mem_used_mib"] == _last(text, "nvidia_smi_memory_used_bytes") / MIB
    assert row["mem_total_mib"] == _last(text, "nvidia_smi_memory_total_bytes") / MIB
    assert row["util_pct"] == (None if util is None else pytest.approx(util * 100))
    assert row["power_w"] == _last(text, "nvidia_smi_power_draw_watts")
    assert row["host"] == path.name.removesuffix(".metrics").rsplit("__", 1)[0]
    assert sorted(procs["pid"]) == sorted(map(int, pids))
    memory = re.findall(
        r'^nvidia_smi_compute_app_used_memory_bytes\{pid="(\d+)".*\} (\S+)$', text, re.M
    )
    assert {p: m for p, m in procs.select("pid", "used_mib").iter_rows() if m is not None} == {
        int(p): float(v) / MIB for p, v in memory
    }


def test_windows_process_names_keep_their_backslashes() -> None:
    path = next(p for p in EXPORTER if p.name.startswith("windows") and "__load" in p.name)
    commands = prom.parse_capture_file(path).process_samples["command"].to_list()
    assert "C:\\Windows\\explorer.exe" in commands


# ---------------------------------------------------------------- the text format


def test_exposition_syntax_escapes_timestamps_nan_and_comments() -> None:
    text = "\n".join(
        [
            "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).",
            "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
            'DCGM_FI_DEV_GPU_UTIL{gpu="0", UUID="GPU-a",modelName="Odd \\"Q\\" \\\\ GPU",'
            'Hostname="n1",} 42 1700000000000',
            'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",Hostname="n1"} NaN 1700000000000',
            'DCGM_FI_DEV_SM_CLOCK{gpu="0",UUID="GPU-a",Hostname="n1"} +1.98e3 1700000000000',
            "some_other_metric 1",
            "",
        ]
    )
    gpus = prom.parse_exposition(text).gpu_samples
    row = gpus.row(0, named=True)
    assert gpus.height == 1
    assert row["gpu_model"] == 'Odd "Q" \\ GPU'
    assert (row["util_pct"], row["temperature_c"], row["sm_clock_mhz"]) == (42.0, None, 1980.0)
    assert row["ts"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert gpus.schema == pl.Schema(GPU_SAMPLE_SCHEMA)


def test_duplicated_series_keep_the_last_value() -> None:
    line = 'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",Hostname="n1"} '
    gpus = prom.parse_exposition(f"{line}10\n{line}30\n").gpu_samples
    assert gpus["util_pct"].to_list() == [30.0]


def test_profiling_fields_mig_instances_and_activity_kind() -> None:
    base = 'gpu="0",UUID="GPU-b",modelName="NVIDIA H100 80GB HBM3",Hostname="n2"'
    mig = f'{base},GPU_I_ID="2",GPU_I_PROFILE="3g.40gb"'
    text = "\n".join(
        [
            f"DCGM_FI_DEV_POWER_USAGE{{{base}}} 432.2",
            f"DCGM_FI_DEV_POWER_USAGE_INSTANT{{{base}}} 444.7",
            f"DCGM_FI_PROF_SM_ACTIVE{{{mig}}} 0.25",
            f"DCGM_FI_PROF_SM_OCCUPANCY{{{mig}}} 0.125",
            f"DCGM_FI_PROF_DRAM_ACTIVE{{{mig}}} 0.5",
            f"DCGM_FI_DEV_FB_USED{{{mig}}} 11091",
            f"DCGM_FI_DEV_FB_FREE{{{mig}}} 29357",
        ]
    )
    gpus = prom.parse_exposition(text, ts=datetime(2026, 1, 1, tzinfo=UTC)).gpu_samples.sort(
        "gpu_uuid"
    )
    board, inst = gpus.rows(named=True)
    assert (board["gpu_uuid"], board["power_w"], board["activity_kind"]) == (
        "GPU-b",
        432.2,
        "nvml_util",
    )
    assert (inst["gpu_uuid"], inst["parent_gpu_uuid"], inst["mig_profile"]) == (
        "GPU-b/gi2",
        "GPU-b",
        "3g.40gb",
    )
    assert (inst["sm_active_pct"], inst["sm_occupancy_pct"], inst["dram_active_pct"]) == (
        25,
        12.5,
        50,
    )
    assert (inst["activity_kind"], inst["mem_total_mib"]) == ("dcgm", 40448.0)


def test_instant_power_fills_in_when_average_is_missing() -> None:
    text = 'DCGM_FI_DEV_POWER_USAGE_INSTANT{gpu="0",UUID="GPU-c",Hostname="n"} 99.5\n'
    assert prom.parse_exposition(text).gpu_samples["power_w"].to_list() == [99.5]


def test_pod_labels_become_process_rows_for_attribution() -> None:
    gpu = 'gpu="0",UUID="GPU-d",Hostname="n3"'
    text = "\n".join(
        [
            # Scraped through Prometheus: exported_* is the workload, pod is the exporter.
            f'DCGM_FI_DEV_GPU_UTIL{{{gpu},exported_pod="train-0",exported_namespace="ml",'
            f'exported_container="trainer",pod="dcgm-exporter-x1",namespace="gpu-operator"}} 80',
            f'DCGM_FI_DEV_FB_USED{{{gpu},pod="serve-1",namespace="web",container="api"}} 100',
            f'DCGM_FI_DEV_FB_FREE{{{gpu},pod="serve-1",namespace="web",container="api"}} 100',
            f'DCGM_FI_DEV_SM_CLOCK{{{gpu},pod="dcgm-exporter-x1",namespace="gpu-operator"}} 1',
        ]
    )
    batch = prom.parse_exposition(text)
    procs = batch.process_samples.sort("pod")
    assert procs.select("pod", "namespace", "container").rows() == [
        ("serve-1", "web", "api"),
        ("train-0", "ml", "trainer"),
    ]
    assert procs["pid"].null_count() == procs["workload"].null_count() == 2
    assert batch.gpu_samples.height == 1
    assert procs.schema == pl.Schema(PROCESS_SAMPLE_SCHEMA)


def test_host_argument_wins_and_instance_is_the_fallback() -> None:
    text = 'DCGM_FI_DEV_GPU_UTIL{UUID="GPU-e",instance="10.0.0.5:9400"} 1\n'
    assert prom.parse_exposition(text).gpu_samples["host"].to_list() == ["10.0.0.5"]
    assert prom.parse_exposition(text, host="i-123").gpu_samples["host"].to_list() == ["i-123"]
    with pytest.raises(ValueError, match="line 1: no Hostname or instance label"):
        prom.parse_exposition('DCGM_FI_DEV_GPU_UTIL{UUID="GPU-e"} 1\n')


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('DCGM_FI_DEV_GPU_UTIL{UUID="GPU-a" 5', "expected ',' or '}'"),
        ('DCGM_FI_DEV_GPU_UTIL{UUID="GPU-a} 5', "unterminated label value"),
        ('DCGM_FI_DEV_GPU_UTIL{UUID="GPU-a"} five', "expected '<value> \\[timestamp\\]'"),
        ('DCGM_FI_DEV_GPU_UTIL{UUID="GPU-a"} 5 soon', "bad timestamp 'soon'"),
        ('DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="h"} 5', "has no UUID/uuid label"),
    ],
)
def test_unparseable_line_names_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    page = tmp_path / "page.prom"
    page.write_text(f'# HELP x\nDCGM_FI_DEV_GPU_TEMP{{UUID="GPU-a",Hostname="h"}} 40\n{line}\n')
    with pytest.raises(ValueError, match=rf"page\.prom: line 3: .*{reason}"):
        prom.parse_capture_file(page)


# ---------------------------------------------------------------- HTTP


def test_scrape_a_real_http_server_and_parse_the_page() -> None:
    page = (REAL / "dcgm-exporter-cncf-ai-conformance" / "kops.prom").read_bytes()
    with serve_page(lambda: page) as (url, hits):
        text = prom.scrape(url, timeout=5)
        base = url.removesuffix("/metrics")
        with pytest.raises(ConnectionError, match=rf"{base}/nope: HTTP 404"):
            prom.scrape(f"{base}/nope", timeout=5)
    gpus = prom.parse_exposition(text).gpu_samples
    assert gpus.select("host", "gpu_model").rows() == [("i-030791dc5a37cd257", "NVIDIA L4")]
    assert hits == ["/metrics"]


def test_scrape_of_a_closed_port_names_the_url() -> None:
    with serve(QuietHandler) as base:
        pass  # the server is gone: nothing listens on that port any more
    with pytest.raises(ConnectionError, match=rf"cannot fetch {base}/metrics"):
        prom.scrape(f"{base}/metrics", timeout=2)


def _with_pod(page: str, gpu: str, pod: str, namespace: str, container: str) -> str:
    """The page as dcgm-exporter writes it with Kubernetes pod mapping on: the pod's labels on
    every series of the GPU it holds."""
    extra = f',pod="{pod}",namespace="{namespace}",container="{container}"'
    return re.sub(rf'^(DCGM_FI_\w+\{{gpu="{gpu}",[^}}]*)\}}', rf"\1{extra}}}", page, flags=re.M)


def test_exporter_scraper_stamps_the_tick_and_attributes_pods_by_rules() -> None:
    raw = (REAL / "dcgm-exporter-cncf-ai-conformance" / "viettel-ai-platform.prom").read_text()
    page = _with_pod(raw, "1", "trainer-0", "team-nlp", "main").encode()
    rules = [{"match": "k8s_namespace", "pattern": "^team-(.*)$"}]
    tick = datetime(2026, 11, 20, 9, 0, 1, tzinfo=UTC)
    with serve_page(lambda: page) as (url, _):
        batch = prom.ExporterScraper(url, rules=rules).sample(tick)
    gpus = batch.gpu_samples.sort("gpu_index")
    assert gpus["ts"].to_list() == [tick, tick]
    assert gpus["workload"].to_list() == [None, "nlp"]  # GPU 0 holds no pod
    procs = batch.process_samples
    assert procs.select("gpu_uuid", "pod", "namespace", "container", "user", "workload").rows() == [
        (gpus["gpu_uuid"][1], "trainer-0", "team-nlp", "main", "unknown", "nlp")
    ]
    assert procs["pid"].to_list() == [None]  # an exporter knows pods, not pids
    with pytest.raises(ValueError, match="only http and https"):
        prom.ExporterScraper("ftp://example/metrics")


SINCE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LABELS = {"UUID": "GPU-f", "gpu": "0", "Hostname": "node-9", "modelName": "NVIDIA A100-SXM4-80GB"}


def _fake_history(minutes: int, gpus: int = 1) -> FakePrometheus:
    """Raw 15 s scrapes of `gpus` GPUs for `minutes`: util = minute, FB used = 1000 + minute."""
    api = FakePrometheus()
    t0 = SINCE.timestamp()
    for g in range(gpus):
        labels = {**LABELS, "UUID": f"GPU-f{g}", "gpu": str(g)}
        times = [t0 + 15 * k for k in range(minutes * 4)]
        api.add(
            {"__name__": "DCGM_FI_DEV_GPU_UTIL", **labels},
            {t: float((t - t0) // 60) for t in times},
        )
        api.add(
            {"__name__": "DCGM_FI_DEV_FB_USED", **labels},
            {t: 1000 + (t - t0) // 60 for t in times},
        )
    api.add({"__name__": "up", "job": "dcgm"}, {t0: 1.0})  # not ours: never asked for
    return api


def test_query_range_asks_once_for_every_metric_and_merges_them() -> None:
    api = _fake_history(2)
    with api.running() as base:
        metrics = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"]
        batch = prom.query_range(base + "/", metrics, SINCE, SINCE + timedelta(minutes=1), 60)
    gpus = batch.gpu_samples.sort("ts")
    assert [q["query"] for q in api.queries] == [
        '{__name__=~"DCGM_FI_DEV_GPU_UTIL|DCGM_FI_DEV_FB_USED"}'
    ]
    assert api.queries[0]["start"] == f"{SINCE.timestamp():.3f}" and api.queries[0]["step"] == "60s"
    assert gpus.select("ts", "util_pct", "mem_used_mib").rows() == [
        (SINCE, 0.0, 1000.0),
        (SINCE + timedelta(minutes=1), 1.0, 1001.0),
    ]
    assert set(gpus["host"]) == {"node-9"} and set(gpus["source"]) == {"prometheus"}


def test_iter_history_windows_cover_the_span_once_and_stay_small() -> None:
    api = _fake_history(200, gpus=2)
    until = SINCE + timedelta(minutes=200)
    with api.running() as base:
        windows = list(prom.iter_history(base, SINCE, until, 60, points_per_request=400))
    # First window: 60 steps; then 4 series known -> 400 // 4 = 100 steps a window.
    starts = [(w.start - SINCE) / timedelta(minutes=1) for w in windows]
    assert starts == [0, 60, 160]
    assert [w.series for w in windows] == [4, 4, 4]
    gpus = pl.concat([w.batch.gpu_samples for w in windows]).sort("gpu_uuid", "ts")
    assert gpus.height == 2 * 200  # every minute of [since, until) once, per GPU
    assert gpus.filter(pl.col("gpu_uuid") == "GPU-f1").select("util_pct", "mem_used_mib").row(
        199
    ) == (199.0, 1199.0)
    assert gpus["ts"].max() == until - timedelta(minutes=1)  # end-exclusive
    assert all("up" not in q["query"].split("|") for q in api.queries)


def test_iter_history_refusals_name_the_url_or_the_bounds() -> None:
    with pytest.raises(ValueError, match="is not before until"):
        next(prom.iter_history("http://127.0.0.1:9", SINCE, SINCE, 60))
    api = _fake_history(1)
    with (
        api.running() as base,
        pytest.raises(ConnectionError, match=r"query_range\?.*HTTP 400.*11,000 points"),
    ):
        prom._range_samples(base, "x", SINCE, SINCE + timedelta(days=30), 60, 5)


def test_parse_api_json_vector_and_error_answers(tmp_path: Path) -> None:
    vector = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"__name__": "DCGM_FI_DEV_GPU_TEMP", **LABELS}, "value": [1.7e9, "61"]},
                {"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", **LABELS}, "value": [1.7e9, "NaN"]},
            ],
        },
    }
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(vector))
    row = prom.parse_capture_file(answer).gpu_samples.row(0, named=True)
    assert (row["temperature_c"], row["util_pct"]) == (61.0, None)
    assert row["ts"] == datetime.fromtimestamp(1.7e9, UTC)
    error = {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}
    with pytest.raises(ValueError, match="Prometheus API error: parse error at char 4"):
        prom.parse_api_json(json.dumps(error))
