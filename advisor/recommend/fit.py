"""Fit checks: whether a GPU of some memory and throughput holds a profiled workload, and whether
it is a smaller GPU than the one it runs on. Every option builder asks these."""

from __future__ import annotations

from advisor.costs import pct
from advisor.recommend.params import Params
from advisor.recommend.profiles import Profile


def memory_fit(p: Profile, mem_gib: float, params: Params) -> tuple[bool, str]:
    """Whether the memory of one GPU of `mem_gib` holds the workload. Where its memory was never
    measured, only a GPU with at least the memory of the one it runs on is known to."""
    if p.peak_memory_gib is None:
        if p.memory_gib is None:
            return False, "memory unknown: neither its use nor its GPU's size was measured"
        words = f"memory unknown: {mem_gib:g} GiB"
        if mem_gib < p.memory_gib:
            return False, f"{words} < the {p.memory_gib:g} GiB of its {p.gpu_model} it may need"
        return True, f"{words} ≥ the {p.memory_gib:g} GiB of its {p.gpu_model}"
    need = p.peak_memory_gib * (1 + params.memory_headroom_pct / 100.0)
    mem_words = f"{p.peak_memory_gib:.1f} GiB + {params.memory_headroom_pct:g} % = {need:.1f} GiB"
    if mem_gib < need:
        return False, f"too little memory: {mem_words} > {mem_gib:g} GiB"
    return True, f"memory {mem_words} ≤ {mem_gib:g} GiB"


def fit(p: Profile, mem_gib: float, rel: float | None, params: Params) -> tuple[bool, str]:
    """Whether a GPU of `mem_gib` and relative throughput `rel` holds the workload: its memory,
    and either at least today's throughput or a projected busy time under the ceiling."""
    fits, fits_mem = memory_fit(p, mem_gib, params)
    if not fits:
        return False, fits_mem
    if p.rel_throughput is None or rel is None:
        return True, fits_mem + "; throughput unknown"
    if rel >= p.rel_throughput:
        return True, f"{fits_mem}; throughput {rel:.2f} ≥ {p.rel_throughput:.2f} now"
    if p.busy_fraction is None:
        return False, (
            f"busy unknown (no activity signal): a GPU slower than now ({rel:.2f} < "
            f"{p.rel_throughput:.2f}) may not keep up"
        )
    projected = p.busy_fraction * p.rel_throughput / rel
    words = (
        f"busy {pct(p.busy_fraction)} × {p.rel_throughput:.2f} ÷ {rel:.2f} = {pct(projected)} "
        f"of the slower GPU"
    )
    if projected > params.max_projected_busy_pct / 100.0:
        return False, f"too slow: {words} > {params.max_projected_busy_pct:g} %"
    return True, f"{fits_mem}; {words} ≤ {params.max_projected_busy_pct:g} %"


def smaller(p: Profile, rel: float | None, mem: float | None, model: str) -> bool:
    """Whether `model` is a smaller GPU than the workload's: slower, or as fast with less memory."""
    if p.gpu_model is None or model == p.gpu_model:
        return False
    if p.rel_throughput is None or rel is None:
        return False
    return rel < p.rel_throughput or (
        rel == p.rel_throughput and (mem or 0.0) < (p.memory_gib or 0.0)
    )
