"""Per-GPU and per-process samples from NVML, the only module that imports pynvml.

Every NVML call goes through `NvmlCollector._call` (after nvitop's libnvml), which decides what
an NVML error means here:

- NotSupported, NoPermission, FunctionNotFound (and pynvml's NVMLLibraryMismatchError, raised
  when the driver lacks a versioned symbol): the metric is not available on that GPU; it is
  remembered per (GPU uuid, metric), logged once and never asked again.
- NotFound: "nothing there" (no process utilization samples, an empty MIG slot).
- GpuIsLost, Unknown: that GPU stops answering; it becomes a health record for this tick and
  the other GPUs are still sampled.
- Anything else: the value is missing for this tick (logged once per GPU, metric and code).

Activity comes from GPM (Hopper and newer: SM active, occupancy, tensor, DRAM bandwidth),
computed between two GPM samples at least 100 ms apart. The previous sample of each GPU is kept
between ticks, so steady sampling takes one new GPM sample per tick; only the first tick takes
two. Without GPM, `utilization.gpu` is the activity (activity_kind "nvml_util").
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from collectors.gpu.procinfo import ProcessInfoCache
from collectors.gpu.sources import Sampler, SourceSettings, SourceUnavailable
from collectors.gpu.workload_rules import (
    Rule,
    dominant_workload,
    env_keys,
    resolve_workload,
    validate_rules,
)
from tables.records import (
    GPU_SAMPLE_SCHEMA,
    HEALTH_SCHEMA,
    PROCESS_SAMPLE_SCHEMA,
    Batch,
    empty,
)
from tables.units import BYTES_PER_MIB

log = logging.getLogger(__name__)

SOURCE = "nvml"
GPM_MIN_INTERVAL_S = 0.1
_NO_DRIVER = "no NVIDIA GPU or driver on this host"

# pynvml metric constant -> gpu_samples column.
_GPM_COLUMNS = (
    ("NVML_GPM_METRIC_SM_UTIL", "sm_active_pct"),
    ("NVML_GPM_METRIC_SM_OCCUPANCY", "sm_occupancy_pct"),
    ("NVML_GPM_METRIC_ANY_TENSOR_UTIL", "tensor_active_pct"),
    ("NVML_GPM_METRIC_DRAM_BW_UTIL", "dram_active_pct"),
)

# On Nitro instances the DMI board asset tag holds the EC2 instance id (no network needed).
EC2_ASSET_TAG_PATH = Path("/sys/devices/virtual/dmi/id/board_asset_tag")
_EC2_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_MIG_PROFILE = re.compile(r"\bMIG\s+(\S+)\s*$")


class NvmlUnavailable(RuntimeError):
    """No NVIDIA GPU, driver or NVML library on this host."""


class _GpuFailure(Exception):
    """One GPU stopped answering (lost, or an unknown error); becomes a health record."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Missing:
    """The funnel's "no value this time"; distinct from None, which NVML can return."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class _Target:
    """A GPU to sample this tick: a physical GPU, or one MIG instance of it."""

    uuid: str
    index: int
    model: str | None
    handle: Any
    parent_uuid: str | None = None
    parent_handle: Any = None
    gpu_instance_id: int | None = None
    mig_profile: str | None = None
    # The physical board of a GPU in MIG mode: its row carries the board readings (power, energy,
    # clocks, temperature) and no activity or processes, which belong to its instances.
    mig_board: bool = False

    @property
    def is_mig(self) -> bool:
        return self.parent_uuid is not None

    @property
    def physical(self) -> tuple[str, Any]:
        """The uuid and handle of the physical GPU."""
        if self.parent_uuid is not None:
            return self.parent_uuid, self.parent_handle
        return self.uuid, self.handle


@dataclass(frozen=True)
class _GpmSample:
    handle: Any
    taken_at: float  # monotonic seconds


# --------------------------------------------------------------------------- loading


def _load_nvml(nvml: ModuleType | None) -> ModuleType:
    """The injected module, else pynvml imported now (so the project imports without it)."""
    if nvml is not None:
        return nvml
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailable(f"{_NO_DRIVER} (pynvml not importable: {exc})") from exc
    return pynvml


def _init(nvml: ModuleType) -> None:
    """nvmlInit, turning a missing library or driver into NvmlUnavailable."""
    try:
        nvml.nvmlInit()
    except (nvml.NVMLError, OSError) as exc:
        raise NvmlUnavailable(f"{_NO_DRIVER} (nvmlInit: {type(exc).__name__}: {exc})") from exc


def _shutdown(nvml: ModuleType) -> None:
    try:
        nvml.nvmlShutdown()
    except nvml.NVMLError as exc:
        log.debug("nvmlShutdown: %s", exc)


def nvml_available(nvml: ModuleType | None = None) -> tuple[bool, str]:
    """Whether NVML works here, and a line saying why (for `gpuledger doctor`)."""
    try:
        nv = _load_nvml(nvml)
        _init(nv)
    except NvmlUnavailable as exc:
        return False, str(exc)
    try:
        count = nv.nvmlDeviceGetCount()
        driver = _driver_version(nv)
        names = [_device_name(nv, i) for i in range(count)]
    except nv.NVMLError as exc:
        return False, f"NVML initialized but cannot list GPUs ({type(exc).__name__}: {exc})"
    finally:
        _shutdown(nv)
    if count == 0:
        return False, f"{_NO_DRIVER} (NVML driver {driver} sees 0 GPUs)"
    return True, f"NVML driver {driver}, {count} GPU(s): {', '.join(names)}"


def _driver_version(nv: ModuleType) -> str:
    try:
        return str(nv.nvmlSystemGetDriverVersion())
    except (nv.NVMLError, AttributeError):
        return "unknown"


def _device_name(nv: ModuleType, index: int) -> str:
    try:
        return str(nv.nvmlDeviceGetName(nv.nvmlDeviceGetHandleByIndex(index)))
    except nv.NVMLError as exc:
        return f"GPU {index} ({type(exc).__name__})"


# --------------------------------------------------------------------------- host id


def detect_host_id(
    configured: str | None = None,
    *,
    metadata_reader: Callable[[], str | None] | None = None,
    dmi_reader: Callable[[str], str | None] | None = None,
) -> str:
    """The host id telemetry is keyed by: configured, else the EC2 instance id, else the
    hostname (on an Azure VM or a Compute Engine instance: its short name, lower-cased).

    The id must equal what the VM's bill lines name (collectors/billing/normalize.instance_id),
    so local telemetry joins cloud cost, and it is read without any network call:
    - EC2: the instance id in the DMI board asset tag (Nitro instances);
    - Azure (DMI chassis asset tag 7783-7084-3265-9085-8269-3286-77): the VM name, which the
      bill's ARM ResourceId ends with; Azure makes it the computer name unless told otherwise
      (then set [collect] host_id to the VM name). The SMBIOS product_uuid is the vmId, which no
      bill line carries, so it is not used;
    - Compute Engine (DMI product_name "Google Compute Engine"): the instance name, the bill's
      resource.name; the numeric instance id is only in the metadata server, not in DMI.
    """
    if configured and configured.strip():
        return configured.strip()
    reader = metadata_reader or _read_board_asset_tag
    try:
        tag = (reader() or "").strip()
    except OSError:
        tag = ""
    if _EC2_INSTANCE_ID.match(tag):
        return tag
    name = socket.gethostname()
    if cloud_vm(dmi_reader) in ("azure", "gcp"):
        return name.split(".", 1)[0].lower()
    return name


# Without a network call: the SMBIOS facts Linux exposes under /sys/class/dmi/id.
DMI_DIR = Path("/sys/class/dmi/id")
AZURE_CHASSIS_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
GCE_PRODUCT_NAME = "Google Compute Engine"


def _read_dmi(name: str) -> str | None:
    try:
        return (DMI_DIR / name).read_text(encoding="ascii", errors="replace")
    except OSError:
        return None


def cloud_vm(dmi_reader: Callable[[str], str | None] | None = None) -> str | None:
    """`azure` or `gcp` when the DMI facts say this is such a VM, else None."""
    read = dmi_reader or _read_dmi
    if (read("chassis_asset_tag") or "").strip() == AZURE_CHASSIS_ASSET_TAG:
        return "azure"
    if (read("product_name") or "").strip() == GCE_PRODUCT_NAME:
        return "gcp"
    return None


def _read_board_asset_tag() -> str | None:
    try:
        return EC2_ASSET_TAG_PATH.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None


# --------------------------------------------------------------------------- collector


class NvmlCollector:
    """Samples every GPU (or MIG instance) on this host and the processes on it.

    `rules` are workload rules (collectors.gpu.workload_rules; None for the defaults), `env_vars`
    extra environment variables to read from each process. `proc_root`, `clock` and `sleep`
    are for tests.
    """

    def __init__(
        self,
        host: str,
        rules: Iterable[Mapping[str, object] | Rule] | None = None,
        env_vars: Iterable[str] = (),
        nvml: ModuleType | None = None,
        *,
        proc_root: str | Path = "/proc",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.host = host
        self._rules = validate_rules(rules)
        self._env_names = sorted(set(env_vars) | set(env_keys(self._rules)))
        # Processes looked up this tick: a pid on several GPUs is read once per tick.
        self._tick_processes: dict[int, tuple[Any, Any]] = {}
        self._processes = ProcessInfoCache(
            self._env_names, root=proc_root, derive=lambda info: resolve_workload(info, self._rules)
        )
        self._clock = clock
        self._sleep = sleep
        self._nvml = _load_nvml(nvml)
        nv = self._nvml
        self._unsupported_errors: tuple[type[BaseException], ...] = (
            nv.NVMLError_NotSupported,
            nv.NVMLError_NoPermission,
            nv.NVMLError_FunctionNotFound,
            getattr(nv, "NVMLLibraryMismatchError", nv.NVMLError_FunctionNotFound),
        )
        self._unsupported: set[tuple[str, str]] = set()
        self._warned: set[tuple[str, str, object]] = set()
        self._failing: set[str] = set()
        self._gpm_support: dict[str, bool] = {}
        self._gpm_prev: dict[str, _GpmSample] = {}
        self._util_seen: dict[str, int] = {}
        self._uuid_by_index: dict[int, str] = {}
        self._closed = False
        _init(nv)

    # ----------------------------------------------------------------- the funnel

    def _call(
        self,
        key: str,
        metric: str,
        fn_name: str,
        *args: Any,
        not_found: Any = MISSING,
        remember: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Call `nvml.<fn_name>` for GPU `key`; see the module docstring for what errors mean."""
        if (key, metric) in self._unsupported:
            return MISSING
        nv = self._nvml
        fn = getattr(nv, fn_name, None)
        if fn is None:
            self._mark_unsupported(key, metric, f"{fn_name} is not in this pynvml")
            return MISSING
        try:
            return fn(*args, **kwargs)
        except self._unsupported_errors as exc:
            if remember:
                self._mark_unsupported(key, metric, f"{fn_name}: {type(exc).__name__}")
            return MISSING
        except nv.NVMLError_NotFound:
            return not_found
        except nv.NVMLError_GpuIsLost as exc:
            raise _GpuFailure("gpu_lost", f"{fn_name}: {exc}") from exc
        except nv.NVMLError_Unknown as exc:
            raise _GpuFailure("unknown_error", f"{fn_name}: {exc}") from exc
        except nv.NVMLError as exc:
            if exc.value == nv.NVML_SUCCESS:
                # pynvml's two-call list wrappers raise NVMLError(SUCCESS) on an empty list.
                return not_found
            self._warn_once(key, metric, fn_name, exc)
            return MISSING

    def _first(
        self,
        key: str,
        alternatives: Sequence[tuple[str, str, tuple, dict]],
        not_found: Any = MISSING,
    ) -> Any:
        """The first of (metric, function, args, kwargs) that answers; newest form first."""
        for metric, fn_name, args, kwargs in alternatives:
            value = self._call(key, metric, fn_name, *args, not_found=not_found, **kwargs)
            if value is not MISSING:
                return value
        return MISSING

    def _mark_unsupported(self, key: str, metric: str, why: str) -> None:
        self._unsupported.add((key, metric))
        log.info("%s: %s not available (%s); not asking again", key, metric, why)

    def _warn_once(self, key: str, metric: str, fn_name: str, exc: Exception) -> None:
        code = getattr(exc, "value", None)
        if (key, metric, code) not in self._warned:
            self._warned.add((key, metric, code))
            log.warning("%s: %s failed (%s: %s)", key, fn_name, type(exc).__name__, exc)

    # ----------------------------------------------------------------- one tick

    def sample(self, now: datetime | None = None) -> Batch:
        """One tick: a row per GPU (or MIG instance), per process on it, and health records."""
        if self._closed:
            raise RuntimeError("NvmlCollector.sample() after close()")
        ts = _as_utc(now)
        health: list[dict[str, Any]] = []
        targets = self._prime_gpm(self._targets(health), health)
        gpu_rows: list[dict[str, Any]] = []
        proc_rows: list[dict[str, Any]] = []
        for target in targets:
            try:
                row = self._gpu_row(target)
                procs = self._process_rows(target)
            except _GpuFailure as failure:
                self._record_failure(target.uuid, failure, health)
                continue
            self._failing.discard(target.uuid)
            row["workload"] = dominant_workload(procs)
            gpu_rows.append(row)
            proc_rows.extend(procs)
        self._drop_stale_gpm({t.uuid for t in targets})
        self._processes.keep_only(self._tick_processes)
        self._tick_processes.clear()
        common = {"ts": ts, "host": self.host, "source": SOURCE}
        return _batch(
            _frame(gpu_rows, common, GPU_SAMPLE_SCHEMA),
            _frame(proc_rows, common, PROCESS_SAMPLE_SCHEMA),
            _frame(health, common, HEALTH_SCHEMA),
        )

    def _record_failure(
        self, uuid: str | None, failure: _GpuFailure, health: list[dict[str, Any]], where: str = ""
    ) -> None:
        """A health row for a GPU that stopped answering; forget its GPM sample."""
        message = f"{where}{failure.message}"
        health.append({"gpu_uuid": uuid, "kind": failure.kind, "message": message})
        if uuid is not None:
            self._forget_gpm(uuid)
            if uuid not in self._failing:
                log.warning("%s: %s (%s)", uuid, failure.kind, message)
            self._failing.add(uuid)

    # ----------------------------------------------------------------- enumeration

    def _targets(self, health: list[dict[str, Any]]) -> list[_Target]:
        """Every GPU, or its MIG instances when MIG is on; a failing GPU becomes a health row."""
        try:
            count = self._call("host", "device_count", "nvmlDeviceGetCount", remember=False)
        except _GpuFailure as failure:
            self._record_failure(None, failure, health)
            return []
        targets: list[_Target] = []
        for index in range(0 if count is MISSING else count):
            try:
                targets.extend(self._targets_of(index, health))
            except _GpuFailure as failure:
                uuid = self._uuid_by_index.get(index)
                self._record_failure(uuid, failure, health, where=f"GPU index {index}: ")
        return targets

    def _targets_of(self, index: int, health: list[dict[str, Any]]) -> list[_Target]:
        key = f"index:{index}"
        handle = self._call(key, "handle", "nvmlDeviceGetHandleByIndex", index, remember=False)
        if handle is MISSING:
            return []
        uuid = self._call(key, "uuid", "nvmlDeviceGetUUID", handle, remember=False)
        if uuid is MISSING:
            return []
        self._uuid_by_index[index] = uuid
        model = self._call(uuid, "name", "nvmlDeviceGetName", handle)
        gpu = _Target(uuid, index, None if model is MISSING else model, handle)
        mode = self._call(uuid, "mig_mode", "nvmlDeviceGetMigMode", handle)
        if mode is MISSING or mode[0] != self._nvml.NVML_DEVICE_MIG_ENABLE:
            return [gpu]
        instances = self._mig_targets(gpu, health)
        if instances == [gpu]:
            return instances
        board = _Target(gpu.uuid, index, gpu.model, handle, mig_board=True)
        return [board, *instances]

    def _mig_targets(self, gpu: _Target, health: list[dict[str, Any]]) -> list[_Target]:
        """The MIG instances of `gpu`, slot by slot; one bad slot hides no other."""
        slots = self._call(gpu.uuid, "mig_count", "nvmlDeviceGetMaxMigDeviceCount", gpu.handle)
        if slots is MISSING:
            return [gpu]  # MIG on, instances not listable: the whole GPU is still worth a row
        out: list[_Target] = []
        for slot in range(slots):
            try:
                instance = self._mig_target(gpu, slot)
            except _GpuFailure as failure:
                where = f"MIG slot {slot}: "
                health.append(
                    {"gpu_uuid": gpu.uuid, "kind": failure.kind, "message": where + failure.message}
                )
                continue
            if instance is not None:
                out.append(instance)
        return out

    def _mig_target(self, gpu: _Target, slot: int) -> _Target | None:
        key = f"{gpu.uuid}/slot{slot}"
        handle = self._call(
            key,
            "mig_handle",
            "nvmlDeviceGetMigDeviceHandleByIndex",
            gpu.handle,
            slot,
            not_found=None,
            remember=False,
        )
        if handle is MISSING or handle is None:
            return None
        uuid = self._call(key, "uuid", "nvmlDeviceGetUUID", handle, remember=False)
        if uuid is MISSING:
            return None
        name = self._call(uuid, "name", "nvmlDeviceGetName", handle)
        gi_id = self._call(uuid, "gpu_instance_id", "nvmlDeviceGetGpuInstanceId", handle)
        return _Target(
            uuid=uuid,
            index=gpu.index,
            model=gpu.model,
            handle=handle,
            parent_uuid=gpu.uuid,
            parent_handle=gpu.handle,
            gpu_instance_id=None if gi_id is MISSING else gi_id,
            mig_profile=mig_profile(None if name is MISSING else name),
        )

    # ----------------------------------------------------------------- GPU readings

    def _gpu_row(self, t: _Target) -> dict[str, Any]:
        if t.mig_board:
            return self._board_row(t)
        used_mib, total_mib = self._memory_mib(t)
        util = self._call(t.uuid, "utilization", "nvmlDeviceGetUtilizationRates", t.handle)
        row: dict[str, Any] = {
            "gpu_uuid": t.uuid,
            "gpu_index": t.index,
            "gpu_model": t.model,
            "util_pct": None if util is MISSING else float(util.gpu),
            "mem_used_mib": used_mib,
            "mem_total_mib": total_mib,
            "parent_gpu_uuid": t.parent_uuid,
            "mig_profile": t.mig_profile,
        }
        if not t.is_mig:
            # Board readings are per physical GPU; on MIG rows they would be counted per slice.
            row.update(self._board_readings(t))
        row.update(self._gpm_values(t))
        row["activity_kind"] = "gpm" if row.get("sm_active_pct") is not None else "nvml_util"
        return row

    def _board_row(self, t: _Target) -> dict[str, Any]:
        """The row of a board in MIG mode: its readings, no utilization (NVML reports none under
        MIG) and no activity; the rollups split its time and energy over its instances."""
        used_mib, total_mib = self._memory_mib(t)
        row: dict[str, Any] = {
            "gpu_uuid": t.uuid,
            "gpu_index": t.index,
            "gpu_model": t.model,
            "util_pct": None,
            "mem_used_mib": used_mib,
            "mem_total_mib": total_mib,
            # As nvidia-smi's board row: the signal a board has, read as unknown (null).
            "activity_kind": "nvml_util",
        }
        row.update(self._board_readings(t))
        return row

    def _memory_mib(self, t: _Target) -> tuple[float | None, float | None]:
        """Used and total MiB; v2 first, whose `used` leaves out driver-reserved memory."""
        nv = self._nvml
        alternatives: list[tuple[str, str, tuple, dict]] = []
        version = getattr(nv, "nvmlMemory_v2", None)
        if version is not None:
            kwargs = {"version": version}
            alternatives.append(("memory_v2", "nvmlDeviceGetMemoryInfo", (t.handle,), kwargs))
        alternatives.append(("memory", "nvmlDeviceGetMemoryInfo", (t.handle,), {}))
        mem = self._first(t.uuid, alternatives)
        if mem is MISSING:
            return None, None
        return mem.used / BYTES_PER_MIB, mem.total / BYTES_PER_MIB

    def _board_readings(self, t: _Target) -> dict[str, float | None]:
        nv, u, h = self._nvml, t.uuid, t.handle
        power = self._call(u, "power", "nvmlDeviceGetPowerUsage", h)
        energy = self._call(u, "energy", "nvmlDeviceGetTotalEnergyConsumption", h)
        clock = self._call(u, "sm_clock", "nvmlDeviceGetClockInfo", h, nv.NVML_CLOCK_SM)
        limit = self._call(u, "power_limit", "nvmlDeviceGetEnforcedPowerLimit", h)
        ecc = self._call(
            u,
            "ecc",
            "nvmlDeviceGetTotalEccErrors",
            h,
            nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            nv.NVML_VOLATILE_ECC,
        )
        sensor = nv.NVML_TEMPERATURE_GPU
        temperature = self._first(
            u,
            [
                ("temperature_v", "nvmlDeviceGetTemperatureV", (h, sensor), {}),
                ("temperature", "nvmlDeviceGetTemperature", (h, sensor), {}),
            ],
        )
        return {
            "power_w": None if power is MISSING else power / 1000.0,
            "energy_mj": _float(energy),
            "sm_clock_mhz": _float(clock),
            "temperature_c": _float(temperature),
            "power_limit_w": None if limit is MISSING else limit / 1000.0,
            "ecc_errors": _float(ecc),
        }

    # ----------------------------------------------------------------- GPM

    def _gpm_supported(self, t: _Target) -> bool:
        """Whether the physical GPU has GPM (Hopper and newer), asked once per GPU."""
        if t.mig_board:
            return False  # activity under MIG is per instance
        uuid, handle = t.physical
        if uuid not in self._gpm_support:
            support = self._call(uuid, "gpm", "nvmlGpmQueryDeviceSupport", handle)
            if support is MISSING:
                return False  # unsupported ones are remembered by the funnel
            self._gpm_support[uuid] = bool(support.isSupportedDevice)
            if not support.isSupportedDevice:
                log.info("%s: no GPM on this GPU; activity is utilization.gpu", uuid)
        return self._gpm_support[uuid] and not (t.is_mig and t.gpu_instance_id is None)

    def _prime_gpm(self, targets: list[_Target], health: list[dict[str, Any]]) -> list[_Target]:
        """Take a first GPM sample for each GPU lacking one, all before any waiting.

        Returns the targets still answering.
        """
        alive: list[_Target] = []
        for t in targets:
            try:
                if t.uuid not in self._gpm_prev and self._gpm_supported(t):
                    first = self._take_gpm_sample(t)
                    if first is not MISSING:
                        self._gpm_prev[t.uuid] = first
            except _GpuFailure as failure:
                self._record_failure(t.uuid, failure, health)
                continue
            alive.append(t)
        return alive

    def _take_gpm_sample(self, t: _Target) -> _GpmSample | Any:
        sample = self._call(t.uuid, "gpm", "nvmlGpmSampleAlloc")
        if sample is MISSING:
            return MISSING
        try:
            if t.is_mig:
                got = self._call(
                    t.uuid,
                    "gpm",
                    "nvmlGpmMigSampleGet",
                    t.parent_handle,
                    t.gpu_instance_id,
                    sample,
                )
            else:
                got = self._call(t.uuid, "gpm", "nvmlGpmSampleGet", t.handle, sample)
        except _GpuFailure:
            self._free_gpm(sample)
            raise
        if got is MISSING:
            self._free_gpm(sample)
            return MISSING
        return _GpmSample(sample, self._clock())

    def _gpm_values(self, t: _Target) -> dict[str, float]:
        """GPM metrics between the kept sample and a new one, waiting out the 100 ms minimum."""
        prev = self._gpm_prev.get(t.uuid)
        if prev is None:
            return {}
        wait = prev.taken_at + GPM_MIN_INTERVAL_S - self._clock()
        if wait > 0:
            self._sleep(wait)
        current = self._take_gpm_sample(t)
        if current is MISSING:
            return {}  # keep the old sample: the next tick measures over a longer span
        self._gpm_prev[t.uuid] = current
        try:
            return self._gpm_metrics(t.uuid, prev.handle, current.handle)
        finally:
            self._free_gpm(prev.handle)

    def _gpm_metrics(self, key: str, first: Any, second: Any) -> dict[str, float]:
        nv = self._nvml
        columns = [(getattr(nv, name), column) for name, column in _GPM_COLUMNS]
        request = nv.c_nvmlGpmMetricsGet_t()
        request.version = nv.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = len(columns)
        request.sample1 = first
        request.sample2 = second
        for i, (metric_id, _) in enumerate(columns):
            request.metrics[i].metricId = metric_id
        if self._call(key, "gpm_metrics", "nvmlGpmMetricsGet", request) is MISSING:
            return {}
        out: dict[str, float] = {}
        for i, (_, column) in enumerate(columns):
            metric = request.metrics[i]
            if metric.nvmlReturn == nv.NVML_SUCCESS:
                out[column] = float(metric.value)
        return out

    def _free_gpm(self, sample: Any) -> None:
        try:
            self._nvml.nvmlGpmSampleFree(sample)
        except self._nvml.NVMLError as exc:
            log.debug("nvmlGpmSampleFree: %s", exc)

    def _forget_gpm(self, uuid: str) -> None:
        kept = self._gpm_prev.pop(uuid, None)
        if kept is not None:
            self._free_gpm(kept.handle)

    def _drop_stale_gpm(self, current: set[str]) -> None:
        """Free kept samples of GPUs or MIG instances that are gone (MIG reconfigured)."""
        for uuid in set(self._gpm_prev) - current:
            self._forget_gpm(uuid)

    # ----------------------------------------------------------------- processes

    def _process_rows(self, t: _Target) -> list[dict[str, Any]]:
        """A row per process on `t`, with its memory, SM share, /proc facts and workload.

        /proc is read once per process (its start time tells a reused pid), not every tick.
        A board in MIG mode has none of its own: its instances list them.
        """
        if t.mig_board:
            return []
        memory = self._process_memory(t)
        if not memory:
            return []
        shares = self._process_sm_shares(t)
        rows = []
        for pid in sorted(memory):
            found = self._tick_processes.get(pid)
            if found is None:
                found = self._tick_processes[pid] = self._processes.get(pid)
            info, workload = found
            used = memory[pid]
            rows.append(
                {
                    "gpu_uuid": t.uuid,
                    "pid": pid,
                    "user": info.user,
                    "command": info.command,
                    "container": info.container,
                    "pod": info.pod,
                    "namespace": info.namespace,
                    "used_mib": None if used is None else used / BYTES_PER_MIB,
                    "sm_pct": None if shares is None else shares.get(pid, 0.0),
                    "workload": workload,
                }
            )
        return rows

    def _process_memory(self, t: _Target) -> dict[int, int | None]:
        """Bytes per pid from the compute and graphics lists, merged by pid.

        A process with both a compute and a graphics context ("C+G") appears in both lists with
        the same figure, so the larger one is kept rather than the sum.
        """
        merged: dict[int, int | None] = {}
        for kind in ("Compute", "Graphics"):
            fn = f"nvmlDeviceGet{kind}RunningProcesses"
            procs = self._first(
                t.uuid,
                [
                    (f"{kind.lower()}_processes", fn, (t.handle,), {}),
                    (f"{kind.lower()}_processes_v2", f"{fn}_v2", (t.handle,), {}),
                ],
                not_found=[],
            )
            for proc in [] if procs is MISSING else procs:
                used = proc.usedGpuMemory
                known = merged.get(proc.pid)
                merged[proc.pid] = used if known is None else max(known, used or 0)
        return merged

    def _process_sm_shares(self, t: _Target) -> dict[int, float] | None:
        """Mean SM % per pid since the last tick; None when NVML cannot tell.

        When NVML can tell, a pid without samples ran no kernel (0 %): NVML only records
        processes that were active, and answers NotFound when none was.
        """
        since = self._util_seen.get(t.uuid, 0)
        samples = self._first(
            t.uuid,
            [
                (
                    "process_util_info",
                    "nvmlDeviceGetProcessesUtilizationInfo",
                    (t.handle, since),
                    {},
                ),
                ("process_util", "nvmlDeviceGetProcessUtilization", (t.handle, since), {}),
            ],
            not_found=[],
        )
        if samples is MISSING:
            return None
        by_pid: dict[int, list[int]] = {}
        for s in samples:
            by_pid.setdefault(int(s.pid), []).append(int(s.smUtil))
        if samples:
            self._util_seen[t.uuid] = max(since, *(int(s.timeStamp) for s in samples))
        return {pid: sum(v) / len(v) for pid, v in by_pid.items()}

    # ----------------------------------------------------------------- closing

    def close(self) -> None:
        """Free kept GPM samples and shut NVML down; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for uuid in list(self._gpm_prev):
            self._forget_gpm(uuid)
        _shutdown(self._nvml)

    def __enter__(self) -> NvmlCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- helpers


def mig_profile(name: str | None) -> str | None:
    """The profile ("1g.10gb") in a MIG device name like "NVIDIA H100 80GB HBM3 MIG 1g.10gb"."""
    if not name:
        return None
    found = _MIG_PROFILE.search(name)
    return found.group(1) if found else None


def _as_utc(now: datetime | None) -> datetime:
    """`now` as an aware UTC time; a naive one is taken to be UTC already."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def _float(value: Any) -> float | None:
    return None if value is MISSING or value is None else float(value)


def _frame(
    rows: list[dict[str, Any]], common: Mapping[str, Any], schema: Mapping[str, pl.DataType]
) -> pl.DataFrame | None:
    """Rows (with the tick's ts, host and source added) as a frame of exactly `schema`."""
    if not rows:
        return None
    full = [{**dict.fromkeys(schema), **common, **row} for row in rows]
    return pl.DataFrame(full, schema=dict(schema))


def _batch(*frames: pl.DataFrame | None) -> Batch:
    """A Batch of frames already in their exact schemas (`_frame` builds them so).

    Batch() would conform each frame again, a select with a cast per column: a tenth of a tick's
    CPU time on 8 GPUs x 20 processes, for nothing.
    """
    batch = Batch.__new__(Batch)
    for kind, frame in zip(("gpu_samples", "process_samples", "health"), frames, strict=True):
        setattr(batch, kind, empty(kind) if frame is None else frame)
    return batch


# The source's entry points (collectors/gpu/sources.py) ----------------------------------------
def open_sampler(settings: SourceSettings) -> Sampler:
    """`collect --source nvml` and the daemon: every GPU of this host; the host id is --host,
    else [collect] host_id, else detected (`detect_host_id`)."""
    host = settings.host or detect_host_id(settings.host_id or None)
    try:
        collector = NvmlCollector(host, rules=list(settings.rules))
    except NvmlUnavailable as exc:
        raise SourceUnavailable(str(exc)) from None
    return Sampler(collector.sample, collector.close)


def probe() -> tuple[bool, str]:
    """Whether NVML works here, and what it said (`nvml_available`)."""
    return nvml_available()
