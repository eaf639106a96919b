"""GPU classes: one resolver from any reported GPU model name to a catalog class (DESIGN.md §2).

NVML, nvidia-smi, DCGM's `modelName` and imported files name the same board in many ways:
"NVIDIA H100 80GB HBM3", "Tesla V100S-PCIE-32GB", "GRID A100-40C" (a vGPU profile), "NVIDIA
A100-SXM4-40GB MIG 1g.5gb" (a MIG device). `normalize` reduces a name to its core (vendor and
brand words, form factors, memory sizes, MIG and vGPU suffixes dropped) and the memory it states.
A catalog class answers to the core of its own name and of each of its `aliases` (catalog
column, `;`-separated), so a team adds a class by adding a catalog row. Where several classes
share a core (A100-40GB and A100-80GB), the memory the name states, else the memory the GPU
reports, picks the class nearest in memory; with neither the name is ambiguous. A name no class
answers to resolves to None: it is *unpriced*, and every place that shows money says so.

Everything above the warehouse may import this module (it needs only Polars and the catalog).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from tables.units import MIB_PER_GIB

CATALOG_PATH = "config/catalog.csv"
# Words that name the vendor or a product brand, never the chip.
BRAND_WORDS = frozenset({"NVIDIA", "TESLA", "GEFORCE", "QUADRO", "GRID"})
# Form factors and memory technologies: the same chip in another package.
FORM_FACTOR = re.compile(r"^(SXM\d*|PCIE|NVL|NVLINK|HBM\d*E?|DGXS|FHHL)$")
MEMORY_TOKEN = re.compile(r"^(\d+(?:\.\d+)?)(GB|GIB)$")
# A vGPU profile after the board name: "A100-40C" is a 40 GB compute profile of an A100.
VGPU_PROFILE = re.compile(r"^(\d+)[ABCQ]$")
# A MIG device is named after its board: "... MIG 1g.10gb" (or "MIG 1c.3g.40gb").
MIG_SUFFIX = re.compile(r"(^|\s)MIG(\s.*)?$")
SEPARATORS = re.compile(r"[-_/(),]+")


@dataclass(frozen=True)
class ModelName:
    """A reported model name reduced to what identifies the chip."""

    core: str
    memory_gib: float | None
    mig: bool


def normalize(name: str) -> ModelName:
    """`"NVIDIA A100-SXM4-40GB MIG 1g.5gb"` -> core `A100`, 40 GiB, MIG."""
    text = " ".join(str(name).upper().split())
    mig = MIG_SUFFIX.search(text) is not None
    text = MIG_SUFFIX.sub("", text)
    memory: float | None = None
    kept: list[str] = []
    for token in SEPARATORS.sub(" ", text).split():
        found = MEMORY_TOKEN.match(token)
        profile = VGPU_PROFILE.match(token) if kept else None
        if found:
            memory = float(found.group(1))
        elif profile:
            memory = float(profile.group(1))
        elif token not in BRAND_WORDS and not FORM_FACTOR.match(token):
            kept.append(token)
    return ModelName(" ".join(kept), memory, mig)


def _aliases(value: str | None) -> list[str]:
    return [a.strip() for a in (value or "").split(";") if a.strip()]


def class_cores(gpu_rows: pl.DataFrame) -> list[tuple[str, str, float | None, int, str]]:
    """(core, class, class memory GiB, row index, column) for every name a class answers to:
    its own name and each alias."""
    out = []
    for i, r in enumerate(gpu_rows.iter_rows(named=True)):
        row = int(r.get("_row", i))
        names = [(r["gpu_model"], "gpu_model")] + [(a, "aliases") for a in _aliases(r["aliases"])]
        for text, column in names:
            out.append((normalize(text).core, r["gpu_model"], r["gpu_memory_gib"], row, column))
    return out


def check_class_names(gpu_rows: pl.DataFrame) -> tuple[int, str, str] | None:
    """The first (row, column, problem) that would make a name resolve to nothing or to two
    classes: an alias with no chip name left, or one core answered by two classes that the
    memory cannot tell apart."""
    seen: dict[str, list[tuple[str, float | None, int]]] = {}
    for core, klass, memory, row, column in class_cores(gpu_rows):
        if not core:
            return row, column, f"{klass!r}: an alias names no chip once brand words are dropped"
        for other, other_memory, other_row in seen.get(core, []):
            if other == klass:
                continue
            if memory is None or other_memory is None or memory == other_memory:
                return (
                    row,
                    column,
                    f"{klass!r} answers to {core!r} like class {other!r} (row {other_row + 2})"
                    " with the same gpu_memory_gib: give them different memory or drop the alias",
                )
        seen.setdefault(core, []).append((klass, memory, row))
    return None


class GpuClasses:
    """The catalog's GPU classes and the resolver over them."""

    def __init__(self, catalog: pl.DataFrame) -> None:
        """`catalog`: the whole catalog, or just its GPU class rows."""
        if "kind" in catalog.columns:
            catalog = catalog.filter(pl.col("kind") == "gpu")
        self.table = catalog
        if "aliases" not in self.table.columns:
            self.table = self.table.with_columns(aliases=pl.lit(None, pl.String))
        self._by_core: dict[str, dict[str, float | None]] = {}
        for core, klass, memory, _row, _col in class_cores(self.table):
            self._by_core.setdefault(core, {})[klass] = memory
        self.names: list[str] = self.table["gpu_model"].to_list()
        self.high_end: frozenset[str] = frozenset(
            self.table.filter(pl.col("high_end").fill_null(False))["gpu_model"].to_list()
        )

    def resolve(self, name: str | None, mem_total_mib: float | None = None) -> str | None:
        """The class a reported model name is, or None (unknown or ambiguous)."""
        if name is None or not str(name).strip():
            return None
        n = normalize(name)
        candidates = self._by_core.get(n.core)
        if not candidates:
            return None
        if len(candidates) == 1:
            return next(iter(candidates))
        memory = n.memory_gib
        if memory is None and mem_total_mib and not n.mig:
            memory = float(mem_total_mib) / MIB_PER_GIB
        if memory is None:
            return None
        return min(candidates, key=lambda k: (abs((candidates[k] or 0.0) - memory), k))

    def candidates(self, name: str) -> list[str]:
        """Every class whose name or alias the model names (several: memory decides)."""
        return sorted(self._by_core.get(normalize(name).core, {}))

    def resolve_frame(
        self,
        frame: pl.DataFrame,
        model: str = "gpu_model",
        memory: str | None = "mem_total_mib",
        out: str = "gpu_class",
    ) -> pl.DataFrame:
        """`frame` with column `out`: the class of each row's model (and reported memory, MiB),
        resolved once per distinct (model, memory) pair and joined back."""
        keys = [model] + ([memory] if memory and memory in frame.columns else [])
        pairs = frame.select(keys).unique()
        mems = pairs[keys[1]].to_list() if len(keys) > 1 else [None] * pairs.height
        mapping = pairs.with_columns(
            pl.Series(
                out,
                [self.resolve(m, g) for m, g in zip(pairs[model].to_list(), mems, strict=True)],
                dtype=pl.String,
            )
        )
        return frame.join(mapping, on=keys, how="left", nulls_equal=True)

    def is_high_end(self, klass: str | None) -> bool:
        return klass in self.high_end

    def info(self, klass: str | None) -> dict | None:
        """The catalog row of a class, as a dict (None for no class)."""
        if klass is None:
            return None
        rows = self.table.filter(pl.col("gpu_model") == klass)
        return rows.row(0, named=True) if rows.height else None


def catalog_line(model: str, mem_gib: float | None = None) -> str:
    """The `config/catalog.csv` line a team adds for a model no class answers to, with
    placeholders for what only they know (price, throughput, source)."""
    n = normalize(model)
    name = n.core or model.strip()
    memory = n.memory_gib if n.memory_gib is not None else mem_gib
    mem = f"{memory:g}" if memory else "<gpu_memory_gib>"
    alias = f'"{model}"' if "," in model else model
    return (
        f"gpu,{name},,,{name},1,{mem},<relative_throughput>,false,,,<purchase_usd_per_gpu>,true,"
        f"<source>,<as_of YYYY-MM-DD>,<notes>,{alias}"
    )


def unpriced_advice(model: str, klass: str | None, mem_gib: float | None = None) -> str:
    """What to do about a local GPU model that has no purchase price, naming the catalog row."""
    if klass is None:
        return (
            f"{model!r} is no GPU class of the catalog: add this line to {CATALOG_PATH} "
            f"(or add {model!r} to an existing class's aliases): {catalog_line(model, mem_gib)}"
        )
    return (
        f"{model!r} is catalog class {klass!r}, which has no purchase_usd_per_gpu: fill it in "
        f"its row of {CATALOG_PATH} (or set purchase_usd for the host in [[local.hosts]])"
    )


def unpriced_warnings(unpriced: pl.DataFrame, catalog: pl.DataFrame) -> list[str]:
    """One warning per unpriced local GPU model (`warehouse.advisor_reads.unpriced_models`),
    naming its hosts, its GPU-hours and the catalog row to add or fill."""
    classes = GpuClasses(catalog)
    out = []
    for model, hosts, hours in unpriced.select(
        "gpu_model", "hosts", "unpriced_gpu_hours"
    ).iter_rows():
        out.append(
            f"{hours:,.1f} local GPU-hours of {model} on {hosts or 'unknown hosts'} are unpriced"
            f" (operations and energy only, no purchase price): "
            + unpriced_advice(model, classes.resolve(model))
        )
    return out
