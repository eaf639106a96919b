"""DCGM-exporter / Prometheus source: text exposition pages and Prometheus HTTP API answers.

Understands three metric families:
- dcgm-exporter 2.x-4.x (`DCGM_FI_*`, labels `UUID`, `gpu`, `modelName`, `Hostname`, MIG
  `GPU_I_ID` / `GPU_I_PROFILE`, and `pod` / `namespace` / `container` when Kubernetes pod
  attribution is on);
- legacy dcgm-exporter 1.x (`dcgm_*`, label `uuid`);
- utkuozdemir/nvidia_gpu_exporter (`nvidia_smi_*`, label `uuid` without its `GPU-` prefix, which
  is restored so UUIDs join across sources).

Rows: one `gpu_samples` row per (host, gpu_uuid, timestamp); a series seen twice keeps its last
value. `activity_kind` is "dcgm" where `DCGM_FI_PROF_SM_ACTIVE` is present, else "nvml_util"
(`DCGM_FI_DEV_GPU_UTIL` is NVML's utilization). Pod labels become `process_samples` rows (pid
null) for attribution; `exported_pod` etc. win over `pod`, because a Prometheus server that
scrapes the exporter renames the exporter's own labels that way and sets `pod` to the exporter.

Host: the `host` argument if given, else the `Hostname` label, else the `instance` label without
its port. A sample without a timestamp gets `ts` (default: now, UTC).
"""

from __future__ import annotations

import json
import logging
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from collectors.gpu.smi import host_from_filename
from collectors.gpu.sources import Sampler, SourceSettings, SourceUnavailable
from collectors.gpu.workload_rules import ProcessAttributor, Rule
from tables.records import Batch
from tables.units import BYTES_PER_MIB

if TYPE_CHECKING:
    from collectors.gpu.prometheus_history import HistoryPiece

log = logging.getLogger(__name__)

SOURCE = "prometheus"
# Prometheus refuses a query_range answer of more than 11,000 points per series.
MAX_POINTS_PER_SERIES = 11_000
# History is read in windows of at most this many points in all (series x steps), so one answer
# stays a few MB of JSON whatever the fleet's size.
POINTS_PER_REQUEST = 250_000
FIRST_WINDOW_STEPS = 60  # the first window, before the number of series is known

# metric name -> (column, factor). Columns starting with "_" are intermediate.
_FIELDS: dict[str, tuple[str, float]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("util_pct", 1.0),
    "DCGM_FI_PROF_SM_ACTIVE": ("sm_active_pct", 100.0),
    "DCGM_FI_PROF_SM_OCCUPANCY": ("sm_occupancy_pct", 100.0),
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": ("tensor_active_pct", 100.0),
    "DCGM_FI_PROF_DRAM_ACTIVE": ("dram_active_pct", 100.0),
    "DCGM_FI_DEV_FB_USED": ("mem_used_mib", 1.0),
    "DCGM_FI_DEV_FB_FREE": ("_fb_free", 1.0),
    "DCGM_FI_DEV_FB_RESERVED": ("_fb_reserved", 1.0),
    "DCGM_FI_DEV_FB_TOTAL": ("_mem_total", 1.0),
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", 1.0),
    "DCGM_FI_DEV_POWER_USAGE_INSTANT": ("_power_instant", 1.0),
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": ("energy_mj", 1.0),
    "DCGM_FI_DEV_SM_CLOCK": ("sm_clock_mhz", 1.0),
    "DCGM_FI_DEV_GPU_TEMP": ("temperature_c", 1.0),
    "DCGM_FI_DEV_POWER_MGMT_LIMIT": ("power_limit_w", 1.0),
    "DCGM_FI_DEV_ENFORCED_POWER_LIMIT": ("_enforced_limit", 1.0),
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": ("ecc_errors", 1.0),
    "DCGM_FI_DEV_XID_ERRORS": ("xid_error", 1.0),
    # dcgm-exporter 1.x
    "dcgm_gpu_utilization": ("util_pct", 1.0),
    "dcgm_fb_used": ("mem_used_mib", 1.0),
    "dcgm_fb_free": ("_fb_free", 1.0),
    "dcgm_power_usage": ("power_w", 1.0),
    "dcgm_total_energy_consumption": ("energy_mj", 1.0),
    "dcgm_sm_clock": ("sm_clock_mhz", 1.0),
    "dcgm_gpu_temp": ("temperature_c", 1.0),
    # utkuozdemir/nvidia_gpu_exporter
    "nvidia_smi_utilization_gpu_ratio": ("util_pct", 100.0),
    "nvidia_smi_memory_used_bytes": ("mem_used_mib", 1 / BYTES_PER_MIB),
    "nvidia_smi_memory_total_bytes": ("_mem_total", 1 / BYTES_PER_MIB),
    "nvidia_smi_power_draw_watts": ("power_w", 1.0),
    "nvidia_smi_power_draw_instant_watts": ("_power_instant", 1.0),
    "nvidia_smi_clocks_current_sm_clock_hz": ("sm_clock_mhz", 1e-6),
    "nvidia_smi_clocks_sm_clock_hz": ("sm_clock_mhz", 1e-6),
    "nvidia_smi_temperature_gpu": ("temperature_c", 1.0),
    "nvidia_smi_enforced_power_limit_watts": ("power_limit_w", 1.0),
    "nvidia_smi_ecc_errors_uncorrected_volatile_total": ("ecc_errors", 1.0),
    "nvidia_smi_index": ("_gpu_index", 1.0),
}
_FAMILIES = ("DCGM_", "dcgm_", "nvidia_smi_")
_APP_INFO = "nvidia_smi_compute_app_info"
_APP_MEMORY = "nvidia_smi_compute_app_used_memory_bytes"
_GPU_INFO = "nvidia_smi_gpu_info"
_VALUE_COLUMNS = [
    "util_pct",
    "sm_active_pct",
    "sm_occupancy_pct",
    "tensor_active_pct",
    "dram_active_pct",
    "mem_used_mib",
    "power_w",
    "energy_mj",
    "sm_clock_mhz",
    "temperature_c",
    "power_limit_w",
    "ecc_errors",
    "xid_error",
    "_enforced_limit",
    "_fb_free",
    "_fb_reserved",
    "_mem_total",
    "_power_instant",
    "_gpu_index",
]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_VALUE = re.compile(
    r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|infinity|nan)", re.I
)
_TIMESTAMP = re.compile(r"-?\d+")
_BARE_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True, slots=True)
class _Sample:
    where: str  # "line 12" or "result 3": for error messages
    name: str
    labels: dict[str, str]
    value: float
    ts: datetime | None
    elided: bool = False  # labels written as `...` in pasted documentation


# ---------------------------------------------------------------- text exposition


def _parse_labels(line: str, i: int, where: str) -> tuple[dict[str, str], int, bool]:
    """Parse `name="value",...}` from `line[i:]`; return labels, index after `}`, elided flag."""
    labels: dict[str, str] = {}
    elided = False
    while True:
        while i < len(line) and line[i] in " \t":
            i += 1
        if i >= len(line):
            raise ValueError(f"{where}: unterminated label set")
        if line[i] == "}":
            return labels, i + 1, elided
        if line.startswith("...", i):
            # Documentation pastes elide labels as `...`; the caller recovers what it can.
            elided, i = True, i + 3
        else:
            name = _LABEL_NAME.match(line, i)
            if name is None:
                raise ValueError(f"{where}: bad label name at column {i + 1}")
            i = name.end()
            while i < len(line) and line[i] in " \t":
                i += 1
            if not line.startswith('="', i):
                raise ValueError(f"{where}: expected '=\"' after label {name.group()!r}")
            value, i = _parse_quoted(line, i + 2, where)
            labels[name.group()] = value
        while i < len(line) and line[i] in " \t":
            i += 1
        if i < len(line) and line[i] == ",":
            i += 1
        elif i >= len(line) or line[i] != "}":
            raise ValueError(f"{where}: expected ',' or '}}' at column {i + 1}")


def _parse_quoted(line: str, i: int, where: str) -> tuple[str, int]:
    out: list[str] = []
    while i < len(line):
        char = line[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\" and i + 1 < len(line):
            out.append(_ESCAPES.get(line[i + 1], "\\" + line[i + 1]))
            i += 2
        else:
            out.append(char)
            i += 1
    raise ValueError(f"{where}: unterminated label value")


def _parse_line(line: str, where: str) -> _Sample:
    name = _METRIC_NAME.match(line)
    if name is None:
        raise ValueError(f"{where}: no metric name: {line[:80]!r}")
    labels: dict[str, str] = {}
    elided = False
    i = name.end()
    if line.startswith("{", i):
        labels, i, elided = _parse_labels(line, i + 1, where)
    elif i < len(line) and line[i] not in " \t":
        raise ValueError(f"{where}: bad metric name: {line[:80]!r}")
    rest = line[i:].split("#", 1)[0].split()  # drop an OpenMetrics exemplar
    if len(rest) not in (1, 2) or not _VALUE.fullmatch(rest[0]):
        raise ValueError(f"{where}: expected '<value> [timestamp]' after {name.group()}")
    ts = None
    if len(rest) == 2:
        if not _TIMESTAMP.fullmatch(rest[1]):
            raise ValueError(f"{where}: bad timestamp {rest[1]!r}")
        ts = datetime.fromtimestamp(int(rest[1]) / 1000, UTC)
    return _Sample(where, name.group(), labels, float(rest[0]), ts, elided)


def _text_samples(text: str) -> list[_Sample]:
    samples = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            samples.append(_parse_line(line, f"line {n}"))
    return samples


# ---------------------------------------------------------------- HTTP API JSON


def _api_samples(text: str) -> list[_Sample]:
    try:
        answer = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error", "no status 'success'") if isinstance(answer, dict) else "?"
        raise ValueError(f"Prometheus API error: {error}")
    data = answer.get("data") or {}
    kind = data.get("resultType")
    if kind not in ("vector", "matrix"):
        raise ValueError(f"resultType {kind!r}: expected 'vector' or 'matrix'")
    samples = []
    for k, series in enumerate(data.get("result") or []):
        where = f"result {k}"
        labels = dict(series.get("metric") or {})
        name = labels.pop("__name__", None)
        if not name:
            raise ValueError(f"{where}: series has no __name__ (query a bare metric name)")
        points = series.get("values") if kind == "matrix" else [series.get("value")]
        for point in points or []:
            samples.append(_api_point(point, name, labels, where))
    return samples


def _api_point(point: object, name: str, labels: dict[str, str], where: str) -> _Sample:
    if not (isinstance(point, list) and len(point) == 2):
        raise ValueError(f'{where}: expected [timestamp, "value"], got {point!r}')
    try:
        ts = datetime.fromtimestamp(float(point[0]), UTC)
        value = float(point[1])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: bad point {point!r}") from None
    return _Sample(where, name, labels, value, ts)


# ---------------------------------------------------------------- samples -> rows


def _gpu_uuid(labels: dict[str, str]) -> str | None:
    uuid = labels.get("UUID") or labels.get("uuid")
    if uuid and _BARE_UUID.fullmatch(uuid):
        return f"GPU-{uuid}"
    return uuid or None


def _recover_elided(samples: list[_Sample]) -> list[_Sample]:
    """Fill labels elided as `...` from a complete series of the same `gpu` index."""
    complete: dict[str, dict[str, str]] = {}
    for s in samples:
        if not s.elided and _gpu_uuid(s.labels) and "gpu" in s.labels:
            complete.setdefault(s.labels["gpu"], s.labels)
    out = []
    for s in samples:
        if s.elided and not _gpu_uuid(s.labels) and s.labels.get("gpu") in complete:
            s = _Sample(s.where, s.name, {**complete[s.labels["gpu"]], **s.labels}, s.value, s.ts)
        out.append(s)
    return out


def _host(labels: dict[str, str], host: str | None, fallback: str | None, where: str) -> str:
    found = host or labels.get("Hostname") or labels.get("hostname")
    if not found and labels.get("instance"):
        found = urllib.parse.urlsplit("//" + labels["instance"]).hostname
    found = found or fallback
    if not found:
        raise ValueError(f"{where}: no Hostname or instance label, and no host given")
    return found


def _pod_labels(labels: dict[str, str]) -> dict[str, str | None] | None:
    def pick(name: str) -> str | None:
        return labels.get(f"exported_{name}") or labels.get(name) or None

    pod = pick("pod")
    if not pod or ("exported_pod" not in labels and "dcgm-exporter" in pod):
        return None  # the exporter's own pod, not a workload
    return {"pod": pod, "namespace": pick("namespace"), "container": pick("container")}


def _identity(s: _Sample, host: str | None, fallback: str | None, now: datetime) -> dict:
    uuid = _gpu_uuid(s.labels)
    gi = s.labels.get("GPU_I_ID") or None
    gpu = s.labels.get("gpu") or s.labels.get("index")
    model = s.labels.get("modelName") or (s.labels.get("name") if s.name == _GPU_INFO else None)
    return {
        "host": _host(s.labels, host, fallback, s.where),
        "gpu_uuid": f"{uuid}/gi{gi}" if gi else uuid,
        "ts": s.ts or now,
        "parent_gpu_uuid": uuid if gi else None,
        "mig_profile": (s.labels.get("GPU_I_PROFILE") or None) if gi else None,
        "gpu_index": int(gpu) if gpu and gpu.isdigit() else None,
        "gpu_model": model,
    }


def _rows(
    samples: list[_Sample], host: str | None, fallback: str | None, now: datetime
) -> tuple[list[dict], list[dict]]:
    gpu_rows: list[dict] = []
    proc_rows: list[dict] = []
    for s in _recover_elided(samples):
        column, factor = _FIELDS.get(s.name, (None, 1.0))
        is_app = s.name in (_APP_INFO, _APP_MEMORY)
        if column is None and not s.name.startswith(_FAMILIES):
            continue
        if not _gpu_uuid(s.labels):
            if column is None and not is_app:
                continue  # e.g. nvidia_smi_command_exit_code: not about one GPU
            raise ValueError(f"{s.where}: {s.name} has no UUID/uuid label")
        ident = _identity(s, host, fallback, now)
        value = None if math.isnan(s.value) else s.value * factor
        if is_app:
            proc_rows.append(_app_row(s, ident, value))
            continue
        gpu_rows.append({**ident, "field": column, "value": value})
        if (pod := _pod_labels(s.labels)) is not None:
            proc_rows.append(
                {**_proc_key(ident), **pod, "pid": None, "command": None, "used_mib": None}
            )
    return gpu_rows, proc_rows


def _proc_key(ident: dict) -> dict:
    return {"host": ident["host"], "gpu_uuid": ident["gpu_uuid"], "ts": ident["ts"]}


def _app_row(s: _Sample, ident: dict, value: float | None) -> dict:
    pid = s.labels.get("pid", "")
    if not pid.isdigit():
        raise ValueError(f"{s.where}: {s.name} pid {pid!r} is not a number")
    return {
        **_proc_key(ident),
        "pod": None,
        "namespace": None,
        "container": None,
        "pid": int(pid),
        "command": s.labels.get("process_name") or None,
        "used_mib": value / BYTES_PER_MIB if value is not None and s.name == _APP_MEMORY else None,
    }


_LONG_SCHEMA: dict[str, pl.DataType] = {
    "host": pl.String(),
    "gpu_uuid": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "parent_gpu_uuid": pl.String(),
    "mig_profile": pl.String(),
    "gpu_index": pl.Int32(),
    "gpu_model": pl.String(),
    "field": pl.String(),
    "value": pl.Float64(),
}
_PROC_SCHEMA: dict[str, pl.DataType] = {
    "host": pl.String(),
    "gpu_uuid": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "pod": pl.String(),
    "namespace": pl.String(),
    "container": pl.String(),
    "pid": pl.Int64(),
    "command": pl.String(),
    "used_mib": pl.Float64(),
}
_KEYS = ["host", "gpu_uuid", "ts"]


def _gpu_frame(rows: list[dict] | pl.DataFrame) -> pl.DataFrame:
    """Long (key, field, value) rows -> one row per key; the last value of a field wins. `rows`
    may be a frame of _LONG_SCHEMA already (collectors/gpu/prometheus_history.py)."""
    long = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, schema=_LONG_SCHEMA)
    frame = long.group_by(_KEYS, maintain_order=True).agg(
        pl.col("parent_gpu_uuid", "mig_profile", "gpu_index", "gpu_model").drop_nulls().last()
    )
    values = long.filter(pl.col("field").is_not_null())
    if values.height:
        wide = values.pivot(on="field", index=_KEYS, values="value", aggregate_function="last")
        frame = frame.join(wide, on=_KEYS, how="left")
    missing = [c for c in _VALUE_COLUMNS if c not in frame.columns]
    frame = frame.with_columns(pl.lit(None, pl.Float64).alias(c) for c in missing)
    # Memory a page does not state is unknown (null), never 0: without FB_USED the used memory
    # is FB_TOTAL − FB_FREE − FB_RESERVED where the page has those, else null; without FB_TOTAL
    # the total is used + free + reserved, so null too when FB_USED or FB_FREE is missing.
    reserved = pl.col("_fb_reserved").fill_null(0)
    left = pl.col("_mem_total") - pl.col("_fb_free") - reserved
    frame = frame.with_columns(
        mem_used_mib=pl.coalesce("mem_used_mib", pl.when(left >= 0).then(left))
    )
    used_free = pl.col("mem_used_mib") + pl.col("_fb_free") + reserved
    return frame.with_columns(
        mem_total_mib=pl.coalesce("_mem_total", used_free),
        power_w=pl.coalesce("power_w", "_power_instant"),
        power_limit_w=pl.coalesce("_enforced_limit", "power_limit_w"),
        gpu_index=pl.coalesce("gpu_index", pl.col("_gpu_index").cast(pl.Int32)),
        activity_kind=pl.when(pl.col("sm_active_pct").is_not_null())
        .then(pl.lit("dcgm"))
        .otherwise(pl.lit("nvml_util")),
        source=pl.lit(SOURCE),
    ).drop(c for c in frame.columns if c.startswith("_"))


def _proc_frame(rows: list[dict] | pl.DataFrame) -> pl.DataFrame | None:
    if len(rows) == 0:
        return None
    keys = [*_KEYS, "pod", "namespace", "container", "pid"]
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, schema=_PROC_SCHEMA)
    return (
        frame.group_by(keys, maintain_order=True)
        .agg(pl.col("command", "used_mib").drop_nulls().last())
        .with_columns(source=pl.lit(SOURCE))
    )


def _utc(ts: datetime) -> datetime:
    """Naive datetimes are read as UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _batch(
    samples: list[_Sample],
    host: str | None,
    ts: datetime | None,
    fallback_host: str | None = None,
) -> Batch:
    now = _utc(ts) if ts is not None else datetime.now(UTC)
    gpu_rows, proc_rows = _rows(samples, host, fallback_host, now)
    gpus = _gpu_frame(gpu_rows) if gpu_rows else None
    return Batch(gpus, _proc_frame(proc_rows))


# ---------------------------------------------------------------- public API


def parse_exposition(text: str, host: str | None = None, ts: datetime | None = None) -> Batch:
    """Parse a Prometheus text page (dcgm-exporter or nvidia_gpu_exporter `/metrics`)."""
    return _batch(_text_samples(text), host, ts)


def parse_api_json(text: str, host: str | None = None) -> Batch:
    """Parse a Prometheus HTTP API answer (`/api/v1/query` vector or `/api/v1/query_range`
    matrix); every (series, timestamp) point contributes."""
    return _batch(_api_samples(text), host, None)


def _get(url: str, timeout: float) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http only)
            charset = response.headers.get_content_charset() or "utf-8"
            return response.read().decode(charset, errors="replace")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", errors="replace")[:300]
        raise ConnectionError(f"{url}: HTTP {exc.code} {exc.reason}: {body}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"cannot fetch {url}: {reason}") from None


def scrape(url: str, timeout: float = 10.0) -> str:
    """GET an exporter's `/metrics` page; a `ConnectionError` names the URL on any failure."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConnectionError(f"cannot fetch {url}: only http and https URLs")
    return _get(url, timeout)


def history_metrics() -> list[str]:
    """Every metric name this module maps (DCGM 2.x-4.x, dcgm-exporter 1.x, nvidia_gpu_exporter)."""
    return [*_FIELDS, _APP_MEMORY, _GPU_INFO]


def history_selector(metrics: Iterable[str]) -> str:
    """One PromQL selector for all `metrics`: `{__name__=~"A|B|..."}`."""
    names = "|".join(re.escape(m) for m in metrics)
    return f'{{__name__=~"{names}"}}'


def _range_samples(
    base_url: str, query: str, start: datetime, end: datetime, step_s: int, timeout: float
) -> list[_Sample]:
    params = {
        "query": query,
        "start": f"{_utc(start).timestamp():.3f}",
        "end": f"{_utc(end).timestamp():.3f}",
        "step": f"{step_s}s",
    }
    url = f"{base_url.rstrip('/')}/api/v1/query_range?{urllib.parse.urlencode(params)}"
    try:
        return _api_samples(scrape(url, timeout))
    except ValueError as exc:
        raise ValueError(f"{url}: {exc}") from None


def query_range(
    base_url: str,
    metrics: list[str],
    since: datetime,
    until: datetime,
    step_s: int,
    timeout: float = 30.0,
) -> Batch:
    """Call `/api/v1/query_range` once for all `metrics` (one `__name__` regex) and return the
    points as one `Batch`. For long spans use `iter_history`, which keeps answers small."""
    samples = _range_samples(base_url, history_selector(metrics), since, until, step_s, timeout)
    return _batch(samples, None, None)


@dataclass(frozen=True)
class HistoryWindow:
    """One query_range answer of `iter_history`: the span asked and what it held."""

    start: datetime
    end: datetime  # inclusive: the last step asked
    series: int
    batch: Batch


def iter_history(
    base_url: str,
    since: datetime,
    until: datetime,
    step_s: int = 60,
    *,
    metrics: list[str] | None = None,
    rules: Iterable[Mapping[str, object] | Rule] | None = None,
    timeout: float = 30.0,
    points_per_request: int = POINTS_PER_REQUEST,
) -> Iterator[HistoryWindow]:
    """History from a Prometheus server's HTTP API, window by window, from `since` to `until`
    (end-exclusive), one point per `step_s` per series.

    Windows never overlap (each starts one step after the last one's end) and are sized so that
    series x steps stays under `points_per_request` and steps under Prometheus's 11,000-point
    limit; the first window is short, to count the series. Pod labels are attributed by `rules`
    (no /proc: the pods ran elsewhere). A `ConnectionError` or `ValueError` names the URL.
    """
    if step_s < 1:
        raise ValueError(f"step must be at least 1 second, got {step_s}")
    since, until = _utc(since), _utc(until)
    if since >= until:
        raise ValueError(f"since {since.isoformat()} is not before until {until.isoformat()}")
    query = history_selector(metrics or history_metrics())
    attributor = ProcessAttributor(rules)
    step = timedelta(seconds=step_s)
    # The last step before `until` (end-exclusive); ends are always whole steps from `since`,
    # so no rounding of a timestamp reaches past `until`.
    last = since + step * (math.ceil((until - since) / step) - 1)
    steps = FIRST_WINDOW_STEPS
    start = since
    while start <= last:
        end = min(start + step * (steps - 1), last)
        samples = _range_samples(base_url, query, start, end, step_s, timeout)
        series = len({(s.name, tuple(sorted(s.labels.items()))) for s in samples})
        batch = attributor.apply(_batch(samples, None, None)) if samples else Batch()
        yield HistoryWindow(start, end, series, batch)
        steps = max(1, min(MAX_POINTS_PER_SERIES - 1, points_per_request // max(series, 1)))
        start = end + step


class ExporterScraper:
    """`gpuledger collect --source prometheus --url …/metrics`: one scrape of a dcgm-exporter (or
    nvidia_gpu_exporter) page per tick, stamped with the tick's time. `host` overrides the page's
    `Hostname` labels; pod labels are attributed by `rules` (the pods run on the exporter's node,
    whose /proc this process does not see)."""

    def __init__(
        self,
        url: str,
        host: str | None = None,
        rules: Iterable[Mapping[str, object] | Rule] | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"{url}: only http and https URLs can be scraped")
        self.url = url
        self.host = host
        self.timeout = timeout
        self.attributor = ProcessAttributor(rules)

    def sample(self, now: datetime | None = None) -> Batch:
        text = scrape(self.url, self.timeout)
        return self.attributor.apply(parse_exposition(text, host=self.host, ts=now))


def parse_capture_file(path: str | Path, host: str | None = None) -> Batch:
    """Parse a saved text page or API JSON answer, detected by its first character.

    Samples without a timestamp get the file's modification time; a page without `Hostname`
    or `instance` labels gets a host named after the file. Errors name the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
        if text.lstrip().startswith("{"):
            return parse_api_json(text, host)
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        return _batch(_text_samples(text), host, mtime, host_from_filename(path.name))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None


# The source's entry points (collectors/gpu/sources.py) ----------------------------------------
def open_sampler(settings: SourceSettings) -> Sampler:
    """`collect --source prometheus`: one scrape of the exporter per tick. The exporter's
    Hostname labels name the host unless --host says otherwise."""
    if not settings.url:
        raise SourceUnavailable("source prometheus needs --url or [collect] prometheus_url")
    return Sampler(ExporterScraper(settings.url, host=settings.host, rules=settings.rules).sample)


def parse_capture(paths: Iterable[str | Path], host: str | None = None) -> Batch:
    """`collect --source prometheus --from FILE…`: each saved page or API answer, together."""
    parts = [parse_capture_file(path, host=host) for path in paths]
    return Batch(
        pl.concat([b.gpu_samples for b in parts]), pl.concat([b.process_samples for b in parts])
    )


def read_history(
    url: str,
    since: datetime,
    until: datetime,
    step_s: int,
    *,
    rules: Iterable[Mapping[str, object] | Rule] | None = None,
    window_s: int | None = None,
    max_series: int | None = None,
    resume_at: datetime | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[HistoryPiece]:
    """`collect --source prometheus --url SERVER --since T`: the server's history in bounded
    windows from `resume_at` (default `since`) to `until`, `headers` sent with every call
    (collectors/gpu/prometheus_history.py)."""
    from collectors.gpu import prometheus_history as ph

    plan = ph.HistoryPlan(since, until, step_s, window_s or ph.DEFAULT_WINDOW_S)
    client = ph.RangeClient(url, timeout=timeout, headers=dict(headers or {}))
    reader = ph.WindowReader(client, plan, max_series=max_series, rules=rules)
    return reader.pieces(resume_at)
