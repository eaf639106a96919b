"""Prometheus history in bounded, resumable windows (collectors/gpu/prometheus_history.py and
collectors/gpu/history.py), against the fake HTTP API (tests/collectors/gpu/fake_prometheus.py):
the window grid, the split by `instance`, halving on "too many samples", retries, and `collect
--since` stopped and run again (every sample spooled once). The same against a real
VictoriaMetrics and Prometheus: test_history_servers.py."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cli.main import main
from collectors.gpu import history
from collectors.gpu import prometheus as prom
from collectors.gpu import prometheus_history as ph
from config.settings import Config
from tables import spool

try:
    from tests.collectors.gpu.fake_prometheus import FakePrometheus, QuietHandler, serve
except ImportError:  # pragma: no cover - depends on how pytest was started
    from fake_prometheus import FakePrometheus, QuietHandler, serve  # type: ignore[no-redef]

SINCE = datetime(2025, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def fleet(hours: int, instances: int = 2, gpus: int = 2) -> FakePrometheus:
    """15 s scrapes of `instances` hosts x `gpus` GPUs: util = host*10 + gpu, FB used = minute."""
    api = FakePrometheus()
    t0 = SINCE.timestamp()
    times = [t0 + 15 * k for k in range(hours * 240)]
    for h in range(instances):
        for g in range(gpus):
            labels = {"UUID": f"GPU-{h}{g}", "gpu": str(g), "instance": f"10.0.0.{h}:9400"}
            util = float(h * 10 + g)
            api.add({"__name__": "DCGM_FI_DEV_GPU_UTIL", **labels}, dict.fromkeys(times, util))
            api.add(
                {"__name__": "DCGM_FI_DEV_FB_USED", **labels}, {t: (t - t0) // 60 for t in times}
            )
    return api


def read_all(base: str, hours: int, **options) -> list[ph.HistoryPiece]:
    plan = ph.HistoryPlan(SINCE, SINCE + hours * HOUR, 60, options.pop("window_s", 3600))
    reader = ph.WindowReader(ph.RangeClient(base, retries=0), plan, **options)
    return list(reader.pieces(options.pop("resume_at", None)))


def gpu_rows(pieces: list[ph.HistoryPiece]) -> pl.DataFrame:
    return pl.concat([p.batch.gpu_samples for p in pieces])


# --------------------------------------------------------------------------- the grid, the calls


def test_the_windows_are_a_grid_on_since_whatever_until() -> None:
    plan = ph.HistoryPlan(SINCE, SINCE + timedelta(hours=2, minutes=30), 60, 3600)
    assert plan.windows() == [(0, 60), (60, 120), (120, 150)]
    assert plan.label(60, 120) == "window 2025-03-01T01:00:00Z..2025-03-01T01:59:00Z"
    # A resume time between steps starts at the next step (59 s past 01:00 -> 01:01).
    assert plan.index_at(SINCE + HOUR + timedelta(seconds=59)) == 61
    assert ph.HistoryPlan(SINCE, SINCE + HOUR, 60, 30).window_steps == 1  # at least one step
    assert ph.HistoryPlan(SINCE, SINCE + HOUR, 1, 86_400).window_steps == 10_999  # < 11,000
    with pytest.raises(ValueError, match="is not before until"):
        ph.HistoryPlan(SINCE, SINCE, 60)


def test_selectors_escape_instances_for_re2_inside_a_promql_string() -> None:
    assert ph.selector(["A_B"]) == '{__name__=~"A_B"}'
    # RE2 sees `10\.0\.0\.1:9400|we"ird`; the PromQL string doubles the backslash.
    assert ph.selector(["A"], ["10.0.0.1:9400", 'we"ird']) == (
        '{__name__=~"A",instance=~"10\\\\.0\\\\.0\\\\.1:9400|we\\"ird"}'
    )


def test_instance_groups_hold_at_most_max_series() -> None:
    series = [{"instance": i} for i in "aaabbcccc"] + [{}]  # a: 3, b: 2, c: 4, none: 1
    assert ph.instance_groups(series, 10) == [None]  # 10 fit: one call, no matcher
    # Sorted "", a, b, c; a group closes before it would pass 5: 1+3 | 2 | 4.
    assert ph.instance_groups(series, 5) == [["", "a"], ["b"], ["c"]]
    assert ph.instance_groups(series, 2) == [[""], ["a"], ["b"], ["c"]]  # a, c alone though > 2


def test_a_window_with_too_many_series_is_read_in_instance_groups() -> None:
    api = fleet(hours=2, instances=3)  # 3 instances x 2 GPUs x 2 metrics = 12 series
    with api.running() as base:
        pieces = read_all(base, 2, max_series=5)  # 4 series per instance: one instance a call
    data = [p for p in pieces if not p.closes_window]
    assert [(p.window, p.group) for p in data] == [(w, g) for w in (1, 2) for g in range(3)]
    assert [(p.window, p.series) for p in pieces if p.closes_window] == [(1, 12), (2, 12)]
    assert (len(api.series_calls), len(api.queries)) == (2, 6)  # per window: 1 + 3 calls
    assert [q["query"].split(",")[1] for q in api.queries[:3]] == [
        f'instance=~"10\\\\.0\\\\.0\\\\.{h}:9400"}}' for h in range(3)
    ]
    rows = gpu_rows(pieces)
    # Every minute of the 2 hours once per GPU: 6 GPUs x 120.
    assert rows.group_by("gpu_uuid").len()["len"].to_list() == [120] * 6
    assert rows.filter(pl.col("gpu_uuid") == "GPU-21")["util_pct"].unique().to_list() == [21.0]
    assert rows["ts"].n_unique() == 120 and rows.height == 720


def test_too_many_points_halves_the_window_and_later_windows_start_halved() -> None:
    api = fleet(hours=2)
    api.max_points = 25  # the fake refuses more than 25 steps a call, as Prometheus 11,000
    with api.running() as base:
        pieces = read_all(base, 2)
    # Window 1: 60 refused, 0-29 refused, 0-14 and 15-29 read, 30-59 refused, 30-44, 45-59 read;
    # window 2 starts at 15 steps: 4 calls.
    data = [p.first_step for p in pieces if not p.closes_window]
    assert data == [0, 15, 30, 45, 60, 75, 90, 105]
    assert [float(q["end"]) - float(q["start"]) for q in api.queries].count(59 * 60) == 1
    assert len(api.queries) == 7 + 4
    assert gpu_rows(pieces).group_by("gpu_uuid").len()["len"].to_list() == [120] * 4
    api.max_points = 0
    with api.running() as base, pytest.raises(ph.HistoryError, match="even one step is too many"):
        read_all(base, 1)


# --------------------------------------------------------------------------- failures and retries


def flaky_server(answers: list[tuple[float, int, bytes]]):
    """A server answering the given (delay, status, body) in turn, then the last one for ever."""
    calls: list[str] = []

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            delay, status, body = answers[min(len(calls), len(answers) - 1)]
            calls.append(self.path)
            time.sleep(delay)
            self.send(status, body, "application/json")

    return serve(Handler), calls


OK = json.dumps({"status": "success", "data": []}).encode()
WINDOW = "window 2025-03-01T00:00:00Z..2025-03-01T00:59:00Z"


def test_5xx_and_timeouts_are_tried_again_with_doubling_waits() -> None:
    server, calls = flaky_server([(0.0, 503, b"overloaded"), (0.5, 200, OK), (0.0, 200, OK)])
    waits: list[float] = []
    with server as base:
        client = ph.RangeClient(base, timeout=0.2, sleep=waits.append)
        assert client.series("{}", SINCE, SINCE, WINDOW) == []
    assert len(calls) == 3 and waits == [1.0, 2.0]  # 503, then no answer within 0.2 s, then OK


def test_an_error_names_the_server_the_call_and_the_window() -> None:
    server, calls = flaky_server([(0.0, 502, b"bad gateway")])
    waits: list[float] = []
    with server as base, pytest.raises(ph.HistoryError) as error:
        ph.RangeClient(base, sleep=waits.append).series("{}", SINCE, SINCE, WINDOW)
    assert str(error.value) == (
        f"{base}/api/v1/series ({WINDOW}): HTTP 502: bad gateway; gave up after 4 tries"
    )
    assert waits == [1.0, 2.0, 4.0]
    bad = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"})
    server, calls = flaky_server([(0.0, 400, bad.encode())])
    with server as base, pytest.raises(ph.HistoryError, match=r"HTTP 400: parse error$"):
        ph.RangeClient(base, sleep=waits.append).series("{}", SINCE, SINCE, WINDOW)
    assert len(calls) == 1 and len(waits) == 3  # a 4xx is not tried again
    with FakePrometheus().running() as gone:
        pass  # nothing listens there any more: a wrong URL fails at once
    with pytest.raises(ph.HistoryError, match=f"cannot fetch {gone}/api/v1/series"):
        ph.RangeClient(gone, sleep=waits.append).series("{}", SINCE, SINCE, WINDOW)
    assert len(waits) == 3


def test_victoriametrics_and_prometheus_refusals_are_too_many_samples() -> None:
    for status, error in (
        (422, "query processing would load too many samples into memory in query execution"),
        (422, "cannot select more than -search.maxSamplesPerQuery=1 samples; possible solutions"),
        (422, "too many points for the given step=60000: 6; cannot exceed -search.max"),
        (400, "exceeded maximum resolution of 11,000 points per timeseries"),
    ):
        body = json.dumps({"status": "error", "errorType": "execution", "error": error})
        with pytest.raises(ph._Large):
            ph._answer(status, body)


# --------------------------------------------------------------------------- collect, resumed


def run_collect(cfg: Config, base: str, until: str, *extra: str) -> int:
    args = [
        "--source",
        "prometheus",
        "--url",
        base,
        "--since",
        SINCE.isoformat(),
        "--until",
        until,
        "--format",
        "json",
    ]
    return main(["--config", cfg.source, "--db", str(cfg.db_path), "collect", *args, *extra])


def spooled(cfg: Config) -> pl.DataFrame:
    """Every gpu_samples row in the spool, all batch files together."""
    return pl.concat(
        pl.read_parquet(p) for p in spool.list_batches(cfg.spool_dir, "gpu_samples")
    ).select("gpu_uuid", "ts", "util_pct")


class Killed(BaseException):
    """The process killed at that point (nothing after it runs)."""


def test_a_stopped_run_resumes_where_it_stopped_and_spools_every_sample_once(
    cfg, capsys, monkeypatch
):
    api = fleet(hours=3)
    reads = ph.RangeClient.matrix

    def fail_in_window_3(self, query, start, end, step_s, window):
        if start >= SINCE + 2 * HOUR:
            raise ph.HistoryError(f"{self.base}/api/v1/query_range ({window}): HTTP 503")
        return reads(self, query, start, end, step_s, window)

    until = (SINCE + 3 * HOUR).isoformat()
    with api.running() as base:
        monkeypatch.setattr(ph.RangeClient, "matrix", fail_in_window_3)
        assert run_collect(cfg, base, until) == 1
        err = capsys.readouterr().err
        assert "window 2/3 2025-03-01T01:00:00Z..01:59:00Z: 240 samples" in err
        assert "(window 2025-03-01T02:00:00Z..2025-03-01T02:59:00Z): HTTP 503" in err
        assert "run it again to resume" in err
        # Two windows spooled (4 GPUs x 60 minutes each), not ingested: the run failed.
        assert spooled(cfg).height == 2 * 240 and not cfg.db_path.exists()
        state_file = history.HistoryJob("prometheus", base, SINCE, 60).state_path(cfg.spool_dir)
        assert state_file.parent == cfg.spool_dir.with_name(cfg.spool_dir.name + ".history")
        assert json.loads(state_file.read_text())["resume_at"] == "2025-03-01T02:00:00+00:00"
        monkeypatch.setattr(ph.RangeClient, "matrix", reads)
        assert run_collect(cfg, base, until) == 0
    out = capsys.readouterr()
    assert "resuming at 2025-03-01T02:00:00Z" in out.err
    report = json.loads(out.out)
    assert (report["windows"], report["gpu_samples"]) == (1, 240)  # only window 3 read again
    assert report["status"] == "ingested 6 spool file(s): 720 gpu_samples"
    rows = spooled(cfg)  # 4 GPUs x 180 minutes, each once
    assert rows.height == 720 and rows.unique(["gpu_uuid", "ts"]).height == 720


def test_a_kill_between_spooling_and_recording_a_window_never_doubles_it(cfg, capsys, monkeypatch):
    api = fleet(hours=3)
    record = history.HistoryJob.record
    calls: list[int] = []

    def killed_at_the_second(self, spool_dir, piece, run):
        calls.append(piece.window)
        if len(calls) == 2:
            raise Killed  # window 2's batches are in the spool, its state is not
        record(self, spool_dir, piece, run)

    until = (SINCE + 3 * HOUR).isoformat()
    with api.running() as base:
        monkeypatch.setattr(history.HistoryJob, "record", killed_at_the_second)
        with pytest.raises(Killed):
            run_collect(cfg, base, until)
        assert spooled(cfg).height == 2 * 240
        monkeypatch.setattr(history.HistoryJob, "record", record)
        capsys.readouterr()
        assert run_collect(cfg, base, until) == 0
    report = json.loads(capsys.readouterr().out)
    # Window 2 read again, its 2 batches (2 hosts) found by name and not written again.
    assert (report["windows"], report["gpu_samples"]) == (2, 480)
    rows = spooled(cfg)
    assert rows.height == 720 and rows.unique(["gpu_uuid", "ts"]).height == 720


def test_a_run_stopped_inside_a_window_does_not_write_its_first_groups_again(
    cfg, capsys, monkeypatch
):
    """Each answer is spooled as it arrives: window 2 read in 2 instance groups, stopped in its
    second; run again, its first group's batches are found by name."""
    api = fleet(hours=3)
    reads = ph.RangeClient.matrix

    def fails_in_window_2_group_2(self, query, start, end, step_s, window):
        if start == SINCE + HOUR and "10\\\\.0\\\\.0\\\\.1" in query:
            raise ph.HistoryError(f"{self.base}/api/v1/query_range ({window}): HTTP 503")
        return reads(self, query, start, end, step_s, window)

    until = (SINCE + 3 * HOUR).isoformat()
    with api.running() as base:
        monkeypatch.setattr(ph.RangeClient, "matrix", fails_in_window_2_group_2)
        assert run_collect(cfg, base, until, "--max-series", "4") == 1  # 4 series an instance
        # Window 1 (4 GPUs x 60) and window 2's first group (2 GPUs x 60).
        assert spooled(cfg).height == 240 + 120
        monkeypatch.setattr(ph.RangeClient, "matrix", reads)
        capsys.readouterr()
        assert run_collect(cfg, base, until, "--max-series", "4") == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["windows"], report["gpu_samples"]) == (2, 480)
    # Window 2's first group (one host; gpu_samples only, no pods) was spooled already; written
    # now: window 2's second group and window 3's two hosts.
    assert (report["already_spooled"], report["spool_files"]) == (1, 3)
    rows = spooled(cfg)
    assert rows.height == 720 and rows.unique(["gpu_uuid", "ts"]).height == 720


def test_a_later_run_reads_on_from_where_the_last_one_stopped(cfg, capsys):
    api = fleet(hours=3)
    with api.running() as base:
        assert run_collect(cfg, base, (SINCE + 2 * HOUR).isoformat()) == 0
        assert json.loads(capsys.readouterr().out)["windows"] == 2
        assert run_collect(cfg, base, (SINCE + 3 * HOUR).isoformat()) == 0
        report = json.loads(capsys.readouterr().out)
        assert (report["windows"], report["gpu_samples"]) == (1, 240)
        assert run_collect(cfg, base, (SINCE + 3 * HOUR).isoformat()) == 0
        report = json.loads(capsys.readouterr().out)
        assert (report["windows"], report["status"]) == (0, "already read up to --until")
    assert spooled(cfg).height == 720


def test_a_damaged_state_file_is_an_error_naming_it(cfg, capsys, tmp_path: Path):
    job = history.HistoryJob("prometheus", "http://127.0.0.1:9", SINCE, 60)
    path = job.state_path(cfg.spool_dir)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert run_collect(cfg, "http://127.0.0.1:9", (SINCE + HOUR).isoformat()) == 2
    assert f"{path}: not a history state file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "30"], "--window must be at least --step (60 s), got 30"),
        (["--max-series", "0"], "--max-series must be at least 1, got 0"),
    ],
)
def test_window_options_are_checked(cfg, capsys, args, message):
    assert run_collect(cfg, "http://127.0.0.1:9", (SINCE + HOUR).isoformat(), *args) == 2
    assert message in capsys.readouterr().err


def test_window_options_go_with_since(cfg, capsys):
    argv = ["--config", cfg.source, "collect", "--source", "prometheus", "--window", "600"]
    assert main(argv) == 2
    assert "--window goes with --since" in capsys.readouterr().err


def test_until_defaults_to_five_minutes_ago(cfg, capsys, clock):
    """The newest minutes may not be in the server yet, and a step once read is not read again:
    without --until the run stops 5 minutes before now (the pinned clock)."""
    api = FakePrometheus()
    with api.running() as base:
        since = (clock - timedelta(minutes=10)).isoformat()
        argv = ["--config", cfg.source, "--db", str(cfg.db_path), "collect", "--source"]
        argv += ["prometheus", "--url", base, "--since", since, "--format", "json"]
        assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    until = datetime.fromisoformat(report["until"])
    assert timedelta(0) <= until - (clock - timedelta(minutes=5)) < timedelta(seconds=30)
    assert (report["windows"], report["status"]) == (1, "nothing in that span")
    (call,) = api.series_calls  # one window: the steps from 10 minutes ago, before until
    assert float(call["start"]) == (clock - timedelta(minutes=10)).timestamp()
    assert float(call["end"]) < until.timestamp() <= float(call["end"]) + 60


def test_a_second_run_of_the_same_history_at_once_is_refused(cfg, capsys):
    url = "http://127.0.0.1:9"
    job = history.HistoryJob("prometheus", url, SINCE, 60)
    with job.lock(cfg.spool_dir):
        assert run_collect(cfg, url, (SINCE + HOUR).isoformat()) == 2
    err = capsys.readouterr().err
    assert f"another run of this history is reading (pid {os.getpid()})" in err
    assert run_collect(cfg, url, (SINCE + HOUR).isoformat()) == 1  # released: on to the server
    assert f"cannot fetch {url}/api/v1/series" in capsys.readouterr().err


# --------------------------------------------------------------------------- a matrix, column-wise

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "realdata"
PAGES = [
    *sorted((REAL / "dcgm-exporter-cncf-ai-conformance").glob("*.prom")),
    *sorted((REAL / "nvidia-smi-captures-utkuozdemir" / "exporter-metrics").iterdir()),
]


def as_matrix(page: str) -> dict:
    """A real text page as a query_range answer of 3 steps a minute apart: each series at its
    value, at value + 1, then NaN (a gap); pod labels added on GPU 1's DCGM series, a MIG copy of
    GPU 0's, `instance` on every series."""
    t0 = SINCE.timestamp()
    series: dict[tuple, dict] = {}
    for s in prom._text_samples(page):
        if s.elided:
            continue  # documentation's `...`: never in an API answer
        labels = {"instance": "gpu-host:9835", **s.labels}  # as Prometheus adds when it scrapes
        if s.name.startswith("DCGM_") and labels.get("gpu") == "1":
            labels |= {"pod": "trainer-0", "namespace": "team-nlp", "container": "main"}
        values = [[t0, repr(s.value)], [t0 + 60, repr(s.value + 1)], [t0 + 120, "NaN"]]
        copies = [labels]
        if s.name.startswith("DCGM_") and labels.get("gpu") == "0":
            copies.append({**labels, "GPU_I_ID": "3", "GPU_I_PROFILE": "1g.10gb"})  # a MIG slice
        for copy in copies:
            key = (s.name, tuple(sorted(copy.items())))
            series[key] = {"metric": {"__name__": s.name, **copy}, "values": values}
    return {"resultType": "matrix", "result": list(series.values())}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_column_wise_matrix_reader_gives_the_rows_of_the_point_by_point_one(page):
    data = as_matrix(page.read_text(encoding="utf-8"))
    answer = json.dumps({"status": "success", "data": data})
    try:
        slow = prom.parse_api_json(answer)
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc).split(": ", 1)[1])):
            ph.matrix_batch(data)
        return
    fast = ph.matrix_batch(data)
    assert fast.gpu_samples.height == slow.gpu_samples.height > 0
    for kind in ("gpu_samples", "process_samples"):
        keys = ["host", "gpu_uuid", "ts", *(["pod", "pid"] if kind == "process_samples" else [])]
        got, want = (getattr(b, kind).sort(keys, nulls_last=True) for b in (fast, slow))
        assert_frame_equal(got, want)


def test_a_matrix_with_a_bad_point_is_an_error_naming_it():
    bad = {"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "UUID": "GPU-1", "Hostname": "h"}}
    with pytest.raises(ValueError, match="result 0: expected"):
        ph.matrix_batch({"resultType": "matrix", "result": [{**bad, "values": [7]}]})
    with pytest.raises(ValueError, match="not \\[timestamp"):
        ph.matrix_batch({"resultType": "matrix", "result": [{**bad, "values": [[1, "x"]]}]})
    with pytest.raises(ValueError, match="resultType 'vector'"):
        ph.matrix_batch({"resultType": "vector", "result": []})


def test_headers_and_basic_authentication_go_with_every_call_and_no_password_is_kept(cfg, capsys):
    api = fleet(hours=1)
    with api.running() as base:
        secret = base.replace("http://", "http://alice:s%40cret@")
        until = (SINCE + HOUR).isoformat()
        assert run_collect(cfg, secret, until, "--header", "X-Scope-OrgID: fleet-7") == 0
    out = capsys.readouterr()
    token = base64.b64encode(b"alice:s@cret").decode()
    assert len(api.headers) == 2  # the series call and the window's answer
    assert all(h["authorization"] == f"Basic {token}" for h in api.headers)
    assert all(h["x-scope-orgid"] == "fleet-7" for h in api.headers)
    report = json.loads(out.out)
    assert report["prometheus"] == base and report["gpu_samples"] == 4 * 60
    state = history.HistoryJob("prometheus", base, SINCE, 60).state_path(cfg.spool_dir)
    assert json.loads(state.read_text())["url"] == base  # the job keyed without the password
    assert "s%40cret" not in out.out + out.err + state.read_text()


def test_a_header_without_a_colon_is_refused(cfg, capsys):
    until = (SINCE + HOUR).isoformat()
    assert run_collect(cfg, "http://127.0.0.1:9", until, "--header", "X-Scope-OrgID") == 2
    assert "--header 'X-Scope-OrgID' is not 'Name: value'" in capsys.readouterr().err


def test_a_server_refusing_to_list_every_series_is_asked_one_metric_at_a_time(caplog) -> None:
    api = fleet(hours=1, instances=3)  # 2 metrics x 6 GPUs = 12 series
    api.max_listed = 6  # as VictoriaMetrics' -search.maxSeries=6
    with api.running() as base:
        pieces = read_all(base, 1)
    assert "listing the series one metric at a time" in caplog.text
    # All 12 refused, then the names (2), then each name's 6 series: one answer for the window.
    assert [q["match[]"] for q in api.series_calls[1:]] == [
        '{__name__=~"DCGM_FI_DEV_FB_USED"}',
        '{__name__=~"DCGM_FI_DEV_GPU_UTIL"}',
    ]
    assert len(api.series_calls) == 3 and len(api.queries) == 1
    assert [(p.window, p.series) for p in pieces if p.closes_window] == [(1, 12)]
    assert gpu_rows(pieces).group_by("gpu_uuid").len()["len"].to_list() == [60] * 6
