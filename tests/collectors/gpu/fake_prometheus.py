"""A real HTTP server on 127.0.0.1 (port 0) playing a dcgm-exporter `/metrics` page or a
Prometheus server's HTTP API, for tests of collectors/gpu/prometheus.py and `gpuledger collect`.

`FakePrometheus` answers `/api/v1/query_range` and `/api/v1/series` the way Prometheus does where
the collector's behaviour depends on it: a selector of `=~` matchers (`{__name__=~"A|B",
instance=~"x"}`, a missing label matching as "") or a bare metric name picks series;
each step `start + k*step` up to `end` (inclusive) takes the newest raw sample at or before it
within the 5-minute lookback; `__name__` is kept on raw selectors; more than 11,000 points per
series is refused with HTTP 400 and Prometheus's message.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOKBACK_S = 300.0
MAX_POINTS = 11_000
_SELECTOR = re.compile(r"^\{(?P<matchers>.*)\}$")
_MATCHER = re.compile(r'(\w+)=~"((?:[^"\\]|\\.)*)"')


def _unquote(text: str) -> str:
    """A PromQL double-quoted string's content, unescaped."""
    return re.sub(r"\\(.)", r"\1", text)


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 at a free port; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_page(page: Callable[[], bytes], path: str = "/metrics") -> Iterator[tuple[str, list]]:
    """An exporter: `path` answers `page()` as Prometheus text; yields (URL, list of hit times)."""
    hits: list[str] = []

    class Metrics(QuietHandler):
        def do_GET(self) -> None:
            if self.path != path:
                self.send(404, b"not found", "text/plain")
                return
            hits.append(self.path)
            self.send(200, page(), "text/plain; version=0.0.4; charset=utf-8")

    with serve(Metrics) as base:
        yield base + path, hits


@dataclass
class FakePrometheus:
    """Series as (labels with __name__, {epoch seconds: value}); `queries` records every call."""

    series: list[tuple[dict[str, str], dict[float, float]]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    series_calls: list[dict[str, str]] = field(default_factory=list)
    max_points: int = MAX_POINTS  # per series and call, as Prometheus's own limit
    headers: list[dict[str, str]] = field(default_factory=list)  # of every API call, lower-case
    max_listed: int = 1_000_000  # series /api/v1/series lists at most

    def add(self, labels: dict[str, str], points: dict[float, float]) -> None:
        self.series.append((dict(labels), dict(points)))

    def _select(self, query: str) -> list[tuple[dict[str, str], dict[float, float]]]:
        found = _SELECTOR.match(query)
        if found:
            matchers = [
                (label, re.compile(f"^(?:{_unquote(regex)})$"))
                for label, regex in _MATCHER.findall(found["matchers"])
            ]
            return [
                s
                for s in self.series
                if all(pattern.match(s[0].get(label, "")) for label, pattern in matchers)
            ]
        return [s for s in self.series if s[0]["__name__"] == query]

    def series_answer(self, params: dict[str, str]) -> tuple[int, dict]:
        """`/api/v1/series`: the label sets with a raw sample in [start - lookback, end]; more
        than `max_listed` refused as VictoriaMetrics' -search.maxSeries does."""
        self.series_calls.append(params)
        found = self._listed(params)
        if len(found) > self.max_listed:
            error = f"the number of matching timeseries exceeds {self.max_listed}; either narrow"
            error += " down the search or increase -search.max* command-line flag values"
            return 422, {"status": "error", "errorType": "422", "error": error}
        return 200, {"status": "success", "data": found}

    def names_answer(self, params: dict[str, str]) -> tuple[int, dict]:
        """`/api/v1/label/__name__/values`."""
        names = sorted({labels["__name__"] for labels in self._listed(params)})
        return 200, {"status": "success", "data": names}

    def _listed(self, params: dict[str, str]) -> list[dict[str, str]]:
        start, end = float(params["start"]), float(params["end"])
        return [
            labels
            for labels, points in self._select(params["match[]"])
            if any(start - LOOKBACK_S <= t <= end for t in points)
        ]

    def answer(self, params: dict[str, str]) -> tuple[int, dict]:
        self.queries.append(params)
        start, end = float(params["start"]), float(params["end"])
        step = float(params["step"].rstrip("s"))
        steps = int((end - start) // step) + 1
        if steps > self.max_points:
            return 400, {
                "status": "error",
                "errorType": "bad_data",
                "error": "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)",
            }
        result = []
        for labels, points in self._select(params["query"]):
            times = sorted(points)
            values = []
            for k in range(steps):
                t = start + k * step
                seen = [p for p in times if p <= t and t - p <= LOOKBACK_S]
                if seen:
                    values.append([round(t, 3), repr(float(points[seen[-1]]))])
            if values:
                result.append({"metric": labels, "values": values})
        return 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve the API; yields the base URL (like http://prometheus:9090)."""
        api = self

        class Api(QuietHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                answer = {
                    "/api/v1/query_range": api.answer,
                    "/api/v1/series": api.series_answer,
                    "/api/v1/label/__name__/values": api.names_answer,
                }
                if url.path not in answer:
                    self.send(404, b"404 page not found", "text/plain")
                    return
                params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
                api.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, body = answer[url.path](params)
                self.send(status, json.dumps(body).encode(), "application/json")

        with serve(Api) as base:
            yield base
