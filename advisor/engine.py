"""Where the ledger job's partitions run: `[engine] mode` (issue 17, the jobs on Ray).

- `local` (the default): in this process, one partition after another; the ledger job itself
  keeps its whole-chunk form (advisor/jobs.py `chunk_results`), exactly as before.
- `ray`: one Ray task per partition (advisor/partitions.py) on the cluster at `[engine] address`
  ("auto", "ray://head:10001"), or on a local Ray started for the run when it is empty. The
  shared context (placements, configuration, catalog) goes to the object store once.

All or nothing: `map` returns only once every task has finished, in the items' order, and raises
if one failed for good. A worker that dies mid-task (killed, out of memory, its node lost) has
its task run again, up to `[engine] max_retries` times; the tasks are pure functions of their
inputs, so a retried one returns what the first would have. The driver alone writes the
warehouse, in one transaction after `map` returned: a failed job stores nothing and leaves its
days marked for the next run.

Ray Data has `read_iceberg` (Ray 2.60), but its blocks are not cut by day and host: the per-GPU
ordered rollups would need a shuffle first. Ray Data's `map` over the partition list turns each
returned Polars frame into a NumPy array (names and types lost). A task per partition that scans
just its day and host keeps each partition's rows on one worker and returns its frames as they
are (docs/engine.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from config.settings import Config, EngineConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
C = TypeVar("C")
R = TypeVar("R")

RAY_HINT = "pip install 'gpuledger[ray]' (or -r requirements-ray.txt)"


class EngineError(RuntimeError):
    """The engine cannot run: Ray missing or its cluster not reachable; names [engine]."""


class Engine(Protocol):
    name: str

    def map(self, fn: Callable[[T, C], R], items: Sequence[T], shared: C) -> list[R]:
        """`fn(item, shared)` for every item, in order."""
        ...

    def close(self) -> None: ...


class LocalEngine:
    """Every partition in this process, one after another."""

    name = "local"

    def map(self, fn: Callable[[T, C], R], items: Sequence[T], shared: C) -> list[R]:
        return [fn(item, shared) for item in items]

    def close(self) -> None:
        return None


def _call(fn: Callable[[Any, Any], Any], item: Any, shared: Any) -> Any:
    """The body of a Ray task (Ray resolves `shared`'s object reference before the call)."""
    return fn(item, shared)


class RayEngine:
    """Every partition a Ray task; see the module docstring."""

    name = "ray"

    def __init__(
        self, address: str = "", *, max_retries: int = 3, num_cpus: int | None = None
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise EngineError(f'[engine] mode = "ray" needs Ray: {RAY_HINT}') from exc
        self._ray = ray
        self.max_retries = max_retries
        self._owned = not ray.is_initialized()
        if self._owned:
            try:
                ray.init(
                    address=address or None,
                    num_cpus=None if address else num_cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except Exception as exc:  # a wrong address, a cluster down
                raise EngineError(
                    f"[engine] address {address!r}: Ray did not start: {exc}"
                ) from exc
        self._task = ray.remote(max_retries=max_retries, retry_exceptions=False)(_call)

    def map(self, fn: Callable[[T, C], R], items: Sequence[T], shared: C) -> list[R]:
        if not items:
            return []
        ref = self._ray.put(shared)
        refs = [self._task.remote(fn, item, ref) for item in items]
        return list(self._ray.get(refs))

    @property
    def workers(self) -> int:
        """CPUs of the cluster: how many tasks run at once."""
        return int(self._ray.cluster_resources().get("CPU", 0))

    def close(self) -> None:
        """Shut down the Ray this engine started (a cluster it joined keeps running)."""
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def make_engine(conf: EngineConfig, *, num_cpus: int | None = None) -> Engine:
    """The engine `[engine]` names."""
    if conf.mode == "ray":
        return RayEngine(conf.address, max_retries=conf.max_retries, num_cpus=num_cpus)
    return LocalEngine()


def describe(conf: EngineConfig) -> str:
    """`[engine]` in words, for `gpuledger doctor` (Ray looked for, not started)."""
    if conf.mode != "ray":
        return "local: the ledger job runs in the daemon's process"
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = f"Ray {version('ray')}"
    except PackageNotFoundError:
        return f"ray, but Ray is not installed: {RAY_HINT}"
    where = f"the cluster at {conf.address}" if conf.address else "a local Ray started for the run"
    return f"ray: one task per day and host on {where} ({found}; {conf.max_retries} retries)"


_SHARED: dict[tuple[str, str, int], Engine] = {}


def engine_for(cfg: Config) -> Engine:
    """The process's engine for `cfg` (a Ray connection is made once and kept: the daemon's
    cycles would otherwise pay Ray's start-up each minute)."""
    conf = cfg.engine
    key = (conf.mode, conf.address, conf.max_retries)
    if key not in _SHARED:
        _SHARED[key] = make_engine(conf)
        log.info("engine: %s%s", conf.mode, f" at {conf.address}" if conf.address else "")
    return _SHARED[key]
