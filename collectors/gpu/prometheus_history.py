"""A Prometheus-compatible server's history (Prometheus, Thanos, Mimir, VictoriaMetrics), read
through `/api/v1/query_range` in bounded windows (`collect --source prometheus --since`).

The span [since, until) is cut into a fixed grid of windows of `window_s` seconds (1 h by
default) aligned on `since`, one point per `step_s`; the grid depends only on since, step and
window, so a run that resumes at a time (collectors/gpu/history.py keeps where it stopped) reads
the same windows as the run it continues. For each window:

- `/api/v1/series` counts the series first (one metric name at a time where the server
  refuses to list them all: VictoriaMetrics' -search.maxSeries); where they are more than
  `max_series` (default: so that series x steps stays under POINTS_PER_REQUEST), the window
  is read in several query_range calls, each for a group of `instance` label values
  (`instance=~"a|b"`) holding at most `max_series` series (an instance with more is read
  alone);
- an answer that says the query touched too many samples or points (Prometheus, Thanos and
  Mimir's "too many samples", VictoriaMetrics' -search.maxSamplesPerQuery and
  -search.maxPointsPerTimeseries, Prometheus's 11,000 points per series) halves that call's
  span and goes on; later calls start at that size;
- each answer becomes rows and is handed on (to the spool) before the next call, so memory holds
  one answer, never a whole window of a large fleet; the window's closing piece comes last;
- timeouts, refused or reset connections and HTTP 408/429/5xx are tried again, `retries` times
  with doubling waits (1, 2, 4 s); any other HTTP error, and a refused connection before the
  server ever answered (a wrong URL), fail at once. Every error names the server, the call and
  the window.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from collectors.gpu import prometheus as prom
from collectors.gpu.history import public_url
from collectors.gpu.prometheus import (
    MAX_POINTS_PER_SERIES,
    POINTS_PER_REQUEST,
    _Sample,
    _utc,
    history_metrics,
)
from collectors.gpu.workload_rules import ProcessAttributor, Rule
from tables.records import Batch

log = logging.getLogger(__name__)

DEFAULT_WINDOW_S = 3600
RETRIES = 3
BACKOFF_S = 1.0
# A group of instances is also cut so that its regex keeps the URL under proxies' usual limits.
MAX_MATCHER_CHARS = 6000
SPLIT_LABEL = "instance"
# Answers that mean "ask for less" (the server's own wording, across the four servers).
TOO_MANY = re.compile(
    r"too many (samples|points|series|chunks)|cannot select more than|maxSamplesPerQuery"
    r"|maxPointsPerTimeseries|maxUniqueTimeseries|exceeded maximum resolution"
    r"|max(imum)? number of (samples|series|chunks)|max-fetched-(series|chunks|samples)"
    r"|number of matching timeseries exceeds",
    re.IGNORECASE,
)
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


class HistoryError(ConnectionError):
    """A call for a window that failed for good; the message names server, call and window."""


class TooManySamples(HistoryError):
    """The server refused a window as too large (the reader halves it)."""


class _Retry(Exception):
    """A failure worth another try (timeout, refused connection, 429, 5xx)."""


class _Unreachable(_Retry):
    """No connection at all: refused, reset, a name that does not resolve."""


class _Fatal(Exception):
    """A failure another try would not mend (4xx, an answer that is not the API's)."""


class _Large(Exception):
    """The server's "too many samples" answer."""


def _short(text: str, limit: int = 300) -> str:
    """`text`, its middle elided past `limit` characters (VictoriaMetrics' errors repeat the
    whole query first and say why at the end)."""
    text = text.strip()
    return text if len(text) <= limit else f"{text[: limit // 3]} … {text[-2 * limit // 3 :]}"


def _error_text(body: str) -> str:
    """The API's `error` field when the body is its JSON, else the body."""
    try:
        answer = json.loads(body)
    except json.JSONDecodeError:
        return _short(body)
    if isinstance(answer, dict) and answer.get("error"):
        return _short(str(answer["error"]))
    return _short(body)


def _answer(status: int, body: str) -> object:
    """The `data` of an API answer, or the failure's kind."""
    if status != 200 and TOO_MANY.search(body):
        raise _Large(f"HTTP {status}: {_error_text(body)}")
    if status in RETRY_STATUS:
        raise _Retry(f"HTTP {status}: {_error_text(body)}")
    if status != 200:
        raise _Fatal(f"HTTP {status}: {_error_text(body)}")
    try:
        answer = json.loads(body)
    except json.JSONDecodeError as exc:
        raise _Fatal(f"not JSON: {exc}") from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = _error_text(body)
        raise (_Large if TOO_MANY.search(error) else _Fatal)(f"API error: {error}")
    return answer.get("data")


@dataclass
class RangeClient:
    """GET calls to one server's HTTP API with retries (module docstring). `headers` go with
    every call (Mimir's `X-Scope-OrgID`, an `Authorization`); a `user:password@` in the URL
    becomes HTTP basic authentication and is left out of the URL messages name."""

    url: str
    timeout: float = 30.0
    retries: int = RETRIES
    backoff_s: float = BACKOFF_S
    sleep: Callable[[float], None] = time.sleep
    answered: bool = False  # whether the server ever answered this run
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"{public_url(self.url)}: only http and https servers")
        if parts.username is not None:
            secret = f"{urllib.parse.unquote(parts.username)}:"
            secret += urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(secret.encode()).decode()
            self.headers = {"Authorization": f"Basic {token}", **self.headers}
            self.url = public_url(self.url)

    @property
    def base(self) -> str:
        return self.url.rstrip("/")

    def get(self, path: str, params: Mapping[str, str], window: str) -> object:
        """The answer's `data`; HistoryError (TooManySamples) naming server, path and window."""
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        where = f"{self.base}{path} ({window})"
        why = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                data = self._once(url)
            except _Retry as exc:
                why = str(exc)
                if not self.answered and isinstance(exc, _Unreachable):  # a wrong URL
                    raise HistoryError(f"cannot fetch {where}: {why}") from None
                log.warning("%s: %s (try %d of %d)", where, why, attempt + 1, self.retries + 1)
                continue
            except _Large as exc:
                raise TooManySamples(f"{where}: too many samples: {exc}") from None
            except _Fatal as exc:
                raise HistoryError(f"{where}: {exc}") from None
            return data
        raise HistoryError(f"{where}: {why}; gave up after {self.retries + 1} tries")

    def _once(self, url: str) -> object:
        try:
            request = urllib.request.Request(url, headers=self.headers)
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status, body = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise _Retry(f"no answer within {self.timeout:g} s") from None
            raise _Unreachable(str(reason)) from None
        self.answered = True
        return _answer(status, body)

    def series(self, selector: str, start: datetime, end: datetime, window: str) -> list[dict]:
        """The label sets of the series `selector` matches between start and end."""
        params = {"match[]": selector, "start": _epoch(start), "end": _epoch(end)}
        data = self.get("/api/v1/series", params, window)
        if not isinstance(data, list):
            raise HistoryError(f"{self.base}/api/v1/series ({window}): expected a list of series")
        return [dict(labels) for labels in data if isinstance(labels, dict)]

    def names(self, selector: str, start: datetime, end: datetime, window: str) -> list[str]:
        """The metric names `selector` matches between start and end."""
        params = {"match[]": selector, "start": _epoch(start), "end": _epoch(end)}
        data = self.get("/api/v1/label/__name__/values", params, window)
        if not isinstance(data, list):
            raise HistoryError(f"{self.base}/api/v1/label/__name__/values ({window}): not a list")
        return sorted(str(name) for name in data)

    def matrix(self, query: str, start: datetime, end: datetime, step_s: int, window: str) -> Batch:
        """The rows of a query_range call, every step from start to end (inclusive)."""
        params = {"query": query, "start": _epoch(start), "end": _epoch(end), "step": f"{step_s}s"}
        data = self.get("/api/v1/query_range", params, window)
        try:
            return matrix_batch(data)
        except ValueError as exc:
            raise ValueError(f"{self.base}/api/v1/query_range ({window}): {exc}") from None


def _epoch(ts: datetime) -> str:
    return f"{_utc(ts).timestamp():.3f}"


def _re2_literal(value: str) -> str:
    """`value` as a literal inside a Go (RE2) regular expression."""
    return _RE2_SPECIAL.sub(r"\\\1", value)


def _promql_string(value: str) -> str:
    """`value` inside a PromQL double-quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(metrics: Iterable[str], instances: Iterable[str] | None = None) -> str:
    """`{__name__=~"A|B"}`, with `,instance=~"x|y"` when `instances` is given (an empty value
    matches the series without the label)."""
    names = "|".join(_re2_literal(m) for m in metrics)
    matchers = [f"__name__=~{_promql_string(names)}"]
    if instances is not None:
        values = "|".join(_re2_literal(i) for i in instances)
        matchers.append(f"{SPLIT_LABEL}=~{_promql_string(values)}")
    return "{" + ",".join(matchers) + "}"


def instance_groups(series: list[dict], max_series: int) -> list[list[str] | None]:
    """The calls one window needs: `[None]` (one call, no instance matcher) when the series fit
    in `max_series`, else groups of instance values, in order, each with at most `max_series`
    series (an instance with more alone) and a matcher under MAX_MATCHER_CHARS."""
    counts = Counter(str(labels.get(SPLIT_LABEL, "")) for labels in series)
    if sum(counts.values()) <= max_series:
        return [None]
    groups: list[list[str] | None] = []
    group: list[str] = []
    held = chars = 0
    for instance in sorted(counts):
        n, width = counts[instance], len(_re2_literal(instance)) + 1
        if group and (held + n > max_series or chars + width > MAX_MATCHER_CHARS):
            groups.append(group)
            group, held, chars = [], 0, 0
        group.append(instance)
        held, chars = held + n, chars + width
    groups.append(group)
    return groups


# ---------------------------------------------------------------- a matrix answer, column-wise
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SERIES_SCHEMA: dict[str, pl.DataType] = {
    "host": pl.String(),
    "gpu_uuid": pl.String(),
    "parent_gpu_uuid": pl.String(),
    "mig_profile": pl.String(),
    "gpu_index": pl.Int32(),
    "gpu_model": pl.String(),
    "field": pl.String(),
    "factor": pl.Float64(),
    "pod": pl.String(),
    "namespace": pl.String(),
    "container": pl.String(),
    "points": pl.Int64(),
}


@dataclass
class _Matrix:
    """A matrix answer taken apart: one row per GPU series, its points flat, app series aside."""

    series: list[dict]
    times: list[object]
    values: list[object]
    apps: list[_Sample]

    def take(self, k: int, series: object) -> None:
        where = f"result {k}"
        if not isinstance(series, dict):
            raise ValueError(f"{where}: not a series")
        labels = dict(series.get("metric") or {})
        name = labels.pop("__name__", None)
        if not name:
            raise ValueError(f"{where}: series has no __name__ (query a bare metric name)")
        points = series.get("values") or []
        if name in (prom._APP_INFO, prom._APP_MEMORY):  # pid rows: rare, parsed point by point
            self.apps.extend(prom._api_point(p, name, labels, where) for p in points)
            return
        column, factor = prom._FIELDS.get(name, (None, 1.0))
        if column is None and not name.startswith(prom._FAMILIES):
            return
        if not prom._gpu_uuid(labels):
            if column is None:
                return  # e.g. nvidia_smi_command_exit_code: not about one GPU
            raise ValueError(f"{where}: {name} has no UUID/uuid label")
        ident = prom._identity(_Sample(where, name, labels, 0.0, None), None, None, _EPOCH)
        pod = prom._pod_labels(labels) or {}
        del ident["ts"]
        self.series.append(
            {**ident, "field": column, "factor": factor, **pod, "points": len(points)}
        )
        try:
            self.times.extend(p[0] for p in points)
            self.values.extend(p[1] for p in points)
        except (TypeError, IndexError, KeyError):
            raise ValueError(f'{where}: expected [timestamp, "value"] points') from None

    def long(self) -> pl.DataFrame:
        """One row per point: the series' identity, `ts`, `value` (× factor; NaN: null)."""
        series = pl.DataFrame(self.series, schema=_SERIES_SCHEMA)
        index = np.repeat(np.arange(series.height, dtype=np.uint32), series["points"].to_numpy())
        try:
            points = pl.DataFrame(
                {
                    "t": pl.Series(self.times, dtype=pl.Float64),
                    "raw": pl.Series(self.values, dtype=pl.String),
                }
            )
            value = pl.col("raw").cast(pl.Float64)
            points = points.select(
                ts=(pl.col("t") * 1_000_000).round().cast(pl.Int64).cast(pl.Datetime("us", "UTC")),
                value=pl.when(value.is_nan()).then(None).otherwise(value),
            )
        except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
            raise ValueError(f'a point is not [timestamp, "value"]: {exc}') from None
        rows = series.drop("points").select(pl.all().gather(pl.Series(index)))
        return pl.concat([rows, points], how="horizontal").with_columns(
            value=pl.col("value") * pl.col("factor")
        )


def matrix_batch(data: object) -> Batch:
    """A query_range answer's `data` as one Batch: the rows `prometheus.parse_api_json` gives for
    it, built column by column (Python touches each series once, Polars each point)."""
    kind = data.get("resultType") if isinstance(data, dict) else None
    if not isinstance(data, dict) or kind != "matrix":
        raise ValueError(f"resultType {kind!r}: expected 'matrix'")
    matrix = _Matrix([], [], [], [])
    for k, series in enumerate(data.get("result") or []):
        matrix.take(k, series)
    long = matrix.long()
    gpus = prom._gpu_frame(long.select(list(prom._LONG_SCHEMA))) if long.height else None
    pods = long.filter(pl.col("pod").is_not_null()).select(
        "host",
        "gpu_uuid",
        "ts",
        "pod",
        "namespace",
        "container",
        pid=pl.lit(None, pl.Int64),
        command=pl.lit(None, pl.String),
        used_mib=pl.lit(None, pl.Float64),
    )
    _, app_rows = prom._rows(matrix.apps, None, None, _EPOCH) if matrix.apps else ([], [])
    procs = pl.concat([pods, pl.DataFrame(app_rows, schema=prom._PROC_SCHEMA)])
    return Batch(gpus, prom._proc_frame(procs))


@dataclass(frozen=True)
class HistoryPiece:
    """One query_range answer of a window (one instance group, the whole window unless the server
    made it halve), or the window's closing piece: no rows, `closes_window`, after every answer
    of the window; a window counts as read once its closing piece is."""

    first_step: int  # step index from `since`: the piece covers steps [first_step, next_step)
    next_step: int
    start: datetime  # the first step's time
    end: datetime  # the last step's time (inclusive)
    resume_at: datetime  # where the window's next one starts: a run resumes there once it closed
    window: int  # 1-based index of the window in the grid
    windows: int  # windows in the grid
    group: int  # the instance group (0 when the window is read in one call)
    series: int  # the series the window holds
    calls: int
    batch: Batch
    closes_window: bool = False


@dataclass
class HistoryPlan:
    """The grid of windows over [since, until): step indices, times and the windows' bounds."""

    since: datetime
    until: datetime
    step_s: int
    window_s: int = DEFAULT_WINDOW_S

    def __post_init__(self) -> None:
        if self.step_s < 1:
            raise ValueError(f"step must be at least 1 second, got {self.step_s}")
        if self.window_s < 1:
            raise ValueError(f"window must be at least 1 second, got {self.window_s}")
        self.since, self.until = _utc(self.since), _utc(self.until)
        if self.since >= self.until:
            raise ValueError(
                f"since {self.since.isoformat()} is not before until {self.until.isoformat()}"
            )

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.step_s)

    @property
    def window_steps(self) -> int:
        return max(1, min(self.window_s // self.step_s, MAX_POINTS_PER_SERIES - 1))

    @property
    def steps(self) -> int:
        """Points per series in [since, until): the last one strictly before `until`."""
        return math.ceil((self.until - self.since) / self.step)

    def time(self, index: int) -> datetime:
        return self.since + self.step * index

    def index_at(self, ts: datetime) -> int:
        """The first step at or after `ts`."""
        return max(0, math.ceil((_utc(ts) - self.since) / self.step))

    def windows(self) -> list[tuple[int, int]]:
        """Every window's steps [first, next) in order."""
        size, total = self.window_steps, self.steps
        return [(a, min(a + size, total)) for a in range(0, total, size)]

    def label(self, first: int, next_: int) -> str:
        """`window 2026-11-20T00:00:00Z..2026-11-20T00:59:00Z` for messages."""
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        return f"window {self.time(first):{fmt}}..{self.time(next_ - 1):{fmt}}"


class WindowReader:
    """Reads the plan's windows from `client` (module docstring), from `resume_at` on."""

    def __init__(
        self,
        client: RangeClient,
        plan: HistoryPlan,
        *,
        metrics: list[str] | None = None,
        max_series: int | None = None,
        rules: Iterable[Mapping[str, object] | Rule] | None = None,
    ) -> None:
        if max_series is not None and max_series < 1:
            raise ValueError(f"max_series must be at least 1, got {max_series}")
        self.client = client
        self.plan = plan
        self.metrics = metrics or history_metrics()
        self.max_series = max_series
        self.attributor = ProcessAttributor(rules)
        self.piece_steps = plan.window_steps  # halved for good by a "too many samples" answer

    def pieces(self, resume_at: datetime | None = None) -> Iterator[HistoryPiece]:
        """Every piece from the window holding `resume_at` (default: since) to until."""
        first = self.plan.index_at(resume_at) if resume_at is not None else 0
        windows = self.plan.windows()
        for number, (a, b) in enumerate(windows, 1):
            if b > first:
                yield from self._window(number, len(windows), max(a, first), b)

    def _window(self, number: int, windows: int, a: int, b: int) -> Iterator[HistoryPiece]:
        """The window's answers, group by group, then its closing piece."""
        start, end, resume = self.plan.time(a), self.plan.time(b - 1), self.plan.time(b)
        found = self._series(start, end, self.plan.label(a, b))
        steps = min(b - a, self.piece_steps)
        cap = self.max_series or max(1, POINTS_PER_REQUEST // steps)
        groups = instance_groups(found, cap) if found else []
        where = (number, windows)
        for index, group in enumerate(groups):
            for lo, hi, answer in self._group(selector(self.metrics, group), a, b):
                batch = self.attributor.apply(answer) if answer.gpu_samples.height else answer
                span = (self.plan.time(lo), self.plan.time(hi - 1), resume)
                yield HistoryPiece(lo, hi, *span, *where, index, len(found), 1, batch)
        yield HistoryPiece(a, b, start, end, resume, *where, 0, len(found), 1, Batch(), True)

    def _series(self, start: datetime, end: datetime, label: str) -> list[dict]:
        """The window's series; where the server refuses to list them all at once
        (VictoriaMetrics' -search.maxSeries), the metric names it holds, then each name's."""
        try:
            return self.client.series(selector(self.metrics), start, end, label)
        except TooManySamples as exc:
            log.warning("%s; listing the series one metric at a time", exc)
        names = self.client.names(selector(self.metrics), start, end, label)
        return [
            s for name in names for s in self.client.series(selector([name]), start, end, label)
        ]

    def _group(self, query: str, a: int, b: int) -> Iterator[tuple[int, int, Batch]]:
        """(first, next, rows) of each call for one group over steps [a, b), halving a call
        the server finds too large (and every later call with it)."""
        todo = [(lo, min(lo + self.piece_steps, b)) for lo in range(a, b, self.piece_steps)]
        todo.reverse()
        while todo:
            lo, hi = todo.pop()
            start, end = self.plan.time(lo), self.plan.time(hi - 1)
            try:
                answer = self.client.matrix(
                    query, start, end, self.plan.step_s, self.plan.label(lo, hi)
                )
            except TooManySamples as exc:
                if hi - lo < 2:
                    raise HistoryError(f"{exc}; even one step is too many") from None
                mid = (lo + hi) // 2
                self.piece_steps = min(self.piece_steps, mid - lo)
                log.warning("%s; reading it in halves of %d steps", exc, mid - lo)
                todo += [(mid, hi), (lo, mid)]
                continue
            yield lo, hi, answer
