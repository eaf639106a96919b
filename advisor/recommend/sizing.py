"""Sizing: how many GPUs of a class a workload needs, from its measured load (DESIGN.md §2,
Recommendation: "Alternatives may change the GPU count").

- One GPU now: the fit of advisor/recommend/fit.py (memory + headroom; today's throughput or a
  projected busy time under [advisor] max_projected_busy_pct).
- A multi-GPU job (one command busy on several GPUs at once), or a workload whose busy time or
  memory is unknown: it keeps the GPUs its processes hold at once; each GPU must hold its peak
  memory, and the work must fit them.
- Independent work or idle GPUs consolidate onto the fewest GPUs that hold (a) the GPU-
  equivalents busy at once in its busiest hours (p95, in today's GPUs, rounded up: parallel work
  needs as many GPUs), (b) its memory in total plus headroom, with its largest process on one
  GPU, and (c) its work under the busy ceiling: busy × today's GPUs × today's throughput ÷
  (GPUs × the class's throughput).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.costs import pct
from advisor.recommend.fit import fit, memory_fit
from advisor.recommend.load import MULTI_GPU, UNKNOWN, Load
from advisor.recommend.params import Params
from advisor.recommend.profiles import Profile

# A fraction of a GPU busy at once over a whole one still needs only that one (rounding).
ROUNDING_GPUS = 0.01


@dataclass(frozen=True)
class Sizing:
    """GPUs of one class a workload needs, whether they hold it, and why in words."""

    gpus: int
    feasible: bool
    note: str


def size_for(p: Profile, mem_gib: float, rel: float | None, params: Params) -> Sizing:
    """The GPUs of a class (memory `mem_gib` per GPU, relative throughput `rel`) `p` needs."""
    load = p.load
    if load is None or (p.gpus <= 1 and load.process_gpus <= 1):
        ok, note = fit(p, mem_gib, rel, params)
        return Sizing(max(p.gpus, 1), ok, note)
    if load.shape in (MULTI_GPU, UNKNOWN) or p.peak_memory_gib is None:
        return _kept_whole(p, load, mem_gib, rel, params)
    return _consolidated(p, load, mem_gib, rel, params)


def _kept_whole(
    p: Profile, load: Load, mem_gib: float, rel: float | None, params: Params
) -> Sizing:
    """A multi-GPU job, or a workload it is unknown how to pack: the GPUs its processes hold at
    once, each with the memory one of them needs."""
    n = load.process_gpus
    why = load.shape_words
    if load.shape != MULTI_GPU and load.shape != UNKNOWN:
        why = f"memory unknown: each of the {n} GPUs its processes held at once is kept"
    fits, mem_words = memory_fit(p, mem_gib, params)
    if not fits:
        return Sizing(n, False, f"{mem_words} ({why})")
    ok, work = _work(p, n, rel, params)
    return Sizing(n, ok, f"{why}; {mem_words} per GPU; {work}")


def _consolidated(
    p: Profile, load: Load, mem_gib: float, rel: float | None, params: Params
) -> Sizing:
    """Independent work or idle GPUs: the fewest GPUs holding its parallel work, memory, work."""
    h = 1 + params.memory_headroom_pct / 100.0
    largest = load.process_memory_gib if load.process_memory_gib is not None else p.peak_memory_gib
    largest = largest or 0.0
    if largest * h > mem_gib:
        return Sizing(
            load.process_gpus,
            False,
            f"too little memory: its largest process {largest:.1f} GiB + "
            f"{params.memory_headroom_pct:g} % = {largest * h:.1f} GiB > {mem_gib:g} GiB",
        )
    total = load.memory_total_gib if load.memory_total_gib is not None else largest
    by_memory = max(1, math.ceil(total * h / mem_gib - 1e-9))
    busy = load.busy_p95 or 0.0
    parallel = max(1, min(load.process_gpus, math.ceil(busy - ROUNDING_GPUS)))
    n = max(by_memory, parallel, _gpus_for_work(p, load, rel, params))
    words = (
        f"{load.shape_words}; {busy:.2f} GPU-equivalents busy at once in its busiest hours "
        f"(p95) need {parallel} GPU{'s' if parallel != 1 else ''}; memory {total:.1f} GiB in "
        f"total + {params.memory_headroom_pct:g} % = {total * h:.1f} GiB needs {by_memory} × "
        f"{mem_gib:g} GiB"
    )
    ok, work = _work(p, n, rel, params)
    return Sizing(n, ok, f"{words}; {n} GPU{'s' if n != 1 else ''}: {work}")


def _gpus_for_work(p: Profile, load: Load, rel: float | None, params: Params) -> int:
    """The fewest GPUs of throughput `rel` that do its work (see `_work`): today's capacity for
    the GPUs it uses, or its busy time under the ceiling, whichever needs fewer."""
    if p.rel_throughput is None or rel is None or rel <= 0:
        return 1
    same = math.ceil(load.process_gpus * p.rel_throughput / rel - 1e-9)
    if p.busy_fraction is None:
        return max(1, same)
    ceiling = params.max_projected_busy_pct / 100.0
    busy = math.ceil(p.busy_fraction * p.gpus * p.rel_throughput / (rel * ceiling) - 1e-9)
    return max(1, min(same, busy))


def _work(p: Profile, n: int, rel: float | None, params: Params) -> tuple[bool, str]:
    """Whether `n` GPUs of throughput `rel` do its work: at least today's capacity for the GPUs
    it uses, or its busy time × today's GPUs × throughput ÷ theirs under the ceiling."""
    used = p.load.process_gpus if p.load is not None else p.gpus
    if p.rel_throughput is None or rel is None:
        return True, "throughput unknown"
    if n * rel >= used * p.rel_throughput - 1e-9:
        return True, f"throughput {n} × {rel:.2f} ≥ {used} × {p.rel_throughput:.2f} now"
    if p.busy_fraction is None:
        return False, (
            f"busy unknown (no activity signal): {n} × {rel:.2f} is less throughput than the "
            f"{used} × {p.rel_throughput:.2f} now and may not keep up"
        )
    projected = p.busy_fraction * p.gpus * p.rel_throughput / (n * rel)
    words = (
        f"busy {pct(p.busy_fraction)} × {p.gpus} × {p.rel_throughput:.2f} ÷ ({n} × {rel:.2f}) "
        f"= {pct(projected)} of them"
    )
    if projected > params.max_projected_busy_pct / 100.0:
        return False, f"too slow: {words} > {params.max_projected_busy_pct:g} %"
    return True, f"{words} ≤ {params.max_projected_busy_pct:g} %"
