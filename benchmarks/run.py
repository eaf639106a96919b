"""`make bench`: run every benchmarks/bench_*.py and write docs/PERFORMANCE.md.

Each module defines `bench() -> list[Result]`. Figures are medians of several runs measured side by
side in one process on this machine; never assert timings in tests.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    name: str  # what was measured
    value: float  # the median
    unit: str  # "ms", "rows/s", "bytes/sample", "% of a core", "MB", ...
    goal: str = ""  # e.g. "<= 300 ms"
    met: bool | None = None  # None: no goal
    note: str = ""  # how, and why a goal is missed


def median_seconds(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn` over `repeat` runs after `warmup` unmeasured ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="run only benchmark modules whose name contains this")
    parser.add_argument("--out", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    args = parser.parse_args(argv)
    sections: list[tuple[str, str, list[Result]]] = []
    import benchmarks

    for info in sorted(pkgutil.iter_modules(benchmarks.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_") or (args.only and args.only not in info.name):
            continue
        module = importlib.import_module(f"benchmarks.{info.name}")
        print(f"running {info.name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        results = module.bench()
        took = time.perf_counter() - t0
        sections.append((info.name, (module.__doc__ or "").strip(), results))
        for r in results:
            print(f"  {r.name}: {r.value:,.3f} {r.unit} {r.goal} {r.note}", file=sys.stderr)
        print(f"  ({took:.1f}s)", file=sys.stderr)
    lines = [
        "# Performance",
        "",
        f"Measured by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        f"Machine: {machine()}.",
        "Figures are medians of several runs in one process; the machine is small and noisy.",
        "",
    ]
    for name, doc, results in sections:
        lines += [f"## {name.removeprefix('bench_')}", "", doc, ""]
        lines += ["| measure | median | goal | met | note |", "|---|---|---|---|---|"]
        for r in results:
            met = "" if r.met is None else ("yes" if r.met else "**no**")
            lines.append(f"| {r.name} | {r.value:,.3f} {r.unit} | {r.goal} | {met} | {r.note} |")
        lines.append("")
    out = Path(args.out)
    if args.only and out.exists():  # keep the other benchmarks' sections from the last full run
        lines = _merge(out.read_text(), lines)
    out.write_text("\n".join(lines))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _merge(old: str, new_lines: list[str]) -> list[str]:
    """The old file with its `## name` sections replaced by the freshly measured ones."""

    def sections(text_lines: list[str]) -> tuple[list[str], dict[str, list[str]]]:
        head: list[str] = []
        parts: dict[str, list[str]] = {}
        current = None
        for line in text_lines:
            if line.startswith("## "):
                current = line
                parts[current] = [line]
            elif current is None:
                head.append(line)
            else:
                parts[current].append(line)
        return head, parts

    _, old_parts = sections(old.splitlines())
    head, new_parts = sections(new_lines)
    merged = {**old_parts, **new_parts}
    for lines in merged.values():  # one blank line after each section, also the old last one
        while lines and not lines[-1].strip():
            lines.pop()
        lines.append("")
    head = [
        *head,
        "Sections re-measured in this run: "
        + ", ".join(k.removeprefix("## ") for k in new_parts)
        + ".",
        "",
    ]
    return head + [line for part in merged.values() for line in part]


if __name__ == "__main__":
    sys.exit(main())
