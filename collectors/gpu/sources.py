"""The GPU sources `gpuledger collect --source NAME` and the daemon can sample, by name.

Each source is one line at the end of this file: its name, the module that implements it
(imported only when that source is used, so the lean `gpuledger collect` loads nothing of the
sources it does not run), what else it can do and a line of help. The `--source` choices,
`[collect] source`'s allowed values and `gpuledger doctor` read this list; docs/architecture.md
says how to add a source.

A source is a module that provides, under these names:

- `open_sampler(settings: SourceSettings) -> Sampler` (every source): the tick function; raises
  `SourceUnavailable` when the source cannot work on this host (exit status 2);
- `parse_capture(paths, host) -> Batch` (`captures=True`): saved captures parsed (`collect
  --from`);
- `read_history(url, since, until, step_s, *, rules, window_s, max_series, resume_at) ->
  Iterator[piece]` (`history=True`): past samples read from a server in bounded windows, from
  `resume_at` on (`collect --since`; each piece as collectors/gpu/history.py `Piece` describes,
  spooled and recorded there so that a stopped run resumes);
- `probe() -> (ok, why)` (`probe=True`): whether it works on this host, asked by the daemon
  before it samples and shown by `gpuledger doctor`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tables.records import Batch

# What `[collect] source = "auto"` samples on a GPU host (the daemon samples the demo fleet instead
# while it runs one).
DEFAULT_SOURCE = "nvml"
AUTO = "auto"


class SourceUnavailable(ValueError):
    """A source that cannot work here, or options it cannot work with; the message says why."""


@dataclass(frozen=True)
class SourceSettings:
    """What opening a source may need, from the command line and the configuration."""

    host: str | None = None  # --host: the host id to record (None: the source's own)
    host_id: str = ""  # [collect] host_id ("" : detect)
    url: str | None = None  # --url, else [collect] prometheus_url
    rules: tuple[Mapping[str, Any], ...] = ()  # [[workloads.rules]]
    seed: int = 42  # [demo] seed


@dataclass
class Sampler:
    """A source's tick function and what to release when the agent stops."""

    sample: Callable[[datetime], Batch]
    close: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True)
class GpuSource:
    """One GPU source: its name, the module that implements it, what else it can do, its help."""

    name: str
    module: str
    help: str
    captures: bool = False  # parse_capture: `collect --from FILE`
    history: bool = False  # read_history: `collect --since T`
    probe: bool = False  # probe(): can it work on this host?
    daemon: bool = False  # `gpuledger run` samples it itself ([collect] source)

    def function(self, name: str) -> Callable[..., Any]:
        """The module's function `name`, importing the module now (only the chosen source's)."""
        return getattr(importlib.import_module(self.module), name)

    def open(self, settings: SourceSettings) -> Sampler:
        """The tick function; SourceUnavailable when the source cannot work here."""
        return self.function("open_sampler")(settings)


SOURCES: dict[str, GpuSource] = {}


def register(source: GpuSource) -> GpuSource:
    """Add a source (its name must be new); returns it."""
    if source.name in SOURCES or source.name == AUTO:
        raise ValueError(f"GPU source name {source.name!r} is taken")
    SOURCES[source.name] = source
    return source


def names() -> tuple[str, ...]:
    """Every source's name, in registration order."""
    return tuple(SOURCES)


def get(name: str) -> GpuSource:
    try:
        return SOURCES[name]
    except KeyError:
        raise SourceUnavailable(f"unknown source {name}") from None


def having(what: str) -> tuple[str, ...]:
    """The names of the sources that can do `what` (captures, history, probe, daemon)."""
    return tuple(s.name for s in SOURCES.values() if getattr(s, what))


# One line per source, in the order `--help` lists them -----------------------------------------
for _source in (
    GpuSource("nvml", "collectors.gpu.nvml", "NVML, the driver's library", probe=True, daemon=True),
    GpuSource("smi", "collectors.gpu.smi", "nvidia-smi -q -x once per tick", captures=True),
    GpuSource(
        "prometheus", "collectors.gpu.prometheus", "dcgm-exporter", captures=True, history=True
    ),
    GpuSource("demo", "collectors.demo", "the simulated demo fleet", daemon=True),
):
    register(_source)
