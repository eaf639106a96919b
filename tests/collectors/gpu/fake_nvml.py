"""A fake pynvml: the same function names, structs and error classes, with no GPU behind it.

`FakeNvml` is a module object (pass it as `nvml=`) that answers like pynvml does on the machines
the scenarios below describe. Faithful where the collector's behaviour depends on it:

- The error classes ARE the real pynvml ones (`fake.NVMLError_GpuIsLost is
  pynvml.NVMLError_GpuIsLost`), so the collector's except clauses are exercised for real.
- Results are the real ctypes structs (`c_nvmlMemory_v2_t`, `c_nvmlUtilization_t`,
  `c_nvmlProcessUtilizationInfo_v1_t`, ...), process lists the same friendly objects pynvml
  builds, GPM samples real `c_nvmlGpmSample_t` pointers filled into the real
  `c_nvmlGpmMetricsGet_t`.
- A driver without a symbol raises FunctionNotFound from the Python wrapper, and
  NVMLLibraryMismatchError from the unversioned process-list wrappers, as pynvml does.
- Calls before nvmlInit raise Uninitialized; empty MIG slots and "no utilization samples"
  raise NotFound; MIG device handles answer NotSupported for whole-board readings.

Every call is counted in `fake.calls[(function, uuid)]`.
"""

from __future__ import annotations

import ctypes
import types
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pynvml as _real
from pynvml import (
    NVMLError,
    NVMLError_DriverNotLoaded,
    NVMLError_FunctionNotFound,
    NVMLError_GpuIsLost,
    NVMLError_InvalidArgument,
    NVMLError_LibraryNotFound,
    NVMLError_NoPermission,
    NVMLError_NotFound,
    NVMLError_NotSupported,
    NVMLError_Uninitialized,
    NVMLError_Unknown,
    NVMLLibraryMismatchError,
)

__all__ = [
    "NVMLError",
    "NVMLError_DriverNotLoaded",
    "NVMLError_FunctionNotFound",
    "NVMLError_GpuIsLost",
    "NVMLError_LibraryNotFound",
    "NVMLError_NoPermission",
    "NVMLError_NotFound",
    "NVMLError_NotSupported",
    "NVMLError_Unknown",
    "FakeClock",
    "FakeGpu",
    "FakeMig",
    "FakeNvml",
    "FakeProcess",
    "GIB",
    "H100_GPM",
    "write_proc_entry",
]

GIB = 1024**3
MIB = 1024**2

SM_UTIL = _real.NVML_GPM_METRIC_SM_UTIL
SM_OCCUPANCY = _real.NVML_GPM_METRIC_SM_OCCUPANCY
ANY_TENSOR_UTIL = _real.NVML_GPM_METRIC_ANY_TENSOR_UTIL
DRAM_BW_UTIL = _real.NVML_GPM_METRIC_DRAM_BW_UTIL
H100_GPM = {SM_UTIL: 42.5, SM_OCCUPANCY: 31.25, ANY_TENSOR_UTIL: 12.5, DRAM_BW_UTIL: 55.0}

# C symbols of the GPM API, absent from drivers before R520.
GPM_SYMBOLS = (
    "nvmlGpmQueryDeviceSupport",
    "nvmlGpmSampleAlloc",
    "nvmlGpmSampleFree",
    "nvmlGpmSampleGet",
    "nvmlGpmMigSampleGet",
    "nvmlGpmMetricsGet",
)


class FakeClock:
    """A monotonic clock the test moves; `sleep` advances it and records the wait."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeProcess:
    pid: int
    used_bytes: int | None  # None: NVML reports "not available" (e.g. some MIG setups)
    lists: tuple[str, ...] = ("compute",)  # "compute", "graphics" or both


@dataclass
class FakeMig:
    uuid: str
    profile: str  # "1g.10gb"
    gpu_instance_id: int
    mem_total: int
    mem_used: int
    processes: list[FakeProcess] = field(default_factory=list)
    gpm: dict[int, float] = field(default_factory=dict)


@dataclass
class FakeGpu:
    uuid: str
    name: str
    mem_total: int
    mem_used: int
    mem_reserved: int = 0
    util_gpu: int = 0
    util_mem: int = 0
    power_mw: int = 0
    energy_mj: int = 0
    sm_clock_mhz: int = 0
    temperature_c: int = 0
    power_limit_mw: int | None = None  # None: NVML answers NotSupported
    ecc_uncorrected: int | None = None  # volatile uncorrected ECC errors; None: no ECC
    gpm_supported: bool = False
    gpm: dict[int, float] = field(default_factory=dict)
    processes: list[FakeProcess] = field(default_factory=list)
    # (pid, timeStamp in µs, smUtil): what NVML keeps in its process-utilization buffer.
    util_samples: list[tuple[int, int, int]] = field(default_factory=list)
    # pid -> smUtil of processes that keep running kernels: each query finds one new sample per
    # pid, stamped with the fake clock (µs), as NVML's buffer fills on a busy GPU.
    live_sm_util: dict[int, int] = field(default_factory=dict)
    process_util_supported: bool = True
    # function name -> error class raised by every call of it on this GPU; "*" for all calls
    # after the handle and uuid (a GPU that fell off the bus).
    errors: dict[str, type[NVMLError]] = field(default_factory=dict)
    mig_capable: bool = False
    mig_enabled: bool = False
    # MIG slots: an instance, None (empty slot: NotFound), or an error class the slot raises.
    mig_slots: list[FakeMig | None | type[NVMLError]] = field(default_factory=list)


@dataclass(frozen=True)
class _Handle:
    gpu: FakeGpu
    mig: FakeMig | None = None

    @property
    def uuid(self) -> str:
        return self.mig.uuid if self.mig else self.gpu.uuid


@dataclass
class _GpmState:
    pointer: Any  # kept alive so its address stays unique while the sample lives
    source: str | None = None  # the uuid sampled into it
    taken_at: float | None = None
    values: dict[int, float] = field(default_factory=dict)


class FakeNvml(types.ModuleType):
    """A pynvml module double for one host's GPUs."""

    def __init__(
        self,
        gpus: Iterable[FakeGpu],
        *,
        init_error: type[NVMLError] | None = None,
        missing_symbols: Iterable[str] = (),
        clock: FakeClock | None = None,
        driver_version: str = "550.54.15",
    ) -> None:
        super().__init__("pynvml")
        for name in dir(_real):
            if name.startswith(("NVML", "nvmlMemory_", "c_nvml", "struct_c_nvml")):
                setattr(self, name, getattr(_real, name))
        self.gpus = list(gpus)
        self.init_error = init_error
        self.missing_symbols = set(missing_symbols)
        self.clock = clock or FakeClock()
        self.driver_version = driver_version
        self.calls: Counter[tuple[str, str | None]] = Counter()
        self.initialized = False
        self.shutdowns = 0
        self.gpm_samples: dict[int, _GpmState] = {}  # live samples by address
        # What the collector asked, for assertions; `record = False` (the benchmark's long runs)
        # keeps these lists from growing.
        self.record = True
        self.gpm_pairs: list[tuple[str, float]] = []  # (uuid, seconds between the two samples)
        self.util_queries: list[tuple[str, str, int]] = []  # (function, uuid, lastSeenTimeStamp)
        # Things that happen to the host, keyed by the tick they happen before: the collector asks
        # nvmlDeviceGetCount once per tick, so the Nth call (from 1) starts tick N.
        self.events: dict[int, Callable[[FakeNvml], None]] = {}

    # ------------------------------------------------------------------ plumbing

    def _enter(self, fn: str, handle: _Handle | None = None, symbol: str | None = None) -> None:
        """Count the call and raise what the driver would before any work."""
        uuid = handle.uuid if handle is not None else None
        self.calls[(fn, uuid)] += 1
        if not self.initialized:
            raise NVMLError_Uninitialized()
        if (symbol or fn) in self.missing_symbols:
            raise NVMLError_FunctionNotFound()
        if handle is not None:
            errors = handle.gpu.errors
            error = errors.get(fn) or errors.get("*")
            if error is not None:
                raise error()

    def count(self, fn: str, uuid: str | None = None) -> int:
        """How many times `fn` was called for `uuid` (None: summed over all GPUs)."""
        if uuid is None:
            return sum(n for (name, _), n in self.calls.items() if name == fn)
        return self.calls[(fn, uuid)]

    @property
    def live_gpm_samples(self) -> int:
        return len(self.gpm_samples)

    # ------------------------------------------------------------------ init

    def nvmlInit(self) -> None:
        self.calls[("nvmlInit", None)] += 1
        if self.init_error is not None:
            raise self.init_error()
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.shutdowns += 1
        self.initialized = False

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self.driver_version

    # ------------------------------------------------------------------ devices

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount", symbol="nvmlDeviceGetCount_v2")
        event = self.events.get(self.count("nvmlDeviceGetCount"))
        if event is not None:
            event(self)
        return len(self.gpus)

    def lose_gpu(self, index: int, error: type[NVMLError] = NVMLError_GpuIsLost) -> None:
        """GPU `index` falls off the bus: its handle still opens (NVML keeps it), every reading
        raises `error`, as on a real Xid 79."""
        self.gpus[index].errors = {"*": error}

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex", symbol="nvmlDeviceGetHandleByIndex_v2")
        if not 0 <= index < len(self.gpus):
            raise NVMLError_InvalidArgument()
        gpu = self.gpus[index]
        error = gpu.errors.get("nvmlDeviceGetHandleByIndex")
        if error is not None:
            raise error()
        return _Handle(gpu)

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        self.calls[("nvmlDeviceGetUUID", handle.uuid)] += 1
        return handle.uuid  # NVML answers this from its cache, even for a lost GPU

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        self._enter("nvmlDeviceGetName", handle)
        if handle.mig is not None:
            return f"{handle.gpu.name} MIG {handle.mig.profile}"
        return handle.gpu.name

    def nvmlDeviceGetIndex(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetIndex", handle)
        return self.gpus.index(handle.gpu)

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle, version: int | None = None) -> Any:
        symbol = "nvmlDeviceGetMemoryInfo_v2" if version else "nvmlDeviceGetMemoryInfo"
        self._enter("nvmlDeviceGetMemoryInfo", handle, symbol=symbol)
        if handle.mig is not None:
            total, used, reserved = handle.mig.mem_total, handle.mig.mem_used, 0
        else:
            gpu = handle.gpu
            total, used, reserved = gpu.mem_total, gpu.mem_used, gpu.mem_reserved
        if version:
            return _real.c_nvmlMemory_v2_t(
                version=version,
                total=total,
                reserved=reserved,
                free=total - used - reserved,
                used=used,
            )
        # v1 counts driver-reserved memory as used.
        return _real.c_nvmlMemory_t(total=total, free=total - used - reserved, used=used + reserved)

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> Any:
        self._enter("nvmlDeviceGetUtilizationRates", handle)
        self._board_only(handle)
        return _real.c_nvmlUtilization_t(gpu=handle.gpu.util_gpu, memory=handle.gpu.util_mem)

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetPowerUsage", handle)
        self._board_only(handle)
        return handle.gpu.power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetTotalEnergyConsumption", handle)
        self._board_only(handle)
        return handle.gpu.energy_mj

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetEnforcedPowerLimit", handle)
        self._board_only(handle)
        if handle.gpu.power_limit_mw is None:
            raise NVMLError_NotSupported()
        return handle.gpu.power_limit_mw

    def nvmlDeviceGetTotalEccErrors(self, handle: _Handle, errorType: int, counterType: int) -> int:
        self._enter("nvmlDeviceGetTotalEccErrors", handle)
        self._board_only(handle)
        uncorrected = errorType == _real.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        if handle.gpu.ecc_uncorrected is None or not uncorrected:
            raise NVMLError_NotSupported()
        if counterType != _real.NVML_VOLATILE_ECC:
            raise NVMLError_NotSupported()
        return handle.gpu.ecc_uncorrected

    def nvmlDeviceGetClockInfo(self, handle: _Handle, type: int) -> int:
        self._enter("nvmlDeviceGetClockInfo", handle)
        self._board_only(handle)
        if type != _real.NVML_CLOCK_SM:
            raise NVMLError_NotSupported()
        return handle.gpu.sm_clock_mhz

    def nvmlDeviceGetTemperatureV(
        self, handle: _Handle, sensor: int, version: int = _real.nvmlTemperature_v1
    ) -> int:
        self._enter("nvmlDeviceGetTemperatureV", handle)
        return self._temperature(handle, sensor)

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        self._enter("nvmlDeviceGetTemperature", handle)
        return self._temperature(handle, sensor)

    def _temperature(self, handle: _Handle, sensor: int) -> int:
        self._board_only(handle)
        if sensor != _real.NVML_TEMPERATURE_GPU:
            raise NVMLError_NotSupported()
        return handle.gpu.temperature_c

    @staticmethod
    def _board_only(handle: _Handle) -> None:
        """Whole-board readings are not answered for a MIG device handle."""
        if handle.mig is not None:
            raise NVMLError_NotSupported()

    # ------------------------------------------------------------------ processes

    def _processes(self, handle: _Handle, which: str) -> list[Any]:
        procs = handle.mig.processes if handle.mig is not None else handle.gpu.processes
        out = []
        for p in procs:
            if which not in p.lists:
                continue
            raw = _real.c_nvmlProcessInfo_v2_t(pid=p.pid, usedGpuMemory=p.used_bytes or 0)
            obj = _real.nvmlStructToFriendlyObject(raw)
            if p.used_bytes is None:
                obj.usedGpuMemory = None
            out.append(obj)
        return out

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: _Handle) -> list[Any]:
        self._enter("nvmlDeviceGetComputeRunningProcesses_v3", handle)
        return self._processes(handle, "compute")

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: _Handle) -> list[Any]:
        self._enter("nvmlDeviceGetComputeRunningProcesses_v2", handle)
        return self._processes(handle, "compute")

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[Any]:
        self.calls[("nvmlDeviceGetComputeRunningProcesses", handle.uuid)] += 1
        try:
            return self.nvmlDeviceGetComputeRunningProcesses_v3(handle)
        except NVMLError_FunctionNotFound:
            raise NVMLLibraryMismatchError("Unversioned function called ...") from None

    def nvmlDeviceGetGraphicsRunningProcesses_v3(self, handle: _Handle) -> list[Any]:
        self._enter("nvmlDeviceGetGraphicsRunningProcesses_v3", handle)
        return self._processes(handle, "graphics")

    def nvmlDeviceGetGraphicsRunningProcesses_v2(self, handle: _Handle) -> list[Any]:
        self._enter("nvmlDeviceGetGraphicsRunningProcesses_v2", handle)
        return self._processes(handle, "graphics")

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: _Handle) -> list[Any]:
        self.calls[("nvmlDeviceGetGraphicsRunningProcesses", handle.uuid)] += 1
        try:
            return self.nvmlDeviceGetGraphicsRunningProcesses_v3(handle)
        except NVMLError_FunctionNotFound:
            raise NVMLLibraryMismatchError("Unversioned function called ...") from None

    def _util_samples(self, fn: str, handle: _Handle, timestamp: int) -> list[tuple]:
        self._enter(fn, handle)
        if self.record:
            self.util_queries.append((fn, handle.uuid, timestamp))
        if handle.mig is not None or not handle.gpu.process_util_supported:
            raise NVMLError_NotSupported()
        fresh = [s for s in handle.gpu.util_samples if s[1] > timestamp]
        now_us = int(self.clock.monotonic() * 1_000_000)
        if now_us > timestamp:
            fresh += [(pid, now_us, sm) for pid, sm in handle.gpu.live_sm_util.items()]
        if not fresh:
            raise NVMLError_NotFound()
        return fresh

    def nvmlDeviceGetProcessUtilization(self, handle: _Handle, timeStamp: int) -> list[Any]:
        rows = self._util_samples("nvmlDeviceGetProcessUtilization", handle, timeStamp)
        return [
            _real.c_nvmlProcessUtilizationSample_t(pid=pid, timeStamp=ts, smUtil=sm, memUtil=0)
            for pid, ts, sm in rows
        ]

    def nvmlDeviceGetProcessesUtilizationInfo(self, handle: _Handle, timeStamp: int) -> list[Any]:
        rows = self._util_samples("nvmlDeviceGetProcessesUtilizationInfo", handle, timeStamp)
        return [
            _real.c_nvmlProcessUtilizationInfo_v1_t(timeStamp=ts, pid=pid, smUtil=sm, memUtil=0)
            for pid, ts, sm in rows
        ]

    # ------------------------------------------------------------------ MIG

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        self._enter("nvmlDeviceGetMigMode", handle)
        if not handle.gpu.mig_capable or handle.mig is not None:
            raise NVMLError_NotSupported()
        mode = _real.NVML_DEVICE_MIG_ENABLE if handle.gpu.mig_enabled else 0
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetMaxMigDeviceCount", handle)
        if not handle.gpu.mig_capable:
            raise NVMLError_NotSupported()
        return len(handle.gpu.mig_slots)

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device: _Handle, index: int) -> _Handle:
        self._enter("nvmlDeviceGetMigDeviceHandleByIndex", device)
        slots = device.gpu.mig_slots
        if not device.gpu.mig_enabled or not 0 <= index < len(slots):
            raise NVMLError_InvalidArgument()
        slot = slots[index]
        if slot is None:
            raise NVMLError_NotFound()
        if isinstance(slot, type):
            raise slot()
        return _Handle(device.gpu, slot)

    def nvmlDeviceGetGpuInstanceId(self, device: _Handle) -> int:
        self._enter("nvmlDeviceGetGpuInstanceId", device)
        if device.mig is None:
            raise NVMLError_InvalidArgument()
        return device.mig.gpu_instance_id

    def nvmlDeviceIsMigDeviceHandle(self, device: _Handle) -> int:
        self._enter("nvmlDeviceIsMigDeviceHandle", device)
        return int(device.mig is not None)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, migDevice: _Handle) -> _Handle:
        self._enter("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", migDevice)
        return _Handle(migDevice.gpu)

    # ------------------------------------------------------------------ GPM

    def nvmlGpmQueryDeviceSupport(self, device: _Handle) -> Any:
        self._enter("nvmlGpmQueryDeviceSupport", device)
        return _real.c_nvmlGpmSupport_t(
            version=_real.NVML_GPM_SUPPORT_VERSION, isSupportedDevice=int(device.gpu.gpm_supported)
        )

    def nvmlGpmSampleAlloc(self) -> Any:
        self._enter("nvmlGpmSampleAlloc")
        pointer = ctypes.pointer(_real.struct_c_nvmlGpmSample_t())
        self.gpm_samples[_address(pointer)] = _GpmState(pointer)
        return pointer

    def nvmlGpmSampleFree(self, gpmSample: Any) -> None:
        self._enter("nvmlGpmSampleFree")
        self._gpm_state(gpmSample)  # freeing twice, or a foreign pointer: InvalidArgument
        del self.gpm_samples[_address(gpmSample)]

    def nvmlGpmSampleGet(self, device: _Handle, gpmSample: Any) -> Any:
        self._enter("nvmlGpmSampleGet", device)
        if not device.gpu.gpm_supported or device.mig is not None:
            raise NVMLError_NotSupported()
        self._fill(gpmSample, device.gpu.uuid, device.gpu.gpm)
        return gpmSample

    def nvmlGpmMigSampleGet(self, device: _Handle, gpuInstanceId: int, gpmSample: Any) -> Any:
        self._enter("nvmlGpmMigSampleGet", device)
        if not device.gpu.gpm_supported:
            raise NVMLError_NotSupported()
        migs = [m for m in device.gpu.mig_slots if isinstance(m, FakeMig)]
        mig = next((m for m in migs if m.gpu_instance_id == gpuInstanceId), None)
        if mig is None:
            raise NVMLError_InvalidArgument()
        self._fill(gpmSample, mig.uuid, mig.gpm)
        return gpmSample

    def nvmlGpmMetricsGet(self, metricsGet: Any) -> Any:
        """Metrics of the span between two samples of the same GPU; values as configured."""
        self._enter("nvmlGpmMetricsGet")
        if metricsGet.version != _real.NVML_GPM_METRICS_GET_VERSION:
            raise _real.NVMLError(_real.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        first = self._gpm_state(metricsGet.sample1)
        second = self._gpm_state(metricsGet.sample2)
        if first.source is None or first.source != second.source or first is second:
            raise NVMLError_InvalidArgument()
        if first.taken_at is None or second.taken_at is None or second.taken_at < first.taken_at:
            raise NVMLError_InvalidArgument()
        if self.record:
            self.gpm_pairs.append((second.source, second.taken_at - first.taken_at))
        for i in range(metricsGet.numMetrics):
            metric = metricsGet.metrics[i]
            if metric.metricId in second.values:
                metric.value = second.values[metric.metricId]
                metric.nvmlReturn = _real.NVML_SUCCESS
            else:
                metric.nvmlReturn = _real.NVML_ERROR_NOT_SUPPORTED
        return metricsGet

    def _gpm_state(self, sample: Any) -> _GpmState:
        state = self.gpm_samples.get(_address(sample))
        if state is None:  # freed (use after free) or never allocated
            raise NVMLError_InvalidArgument()
        return state

    def _fill(self, sample: Any, source: str, values: dict[int, float]) -> None:
        state = self._gpm_state(sample)
        state.source = source
        state.taken_at = self.clock.monotonic()
        state.values = dict(values)


def _address(sample: Any) -> int:
    return ctypes.cast(sample, ctypes.c_void_p).value or 0


# ---------------------------------------------------------------------- /proc entries


def write_proc_entry(
    root: Path,
    pid: int,
    *,
    uid: int = 0,
    cmdline: Iterable[str] = ("python", "train.py"),
    environ: dict[str, str] | None = None,
    cgroup: str = "0::/user.slice\n",
    comm: str = "python",
    start_time: int | None = None,
) -> Path:
    """A /proc/<pid> directory under `root` with the files procinfo reads. `start_time` is field
    22 of `stat` (default: derived from the pid)."""
    base = Path(root) / str(pid)
    base.mkdir(parents=True, exist_ok=True)
    (base / "status").write_text(f"Name:\t{comm}\nPid:\t{pid}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    start = 1_000_000 + pid if start_time is None else start_time
    # The real layout: pid (comm) state ppid pgrp ... with starttime the 22nd field.
    middle = " ".join(["1"] * 18)
    (base / "stat").write_text(f"{pid} ({comm}) S {middle} {start} 0 0\n")
    (base / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in cmdline))
    env = environ or {}
    (base / "environ").write_bytes(b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items()))
    (base / "cgroup").write_text(cgroup)
    (base / "comm").write_text(comm + "\n")
    return base


# ---------------------------------------------------------------------- scenarios


def _h100(uuid: str = "GPU-h100-0000", **overrides: Any) -> FakeGpu:
    spec: dict[str, Any] = dict(
        uuid=uuid,
        name="NVIDIA H100 80GB HBM3",
        mem_total=80 * GIB,
        mem_used=40 * GIB,
        mem_reserved=512 * MIB,
        util_gpu=97,
        power_mw=350_123,
        energy_mj=123_456_789,
        sm_clock_mhz=1980,
        temperature_c=61,
        power_limit_mw=700_000,
        ecc_uncorrected=0,
        gpm_supported=True,
        gpm=dict(H100_GPM),
    )
    spec.update(overrides)
    return FakeGpu(**spec)


def _a100(uuid: str, **overrides: Any) -> FakeGpu:
    spec: dict[str, Any] = dict(
        uuid=uuid,
        name="NVIDIA A100-SXM4-40GB",
        mem_total=40 * GIB,
        mem_used=10 * GIB,
        util_gpu=55,
        power_mw=210_000,
        energy_mj=9_000_000,
        sm_clock_mhz=1410,
        temperature_c=48,
        power_limit_mw=400_000,
        ecc_uncorrected=0,
        mig_capable=True,
    )
    spec.update(overrides)
    return FakeGpu(**spec)


def scenario_h100_gpm(clock: FakeClock | None = None) -> FakeNvml:
    """One H100 on a current driver: GPM metrics, v2 memory, one training process (pid 4242)."""
    gpu = _h100(
        processes=[FakeProcess(4242, 40 * GIB)],
        util_samples=[(4242, 1_000_000, 90), (4242, 1_166_000, 94)],
    )
    return FakeNvml([gpu], clock=clock)


def scenario_a100_no_gpm(clock: FakeClock | None = None) -> FakeNvml:
    """An A100 on a current driver: the GPM API exists but the GPU does not support it."""
    return FakeNvml([_a100("GPU-a100-0000", processes=[FakeProcess(4242, 10 * GIB)])], clock=clock)


def scenario_failing_one_gpu(error: type[NVMLError], clock: FakeClock | None = None) -> FakeNvml:
    """Two A100s; the second one answers every reading with `error` (gpustat's scenario)."""
    good = _a100("GPU-a100-good", processes=[FakeProcess(4242, 10 * GIB)])
    bad = _a100("GPU-a100-bad", errors={"*": error})
    return FakeNvml([good, bad], clock=clock)


def scenario_gpu_lost_at_handle(clock: FakeClock | None = None) -> FakeNvml:
    """Two A100s; the second one cannot even be opened (GpuIsLost from its handle)."""
    good = _a100("GPU-a100-good")
    bad = _a100("GPU-a100-bad", errors={"nvmlDeviceGetHandleByIndex": NVMLError_GpuIsLost})
    return FakeNvml([good, bad], clock=clock)


def scenario_mig_one_bad_slot(
    error: type[NVMLError] = NVMLError_Unknown, clock: FakeClock | None = None
) -> FakeNvml:
    """An H100 in MIG mode: slot 0 a 3g.40gb, slot 1 raises `error`, slot 2 empty, slot 3 a
    1g.10gb running pid 5151; the other three of the seven slots are empty."""
    big = FakeMig(
        uuid="MIG-aaaa-3g",
        profile="3g.40gb",
        gpu_instance_id=2,
        mem_total=40 * GIB,
        mem_used=12 * GIB,
        gpm={SM_UTIL: 70.0, SM_OCCUPANCY: 50.0, ANY_TENSOR_UTIL: 40.0, DRAM_BW_UTIL: 30.0},
    )
    small = FakeMig(
        uuid="MIG-bbbb-1g",
        profile="1g.10gb",
        gpu_instance_id=9,
        mem_total=10 * GIB,
        mem_used=3 * GIB,
        processes=[FakeProcess(5151, 3 * GIB)],
        gpm={SM_UTIL: 5.0, DRAM_BW_UTIL: 1.5},
    )
    gpu = _h100(
        uuid="GPU-h100-mig",
        mig_capable=True,
        mig_enabled=True,
        mig_slots=[big, error, None, small, None, None, None],
    )
    return FakeNvml([gpu], clock=clock)


def scenario_old_driver_no_gpm_no_process_util(clock: FakeClock | None = None) -> FakeNvml:
    """A V100 on an R470 driver: no GPM symbols, no v2 memory, no v3 process lists, no
    processes-utilization-info, and the legacy per-process utilization is not supported."""
    gpu = FakeGpu(
        uuid="GPU-v100-0000",
        name="Tesla V100-SXM2-16GB",
        mem_total=16 * GIB,
        mem_used=6 * GIB,
        mem_reserved=256 * MIB,
        util_gpu=100,
        power_mw=250_500,
        energy_mj=5_000_000,
        sm_clock_mhz=1530,
        temperature_c=70,
        processes=[FakeProcess(4242, 6 * GIB)],
        process_util_supported=False,
    )
    missing = {
        "nvmlDeviceGetMemoryInfo_v2",
        "nvmlDeviceGetComputeRunningProcesses_v3",
        "nvmlDeviceGetGraphicsRunningProcesses_v3",
        "nvmlDeviceGetProcessesUtilizationInfo",
        "nvmlDeviceGetTemperatureV",
        *GPM_SYMBOLS,
    }
    return FakeNvml([gpu], missing_symbols=missing, clock=clock, driver_version="470.223.02")


def scenario_no_driver(error: type[NVMLError] = NVMLError_DriverNotLoaded) -> FakeNvml:
    """A host whose nvmlInit fails: no driver loaded, or (LibraryNotFound) no libnvidia-ml."""
    return FakeNvml([], init_error=error)


def scenario_shared_gpu_two_processes(clock: FakeClock | None = None) -> FakeNvml:
    """An A100 shared by pid 101 (10 GiB, SM 20 then 30 %) and pid 202, which has a compute and
    a graphics context (2 GiB, listed twice) and SM 60 %."""
    gpu = _a100(
        "GPU-a100-shared",
        mem_used=12 * GIB,
        processes=[
            FakeProcess(101, 10 * GIB),
            FakeProcess(202, 2 * GIB, lists=("compute", "graphics")),
        ],
        util_samples=[(101, 5_000_000, 20), (202, 5_100_000, 60), (101, 5_200_000, 30)],
    )
    return FakeNvml([gpu], clock=clock)


# ---------------------------------------------------------------------- the issue's scenarios
#
# Named as issue 3 lists them; tests/collectors/gpu/test_nvml_scenarios.py holds their golden
# expectations (tests/collectors/gpu/golden/nvml/<name>.json) and the figures worked by hand.
# The processes they put on GPUs are described in SCENARIO_PROCS; `write_scenario_procs` makes
# a /proc tree of them.

H100_BUSY_RANK_BYTES = 72 * GIB
DOCKER_ID = "4f1c0d7d2a9b" + "0" * 52  # a 64-hex container id


def scenario_8x_h100_busy(clock: FakeClock | None = None, processes_per_gpu: int = 1) -> FakeNvml:
    """An 8×H100 SXM node running one pretraining job, a torchrun rank per GPU (pids 7100-7107,
    72 GiB each, workload `llm-pretrain` by environment variable): utilization.gpu 100 %, GPM
    SM active 80-87 % (GPU i: 80 + i), tensor 60 + i, occupancy 40, DRAM bandwidth 35; each
    rank's per-process SM share 96 %.

    `processes_per_gpu` > 1 (the benchmark's 8 GPUs × 20 processes) puts the same pids
    7100, 7101, ... on every GPU, as NCCL and DataLoader workers do, each with 1 GiB.
    """
    gpus = []
    for i in range(8):
        if processes_per_gpu == 1:
            procs = [FakeProcess(7100 + i, H100_BUSY_RANK_BYTES)]
            live = {7100 + i: 96}
        else:
            procs = [FakeProcess(7100 + j, 1 * GIB) for j in range(processes_per_gpu)]
            live = {7100 + j: 4 for j in range(processes_per_gpu)}
        gpus.append(
            _h100(
                uuid=f"GPU-h100-busy-{i}",
                name="NVIDIA H100 80GB HBM3",
                mem_used=sum(p.used_bytes or 0 for p in procs) + 1 * GIB,
                util_gpu=100,
                power_mw=650_000 + 1_000 * i,
                energy_mj=9_000_000_000 + i,
                sm_clock_mhz=1980,
                temperature_c=70 + i,
                gpm={
                    SM_UTIL: 80.0 + i,
                    SM_OCCUPANCY: 40.0,
                    ANY_TENSOR_UTIL: 60.0 + i,
                    DRAM_BW_UTIL: 35.0,
                },
                processes=procs,
                live_sm_util=live,
            )
        )
    return FakeNvml(gpus, clock=clock)


def scenario_notebook_70gb_idle(clock: FakeClock | None = None) -> FakeNvml:
    """One H100 held by a Jupyter kernel (pid 3131, in a Docker container) that loaded a model
    into 70 GiB and stopped: no kernel runs (utilization 0, GPM SM active 0, no per-process
    utilization samples, so NotFound), the board idles at 72 W. The kind of allocation the
    waste detector looks for."""
    gpu = _h100(
        uuid="GPU-h100-notebook",
        mem_used=70 * GIB,
        util_gpu=0,
        power_mw=72_000,
        energy_mj=40_000_000,
        sm_clock_mhz=345,
        temperature_c=33,
        gpm={SM_UTIL: 0.0, SM_OCCUPANCY: 0.0, ANY_TENSOR_UTIL: 0.0, DRAM_BW_UTIL: 0.0},
        processes=[FakeProcess(3131, 70 * GIB)],
        util_samples=[],
    )
    return FakeNvml([gpu], clock=clock)


def scenario_gpu_lost_mid_run(clock: FakeClock | None = None, lost_at_tick: int = 2) -> FakeNvml:
    """Two H100s, a rank on each (pids 7200, 7201, workload `llm-finetune`); before tick
    `lost_at_tick` (counted from 1) GPU 1 falls off the bus (GpuIsLost on every reading)."""
    gpus = [
        _h100(
            uuid=f"GPU-h100-lost-{i}",
            processes=[FakeProcess(7200 + i, 40 * GIB)],
            live_sm_util={7200 + i: 90},
        )
        for i in range(2)
    ]
    fake = FakeNvml(gpus, clock=clock)
    fake.events[lost_at_tick] = lambda nv: nv.lose_gpu(1)
    return fake


def scenario_mig_3g40gb_two_processes(clock: FakeClock | None = None) -> FakeNvml:
    """An H100 in MIG mode with two 3g.40gb instances: slot 0 (GPU instance 1) runs pid 6101
    (`vision-train`, 20 GiB) and pid 6102 (`vision-eval`, 8 GiB), slot 1 (GPU instance 2) holds
    13 MiB and no process; the other five slots are empty. Per-process utilization is not
    supported on MIG, so the two processes share the instance by memory."""
    busy = FakeMig(
        uuid="MIG-3g40-busy",
        profile="3g.40gb",
        gpu_instance_id=1,
        mem_total=40 * GIB,
        mem_used=28 * GIB + 200 * MIB,
        processes=[FakeProcess(6101, 20 * GIB), FakeProcess(6102, 8 * GIB)],
        gpm={SM_UTIL: 45.0, SM_OCCUPANCY: 30.0, ANY_TENSOR_UTIL: 20.0, DRAM_BW_UTIL: 25.0},
    )
    idle = FakeMig(
        uuid="MIG-3g40-idle",
        profile="3g.40gb",
        gpu_instance_id=2,
        mem_total=40 * GIB,
        mem_used=13 * MIB,
        gpm={SM_UTIL: 0.0, SM_OCCUPANCY: 0.0, ANY_TENSOR_UTIL: 0.0, DRAM_BW_UTIL: 0.0},
    )
    gpu = _h100(
        uuid="GPU-h100-mig3g",
        mig_capable=True,
        mig_enabled=True,
        mig_slots=[busy, idle, None, None, None, None, None],
        util_gpu=0,  # NVML answers N/A for MIG on the board; never read with MIG on
    )
    return FakeNvml([gpu], clock=clock)


def scenario_consumer_card_no_gpm(clock: FakeClock | None = None) -> FakeNvml:
    """A workstation GeForce RTX 4090 (Ada: the GPM API is there, the GPU says unsupported; no
    MIG): Xorg holds a graphics context (pid 1500, 300 MiB), a Stable Diffusion run (pid 1600,
    `image-gen`) 19 GiB; per-process utilization works (1600: 97 %, Xorg: 2 %)."""
    gpu = FakeGpu(
        uuid="GPU-rtx4090-0000",
        name="NVIDIA GeForce RTX 4090",
        mem_total=24564 * MIB,
        mem_used=19 * GIB + 300 * MIB,
        mem_reserved=310 * MIB,
        util_gpu=99,
        power_mw=410_500,
        energy_mj=777_000_000,
        sm_clock_mhz=2745,
        temperature_c=66,
        power_limit_mw=450_000,  # a consumer card: no ECC
        gpm_supported=False,
        processes=[
            FakeProcess(1500, 300 * MIB, lists=("graphics",)),
            FakeProcess(1600, 19 * GIB),
        ],
        live_sm_util={1500: 2, 1600: 97},
    )
    return FakeNvml([gpu], clock=clock, driver_version="560.35.03")


def scenario_driver_without_process_utilization(clock: FakeClock | None = None) -> FakeNvml:
    """An A100 80GB on a driver with neither per-process utilization call: the newer
    nvmlDeviceGetProcessesUtilizationInfo is absent (FunctionNotFound) and the older
    nvmlDeviceGetProcessUtilization answers NotSupported (vGPU guests do). Two processes:
    pid 101 (Slurm job `bert`, 30 GiB) and pid 202 (`team-vision` pod, 10 GiB); SM share is
    unknown, so memory decides."""
    gpu = _a100(
        "GPU-a100-noputil",
        name="NVIDIA A100-SXM4-80GB",
        mem_total=80 * GIB,
        mem_used=40 * GIB,
        util_gpu=71,
        processes=[FakeProcess(101, 30 * GIB), FakeProcess(202, 10 * GIB)],
        process_util_supported=False,
        mig_capable=True,
    )
    return FakeNvml(
        [gpu],
        clock=clock,
        missing_symbols={"nvmlDeviceGetProcessesUtilizationInfo"},
        driver_version="535.183.01",
    )


ISSUE_SCENARIOS: dict[str, Callable[..., FakeNvml]] = {
    "8x_h100_busy": scenario_8x_h100_busy,
    "notebook_70gb_idle": scenario_notebook_70gb_idle,
    "gpu_lost_mid_run": scenario_gpu_lost_mid_run,
    "mig_3g40gb_two_processes": scenario_mig_3g40gb_two_processes,
    "consumer_card_no_gpm": scenario_consumer_card_no_gpm,
    "driver_without_process_utilization": scenario_driver_without_process_utilization,
}

# /proc facts of every process the scenarios above put on a GPU (write_proc_entry arguments).
SCENARIO_PROCS: dict[int, dict[str, Any]] = {
    **{
        7100 + k: dict(
            cmdline=["python", "pretrain.py", f"--local-rank={k}"],
            environ={"GPULEDGER_WORKLOAD": "llm-pretrain", "LOCAL_RANK": str(k)},
            cgroup="0::/system.slice/slurmstepd.scope/job_88/step_0\n",
        )
        for k in range(20)
    },
    3131: dict(
        cmdline=["/opt/conda/bin/python", "-m", "ipykernel_launcher", "-f", "kernel-5f2c.json"],
        environ={"JPY_PARENT_PID": "3100", "HOME": "/root"},
        cgroup=f"0::/system.slice/docker-{DOCKER_ID}.scope\n",
    ),
    7200: dict(environ={"GPULEDGER_WORKLOAD": "llm-finetune"}),
    7201: dict(environ={"GPULEDGER_WORKLOAD": "llm-finetune"}),
    6101: dict(cmdline=["python", "train_vit.py"], environ={"GPULEDGER_WORKLOAD": "vision-train"}),
    6102: dict(cmdline=["python", "eval_vit.py"], environ={"GPULEDGER_WORKLOAD": "vision-eval"}),
    1500: dict(cmdline=["/usr/lib/xorg/Xorg", "vt1", "-displayfd", "3"], comm="Xorg"),
    1600: dict(cmdline=["python", "sd_webui.py"], environ={"GPULEDGER_WORKLOAD": "image-gen"}),
    101: dict(uid=4242424, cmdline=["python", "bert.py"], environ={"SLURM_JOB_NAME": "bert"}),
    202: dict(
        cmdline=["jupyter-lab"],
        environ={"POD_NAMESPACE": "team-vision", "KUBERNETES_SERVICE_HOST": "10.0.0.1"},
    ),
}


def write_scenario_procs(root: Path, pids: Iterable[int] | None = None) -> Path:
    """A /proc tree under `root` with the SCENARIO_PROCS entries (all, or `pids`); uid 0 unless
    given, so user names read the same on every Linux host."""
    for pid in SCENARIO_PROCS if pids is None else pids:
        write_proc_entry(root, pid, **SCENARIO_PROCS[pid])
    return Path(root)
