"""nvidia-smi source: `-q -x` XML, `--query-gpu` / `--query-compute-apps` CSV and raw capture files.

Every parser returns a `Batch` (tables/records.py) with `source="smi"` and
`activity_kind="nvml_util"`: nvidia-smi only knows NVML's `utilization.gpu`.

Timestamps: nvidia-smi writes the host's local wall-clock time without a zone (XML `<timestamp>`,
CSV `timestamp`). The parsers read it as UTC, since a saved file does not say where it was taken;
pass `ts` to override. `sample_live` stamps samples with this machine's UTC clock instead.

MIG: a GPU in MIG mode keeps its own row (power, temperature and clocks belong to the board, and
its utilization is null because NVML reports `[N/A]`), and each MIG device gets a row of its own
with `parent_gpu_uuid` set to the board. Count physical GPUs with `parent_gpu_uuid IS NULL`.
Processes on a MIG device are attributed to that device's row.

Sampling cycles: a GPU row's `workload` comes from the process rows with the same (host,
gpu_uuid, ts) (collectors/gpu/workload_rules.py). `-q -x` XML holds both in one answer,
stamped once.
`--query-gpu` and `--query-compute-apps` are two queries whose own `timestamp`s differ by the
time between them (a few hundred ms), so `same_cycle` re-stamps each process row with the time
of its GPU's nearest row, the row of the same sampling cycle; without that a busy GPU would find
no process and be booked `__idle__`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from collectors.gpu.sources import Sampler, SourceSettings, SourceUnavailable
from collectors.gpu.workload_rules import ProcessAttributor, Rule
from tables.records import GPU_SAMPLE_SCHEMA, PROCESS_SAMPLE_SCHEMA, Batch

SOURCE = "smi"
ACTIVITY_KIND = "nvml_util"
LIVE_TIMEOUT_S = 10
# The most a process query may lie from its GPU query and still be of the same sampling cycle;
# where a GPU was sampled repeatedly, half its usual interval when that is less.
MAX_CYCLE_SKEW_S = 5.0

# Values nvidia-smi prints where it has no number (besides anything in brackets, e.g. `[N/A]`).
_MISSING_WORDS = (
    "n/a",
    "not supported",
    "unknown error",
    "insufficient permissions",
    "requested functionality has been deprecated",
)
_NUMBER = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:%|[A-Za-z/]+)?")
_UNIT_SUFFIX = re.compile(r"\s*\[[^\]]*\]$")
_SECTION = re.compile(
    r"^#{20,}\n# (?P<state>[\w.-]+) :: (?P<title>[^\n]*)\n(?:#[^\n]*\n)*?#{20,}\n", re.M
)
_LIST_GPU = re.compile(r"^GPU (\d+): .*\(UUID: (\S+)\)\s*$")
_LIST_MIG = re.compile(r"^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: (\S+)\)\s*$")

# (profile, uuid) of each MIG device by its parent GPU's UUID and the MIG device index.
Listing = dict[str, dict[int, tuple[str, str]]]
# MIG row UUID by (GPU instance id, compute instance id); compute id None matches any.
Instances = dict[tuple[int | None, int | None], str]


class SmiUnavailable(RuntimeError):
    """nvidia-smi cannot be run on this host (no driver, or the binary failed)."""


# ---------------------------------------------------------------- values


def _missing(text: str) -> bool:
    low = text.strip().lower()
    return (
        not low
        or (low.startswith("[") and low.endswith("]"))
        or low in _MISSING_WORDS
        or low.startswith("not available")
    )


def _number(raw: str | None, where: str) -> float | None:
    """`'631.95 W'` -> 631.95; `N/A`, `[Not Supported]` and friends -> None."""
    if raw is None or _missing(raw):
        return None
    match = _NUMBER.fullmatch(raw.strip())
    if match is None:
        raise ValueError(f"{where}: {raw.strip()!r} is not a number")
    return float(match.group(1))


def _int(raw: str | None, where: str) -> int | None:
    value = _number(raw, where)
    if value is None:
        return None
    if not value.is_integer():
        raise ValueError(f"{where}: {raw!r} is not a whole number")
    return int(value)


def _utc(ts: datetime) -> datetime:
    """Naive datetimes are read as UTC (see the module docstring)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _csv_time(raw: str, where: str) -> datetime:
    for fmt in ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S"):
        try:
            return datetime.strptime(raw.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    raise ValueError(f"{where}: {raw!r} is not a 'YYYY/MM/DD HH:MM:SS.mmm' timestamp")


def _xml_time(raw: str) -> datetime:
    try:
        return datetime.strptime(" ".join(raw.split()), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"<timestamp>: {raw!r} is not like 'Thu Sep 15 13:53:22 2022'") from None


def _frame(rows: list[dict], schema: dict[str, pl.DataType]) -> pl.DataFrame | None:
    if not rows:
        return None
    return pl.DataFrame(rows, schema={k: schema[k] for k in rows[0]})


def _batch(gpu_rows: list[dict], proc_rows: list[dict]) -> Batch:
    return Batch(_frame(gpu_rows, GPU_SAMPLE_SCHEMA), _frame(proc_rows, PROCESS_SAMPLE_SCHEMA))


def _gpu_row(host: str, ts: datetime, uuid: str, **values: object) -> dict:
    row = {
        "ts": ts,
        "host": host,
        "gpu_uuid": uuid,
        "gpu_index": None,
        "gpu_model": None,
        "util_pct": None,
        "mem_used_mib": None,
        "mem_total_mib": None,
        "power_w": None,
        "sm_clock_mhz": None,
        "temperature_c": None,
        "power_limit_w": None,
        "ecc_errors": None,
        "parent_gpu_uuid": None,
        "mig_profile": None,
        "activity_kind": ACTIVITY_KIND,
        "source": SOURCE,
    }
    row.update(values)
    return row


def _mig_row(
    parent: dict, gi: int | None, ci: int | None, uuid: str | None, **values: object
) -> dict:
    """A MIG device row: the board's identity, the device's own memory, no board-level readings."""
    return _gpu_row(
        parent["host"],
        parent["ts"],
        uuid or f"{parent['gpu_uuid']}/gi{gi}/ci{ci}",
        gpu_index=parent["gpu_index"],
        gpu_model=parent["gpu_model"],
        parent_gpu_uuid=parent["gpu_uuid"],
        **values,
    )


def _proc_row(
    host: str, ts: datetime, uuid: str, pid: int, command: str | None, used_mib: float | None
) -> dict:
    return {
        "ts": ts,
        "host": host,
        "gpu_uuid": uuid,
        "pid": pid,
        "command": command,
        "used_mib": used_mib,
        "source": SOURCE,
    }


# ---------------------------------------------------------------- nvidia-smi -L


def parse_listing(text: str) -> Listing:
    """MIG profile and UUID per device from `nvidia-smi -L` (the XML carries neither)."""
    out: Listing = {}
    parent: str | None = None
    for line in text.splitlines():
        if gpu := _LIST_GPU.match(line):
            parent = gpu.group(2)
            out[parent] = {}
        elif (mig := _LIST_MIG.match(line)) and parent is not None:
            out[parent][int(mig.group(2))] = (mig.group(1), mig.group(3))
    return out


# ---------------------------------------------------------------- XML


def _xml_root(text: str) -> ET.Element:
    if "<!entity" in text.lower():
        raise ValueError("XML declares entities (<!ENTITY ...>): refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"malformed XML: {exc}") from None
    if root.tag != "nvidia_smi_log":
        raise ValueError(f"not nvidia-smi XML: root element is <{root.tag}>")
    return root


def _text(element: ET.Element, path: str) -> str | None:
    node = element.find(path)
    if node is None or node.text is None:
        return None
    return node.text.strip()


def _xml_number(element: ET.Element, path: str, where: str) -> float | None:
    return _number(_text(element, path), f"{where} {path}")


_POWER_PATHS = (
    "power_readings/power_draw",
    "gpu_power_readings/power_draw",
    "gpu_power_readings/average_power_draw",
    "gpu_power_readings/instant_power_draw",
    "power_readings/average_power_draw",
    "power_readings/instant_power_draw",
)


# Where the enforced power limit is: drivers before R530 under power_readings, later ones
# under gpu_power_readings as current_power_limit.
_POWER_LIMIT_PATHS = (
    "power_readings/enforced_power_limit",
    "gpu_power_readings/current_power_limit",
    "power_readings/current_power_limit",
    "power_readings/power_limit",
)
# Uncorrected ECC errors since the driver loaded: double-bit errors on older drivers, DRAM and
# SRAM uncorrectable ones on later drivers.
_ECC_PATHS = (
    ("ecc_errors/volatile/double_bit/total",),
    ("ecc_errors/volatile/dram_uncorrectable", "ecc_errors/volatile/sram_uncorrectable"),
)


def _xml_first(gpu: ET.Element, paths: tuple[str, ...], where: str) -> float | None:
    """The first of `paths` that holds a number."""
    for path in paths:
        if (value := _xml_number(gpu, path, where)) is not None:
            return value
    return None


def _xml_ecc(gpu: ET.Element, where: str) -> float | None:
    """Uncorrected ECC errors (volatile), summed over the counters this driver writes; None on
    a GPU without ECC."""
    for paths in _ECC_PATHS:
        values = [v for p in paths if (v := _xml_number(gpu, p, where)) is not None]
        if values:
            return sum(values)
    return None


def _xml_gpu(gpu: ET.Element, pos: int, host: str, ts: datetime) -> dict:
    where = f"<gpu> #{pos} ({gpu.get('id', '?')})"
    uuid = _text(gpu, "uuid")
    if not uuid or _missing(uuid):
        raise ValueError(f"{where} uuid: missing")
    minor = _int(_text(gpu, "minor_number"), f"{where} minor_number")
    power = None
    for path in _POWER_PATHS:
        if (power := _xml_number(gpu, path, where)) is not None:
            break
    return _gpu_row(
        host,
        ts,
        uuid,
        gpu_index=pos if minor is None else minor,
        gpu_model=_text(gpu, "product_name"),
        util_pct=_xml_number(gpu, "utilization/gpu_util", where),
        mem_used_mib=_xml_number(gpu, "fb_memory_usage/used", where),
        mem_total_mib=_xml_number(gpu, "fb_memory_usage/total", where),
        power_w=power,
        sm_clock_mhz=_xml_number(gpu, "clocks/sm_clock", where),
        temperature_c=_xml_number(gpu, "temperature/gpu_temp", where),
        power_limit_w=_xml_first(gpu, _POWER_LIMIT_PATHS, where),
        ecc_errors=_xml_ecc(gpu, where),
    )


def _xml_migs(
    gpu: ET.Element, parent: dict, pos: int, listed: dict[int, tuple[str, str]]
) -> tuple[list[dict], Instances]:
    """MIG device rows and a map (gi, ci) -> row UUID for attributing processes."""
    rows: list[dict] = []
    by_instance: Instances = {}
    for j, mig in enumerate(gpu.findall("mig_devices/mig_device")):
        where = f"<gpu> #{pos} <mig_device> #{j}"
        index = _int(_text(mig, "index"), f"{where} index")
        gi = _int(_text(mig, "gpu_instance_id"), f"{where} gpu_instance_id")
        ci = _int(_text(mig, "compute_instance_id"), f"{where} compute_instance_id")
        profile, listed_uuid = (
            listed.get(index, (None, None)) if index is not None else (None, None)
        )
        own_uuid = _text(mig, "uuid")
        row = _mig_row(
            parent,
            gi,
            ci,
            own_uuid if own_uuid and not _missing(own_uuid) else listed_uuid,
            mig_profile=profile,
            util_pct=_xml_number(mig, "utilization/gpu_util", where),
            mem_used_mib=_xml_number(mig, "fb_memory_usage/used", where),
            mem_total_mib=_xml_number(mig, "fb_memory_usage/total", where),
        )
        rows.append(row)
        by_instance[(gi, ci)] = row["gpu_uuid"]
        by_instance.setdefault((gi, None), row["gpu_uuid"])
    return rows, by_instance


def _xml_processes(gpu: ET.Element, parent: dict, pos: int, by_instance: Instances) -> list[dict]:
    rows = []
    for j, proc in enumerate(gpu.findall("processes/process_info")):
        where = f"<gpu> #{pos} <process_info> #{j}"
        pid = _int(_text(proc, "pid"), f"{where} pid")
        if pid is None:
            raise ValueError(f"{where} pid: missing")
        gi = _int(_text(proc, "gpu_instance_id"), f"{where} gpu_instance_id")
        ci = _int(_text(proc, "compute_instance_id"), f"{where} compute_instance_id")
        uuid = by_instance.get((gi, ci)) or by_instance.get((gi, None)) or parent["gpu_uuid"]
        used = _xml_number(proc, "used_memory", where)
        rows.append(
            _proc_row(parent["host"], parent["ts"], uuid, pid, _text(proc, "process_name"), used)
        )
    return rows


def parse_smi_xml(
    text: str, host: str, ts: datetime | None = None, *, listing: str | None = None
) -> Batch:
    """Parse `nvidia-smi -q -x` output.

    `ts` defaults to the XML's `<timestamp>` read as UTC. `listing` is optional `nvidia-smi -L`
    output: the only place that names MIG profiles, and the MIG UUIDs where the XML omits them.
    """
    root = _xml_root(text)
    if ts is None:
        stamp = _text(root, "timestamp")
        ts = _xml_time(stamp) if stamp else datetime.now(UTC)
    ts = _utc(ts)
    listed = parse_listing(listing) if listing else {}
    gpu_rows: list[dict] = []
    proc_rows: list[dict] = []
    for pos, gpu in enumerate(root.findall("gpu")):
        parent = _xml_gpu(gpu, pos, host, ts)
        migs, by_instance = _xml_migs(gpu, parent, pos, listed.get(parent["gpu_uuid"], {}))
        gpu_rows += [parent, *migs]
        proc_rows += _xml_processes(gpu, parent, pos, by_instance)
    return _batch(gpu_rows, proc_rows)


# ---------------------------------------------------------------- CSV


def _csv_rows(text: str, what: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header names without their `[unit]` suffix, and (line number, values by name) per row."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise ValueError(f"{what}: no header line")
    header = [_UNIT_SUFFIX.sub("", name.strip()) for name in lines[0][1].split(",")]
    rows = []
    for n, line in lines[1:]:
        values = [v.strip() for v in line.split(",")]
        extra = len(values) - len(header)
        if extra > 0 and "process_name" in header:
            # Process names may hold commas; nvidia-smi does not quote them.
            k = header.index("process_name")
            values[k : k + extra + 1] = [", ".join(values[k : k + extra + 1])]
        if len(values) != len(header):
            raise ValueError(f"{what} row {n}: {len(values)} values for {len(header)} columns")
        rows.append((n, dict(zip(header, values, strict=True))))
    return header, rows


def _pick(row: dict[str, str], names: tuple[str, ...], n: int) -> float | None:
    for name in names:
        if name in row and (value := _number(row[name], f"row {n} field {name!r}")) is not None:
            return value
    return None


def _row_ts(row: dict[str, str], n: int, ts: datetime | None, now: datetime) -> datetime:
    if ts is not None:
        return _utc(ts)
    if "timestamp" in row:
        return _csv_time(row["timestamp"], f"row {n} field 'timestamp'")
    return now


def _require(header: list[str], names: tuple[str, ...], what: str) -> str:
    for name in names:
        if name in header:
            return name
    raise ValueError(f"{what}: header has no {' or '.join(map(repr, names))} column")


def parse_query_gpu_csv(text: str, host: str, ts: datetime | None = None) -> Batch:
    """Parse `nvidia-smi --query-gpu=... --format=csv[,nounits]` output, header included."""
    header, rows = _csv_rows(text, "query-gpu CSV")
    uuid_col = _require(header, ("uuid", "gpu_uuid"), "query-gpu CSV")
    now = datetime.now(UTC)
    out = []
    for n, row in rows:
        index = _pick(row, ("index",), n)
        out.append(
            _gpu_row(
                host,
                _row_ts(row, n, ts, now),
                row[uuid_col],
                gpu_index=None if index is None else int(index),
                gpu_model=row.get("name", row.get("gpu_name")),
                util_pct=_pick(row, ("utilization.gpu",), n),
                mem_used_mib=_pick(row, ("memory.used",), n),
                mem_total_mib=_pick(row, ("memory.total",), n),
                power_w=_pick(row, ("power.draw", "power.draw.average", "power.draw.instant"), n),
                sm_clock_mhz=_pick(row, ("clocks.sm", "clocks.current.sm"), n),
                temperature_c=_pick(row, ("temperature.gpu",), n),
                power_limit_w=_pick(row, ("enforced.power.limit", "power.limit"), n),
                ecc_errors=_pick(row, ("ecc.errors.uncorrected.volatile.total",), n),
            )
        )
    return _batch(out, [])


def parse_query_compute_apps_csv(text: str, host: str, ts: datetime | None = None) -> Batch:
    """Parse `nvidia-smi --query-compute-apps=... --format=csv[,nounits]` into process rows."""
    header, rows = _csv_rows(text, "query-compute-apps CSV")
    uuid_col = _require(header, ("gpu_uuid", "uuid"), "query-compute-apps CSV")
    _require(header, ("pid",), "query-compute-apps CSV")
    now = datetime.now(UTC)
    out = []
    for n, row in rows:
        pid = _pick(row, ("pid",), n)
        if pid is None:
            raise ValueError(f"row {n} field 'pid': missing")
        used = _pick(row, ("used_gpu_memory", "used_memory"), n)
        command = row.get("process_name")
        out.append(
            _proc_row(host, _row_ts(row, n, ts, now), row[uuid_col], int(pid), command, used)
        )
    return _batch([], out)


def same_cycle(
    gpus: pl.DataFrame, procs: pl.DataFrame, max_skew_s: float = MAX_CYCLE_SKEW_S
) -> pl.DataFrame:
    """`procs` with each row stamped with the `ts` of its GPU's row of the same sampling cycle.

    That row is the GPU's (same host and UUID) nearest in time, if it is within `max_skew_s` and
    within half the GPU's usual (median) interval between rows; a process row without one keeps
    its own time. Where several rows of one process land on one cycle, the nearest is kept.
    """
    if gpus.is_empty() or procs.is_empty():
        return procs
    keys = ["host", "gpu_uuid"]
    half_interval = (pl.col("_cycle").diff().dt.total_microseconds() / 2e6).median().over(keys)
    cycles = (
        gpus.select(*keys, _cycle="ts")
        .unique()
        .sort(*keys, "_cycle")
        .with_columns(_reach=pl.min_horizontal(pl.lit(max_skew_s), half_interval))
        .sort("_cycle")
    )
    skew = (pl.col("_cycle") - pl.col("ts")).dt.total_microseconds().abs() / 1e6
    return (
        procs.with_row_index("_row")
        .sort("ts")
        .join_asof(
            cycles,
            left_on="ts",
            right_on="_cycle",
            by=keys,
            strategy="nearest",
            check_sortedness=False,  # both sorted by time above
        )
        .with_columns(_skew=pl.when(skew <= pl.col("_reach")).then(skew))
        .with_columns(ts=pl.when(pl.col("_skew").is_not_null()).then("_cycle").otherwise("ts"))
        .sort(pl.col("_skew").fill_null(0.0), "_row")
        .unique(subset=[*keys, "ts", "pid"], keep="first", maintain_order=True)
        .sort("_row")
        .select(procs.columns)
    )


# ---------------------------------------------------------------- `nvidia-smi -q` text (MIG only)


@dataclass
class _Node:
    key: str
    value: str | None
    children: list[_Node] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        return next((c.value for c in self.children if c.key == key), None)


def _q_tree(text: str) -> list[_Node]:
    """`nvidia-smi -q` text as a tree of `key : value` nodes nested by indentation."""
    root = _Node("", None)
    stack: list[tuple[int, _Node]] = [(-1, root)]
    for line in text.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, sep, value = line.strip().partition(" : ")
        if not sep and line.rstrip().endswith(" :"):
            key, sep, value = line.strip()[:-2], ":", ""
        node = _Node(key.strip(), value.strip() if sep else None)
        while stack[-1][0] >= indent:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((indent, node))
    return root.children


def _q_migs(
    q_text: str, boards: dict[str, dict], listed: Listing
) -> tuple[list[dict], dict[tuple[str, int], str]]:
    """MIG rows from the `-q` text of a capture, and a map (board UUID, pid) -> MIG row UUID."""
    rows: list[dict] = []
    pid_map: dict[tuple[str, int], str] = {}
    for gpu in (n for n in _q_tree(q_text) if n.key.startswith("GPU ")):
        parent = boards.get(gpu.get("GPU UUID") or "")
        if parent is None:
            continue
        by_instance: dict[tuple[int | None, int | None], str] = {}
        for j, mig in enumerate(c for c in gpu.children if c.key == "MIG Device"):
            where = f"{gpu.key} MIG Device #{j}"
            index = _int(mig.get("Index"), f"{where} Index")
            gi = _int(mig.get("GPU Instance ID"), f"{where} GPU Instance ID")
            ci = _int(mig.get("Compute Instance ID"), f"{where} Compute Instance ID")
            memory = next((c for c in mig.children if c.key.endswith("FB Memory Usage")), None)
            found = listed.get(parent["gpu_uuid"], {}).get(index) if index is not None else None
            profile, uuid = found or (None, None)
            row = _mig_row(
                parent,
                gi,
                ci,
                uuid,
                mig_profile=profile,
                mem_used_mib=_number(memory.get("Used"), f"{where} Used") if memory else None,
                mem_total_mib=_number(memory.get("Total"), f"{where} Total") if memory else None,
            )
            rows.append(row)
            by_instance[(gi, ci)] = row["gpu_uuid"]
        gi = ci = None
        for proc in (c for p in gpu.children if p.key == "Processes" for c in p.children):
            if proc.key == "GPU instance ID":
                gi = _int(proc.value, f"{gpu.key} Processes GPU instance ID")
            elif proc.key == "Compute instance ID":
                ci = _int(proc.value, f"{gpu.key} Processes Compute instance ID")
            elif proc.key == "Process ID" and (gi, ci) in by_instance:
                pid = _int(proc.value, f"{gpu.key} Processes Process ID")
                if pid is not None:
                    pid_map[(parent["gpu_uuid"], pid)] = by_instance[(gi, ci)]
    return rows, pid_map


def _move_to_mig(processes: pl.DataFrame, pid_map: dict[tuple[str, int], str]) -> pl.DataFrame:
    if not pid_map or processes.is_empty():
        return processes
    mapping = pl.DataFrame(
        [(board, pid, mig) for (board, pid), mig in pid_map.items()],
        schema={"gpu_uuid": pl.String, "pid": pl.Int64, "mig_uuid": pl.String},
        orient="row",
    )
    return (
        processes.join(mapping, on=["gpu_uuid", "pid"], how="left")
        .with_columns(gpu_uuid=pl.coalesce("mig_uuid", "gpu_uuid"))
        .drop("mig_uuid")
    )


# ---------------------------------------------------------------- capture files


def _sections(text: str) -> list[tuple[str, str, str]]:
    """(state, command kind, body) for each `# <state> :: <title>` section of a capture."""
    matches = list(_SECTION.finditer(text))
    out = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        kind = match["title"].split(" (")[0].strip()
        out.append((match["state"], kind, text[match.end() : end].strip("\n")))
    return out


def _capture_state(
    bodies: dict[str, str], host: str, ts: datetime | None, listing: str | None
) -> Batch:
    """One state (idle, load, ...) of a capture: XML if captured, else query-gpu CSV + -q text."""
    xml = next((b for b in bodies.values() if b.lstrip().startswith("<")), None)
    if xml is not None:
        return parse_smi_xml(xml, host, ts, listing=listing)
    gpus = parse_query_gpu_csv(bodies["query-gpu"], host, ts).gpu_samples
    procs = Batch().process_samples
    if "query-compute-apps" in bodies:
        apps = parse_query_compute_apps_csv(bodies["query-compute-apps"], host, ts)
        procs = same_cycle(gpus, apps.process_samples)
    if "query" in bodies:
        boards = {row["gpu_uuid"]: row for row in gpus.to_dicts()}
        migs, pid_map = _q_migs(bodies["query"], boards, parse_listing(listing or ""))
        if migs:
            gpus = pl.concat([gpus, Batch(_frame(migs, GPU_SAMPLE_SCHEMA)).gpu_samples])
        procs = _move_to_mig(procs, pid_map)
    return Batch(gpus, procs)


def parse_capture_text(text: str, host: str, ts: datetime | None = None) -> Batch:
    """A multi-section capture (nvidia_gpu_exporter's `internal/captures/*.txt`), all states."""
    sections = _sections(text)
    listing = next((b for s, k, b in sections if k == "list"), None)
    states: dict[str, dict[str, str]] = {}
    for state, kind, body in sections:
        if state != "capabilities":
            states.setdefault(state, {}).setdefault(kind, body)
    batches = []
    for state, bodies in states.items():
        if "query-gpu" not in bodies and not any(b.startswith("<") for b in bodies.values()):
            continue
        try:
            batches.append(_capture_state(bodies, host, ts, listing))
        except ValueError as exc:
            raise ValueError(f"section '{state}': {exc}") from None
    if not batches:
        raise ValueError("no '# <state> :: query-gpu' or XML section found")
    return Batch(
        pl.concat([b.gpu_samples for b in batches]),
        pl.concat([b.process_samples for b in batches]),
    )


def host_from_filename(name: str) -> str:
    """A host name from a capture file name: strip the extension, state and query suffixes.

    `linux-x86_64__nvidia-l40s__595.80__idle__query-gpu.csv` -> `linux-x86_64__nvidia-l40s__595.80`.

    Only known extensions are dropped: driver versions in these names contain dots.
    """
    stem = Path(name).name
    for suffix in (".txt", ".xml", ".csv", ".metrics", ".prom", ".json"):
        stem = stem.removesuffix(suffix)
    for suffix in ("__query-gpu", "__query-compute-apps", "__idle", "__load"):
        stem = stem.removesuffix(suffix)
    return stem


def parse_capture_files(
    paths: Iterable[str | Path], host: str | None = None, ts: datetime | None = None
) -> Batch:
    """Several saved outputs as one capture, e.g. `…__query-gpu.csv` with the
    `…__query-compute-apps.csv` taken with it: the GPU rows of all, and their processes, each
    stamped with its GPU row's time of the same sampling cycle (`same_cycle`)."""
    batches = [parse_capture_file(path, host, ts) for path in paths]
    if not batches:
        raise ValueError("no capture file given")
    gpus = pl.concat([b.gpu_samples for b in batches])
    procs = pl.concat([b.process_samples for b in batches])
    if len(batches) > 1:
        procs = same_cycle(gpus, procs)
    return Batch(gpus, procs, pl.concat([b.health for b in batches]))


def parse_capture_file(
    path: str | Path, host: str | None = None, ts: datetime | None = None
) -> Batch:
    """Parse a saved nvidia-smi output, detecting its kind: `-q -x` XML, a `--query-gpu` or
    `--query-compute-apps` CSV with header, or a multi-section capture text file.

    `host` defaults to a name derived from the file name. Errors name the file.
    """
    path = Path(path)
    host = host or host_from_filename(path.name)
    try:
        text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        head = text.lstrip()
        if not head:
            raise ValueError("empty file")
        if head.startswith(("<?xml", "<nvidia_smi_log", "<!DOCTYPE")):
            return parse_smi_xml(text, host, ts)
        if head.startswith("#"):
            return parse_capture_text(text, host, ts)
        header = {_UNIT_SUFFIX.sub("", c.strip()) for c in head.splitlines()[0].split(",")}
        if "pid" in header:
            return parse_query_compute_apps_csv(text, host, ts)
        return parse_query_gpu_csv(text, host, ts)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None


# ---------------------------------------------------------------- live


def _run(exe: str, *args: str) -> str:
    try:
        proc = subprocess.run(
            [exe, *args], capture_output=True, text=True, timeout=LIVE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise SmiUnavailable(
            f"nvidia-smi {' '.join(args)} timed out after {LIVE_TIMEOUT_S} s"
        ) from None
    except OSError as exc:
        raise SmiUnavailable(f"cannot run {exe}: {exc}") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        detail = message[0] if message else "no output"
        raise SmiUnavailable(f"nvidia-smi {' '.join(args)} exited {proc.returncode}: {detail}")
    return proc.stdout


def find_nvidia_smi(nvidia_smi: str = "nvidia-smi") -> str:
    """The path of `nvidia-smi` (a name looked up on PATH, or a path); SmiUnavailable if none."""
    exe = shutil.which(nvidia_smi)
    if exe is None:
        raise SmiUnavailable("nvidia-smi not found on PATH: no NVIDIA driver on this host?")
    return exe


def sample_live(host: str, nvidia_smi: str = "nvidia-smi", ts: datetime | None = None) -> Batch:
    """Run `nvidia-smi -q -x` (plus `-L` when MIG devices exist) and parse it, stamped `ts`
    (default: now, UTC) rather than with the XML's zone-less local time."""
    exe = find_nvidia_smi(nvidia_smi)
    now = _utc(ts) if ts is not None else datetime.now(UTC)
    xml = _run(exe, "-q", "-x")
    listing = _run(exe, "-L") if "<mig_device>" in xml else None
    return parse_smi_xml(xml, host, now, listing=listing)


class SmiSampler:
    """`gpuledger collect --source smi`: one `nvidia-smi -q -x` per tick, for hosts without
    Python NVML bindings. Its processes are this host's, so each is read from `proc_root` and
    named by the workload rules like NVML's; nvidia-smi gives no per-process SM share, so a GPU
    shared by several processes is named after the one holding the most memory.

    Raises SmiUnavailable at construction when nvidia-smi is missing.
    """

    def __init__(
        self,
        host: str,
        rules: Iterable[Mapping[str, object] | Rule] | None = None,
        *,
        nvidia_smi: str = "nvidia-smi",
        proc_root: str | Path = "/proc",
    ) -> None:
        self.host = host
        self.exe = find_nvidia_smi(nvidia_smi)
        self.attributor = ProcessAttributor(rules, proc_root=proc_root)

    def sample(self, now: datetime | None = None) -> Batch:
        return self.attributor.apply(sample_live(self.host, self.exe, now))


# The source's entry points (collectors/gpu/sources.py) ----------------------------------------
def open_sampler(settings: SourceSettings) -> Sampler:
    """`collect --source smi`: nvidia-smi on this host, named like NVML's host (--host, else
    [collect] host_id, else detected)."""
    from collectors.gpu.nvml import detect_host_id

    host = settings.host or detect_host_id(settings.host_id or None)
    try:
        return Sampler(SmiSampler(host, list(settings.rules)).sample)
    except SmiUnavailable as exc:
        raise SourceUnavailable(str(exc)) from None


def parse_capture(paths: Iterable[str | Path], host: str | None = None) -> Batch:
    """`collect --source smi --from FILE…`: `parse_capture_files`."""
    return parse_capture_files(paths, host=host)
