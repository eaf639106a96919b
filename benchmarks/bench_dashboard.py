"""Dashboard: every read the pages make, on the snapshot `gpuledger run` publishes for the
benchmark fleet (benchmarks/fleet.py), and every page rendered in-process.

Panels: each public read of `warehouse.snapshot.Snapshot`, and each public function of a
`warehouse/` module whose first parameter is a `Snapshot` (`warehouse/*_reads.py`, the
`snapshot_*` reads of warehouse/alerts.py, …), found by introspection, so reads added later are
timed too. Arguments are filled by name: `since` a week ago (the Overview's window), `until` now,
parameters with defaults keep them; a read needing anything else is listed as skipped. One
`Snapshot` serves all calls, as the dashboard's cached one does; p50 of 21 calls after a warm-up.

Pages: each page of the registry (dashboard/pages/__init__.py) run by Streamlit's AppTest with
the data cache cleared before every run (a page opened after the cache expired: the queries, the
frames, the chart specs; the browser's drawing is not counted); p50 of 5 runs. The fleet's spool
batches are back-dated and each host's agent has written the last 30 s in 5-second batches, as
the live view meets it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import statistics
import time
import typing
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks.fleet import built_fleet, make_spool_live
from benchmarks.run import ROOT, Result
from dashboard.pages import PAGES

PANEL_GOAL_MS = 50.0
PAGE_GOAL_MS = 300.0
PANEL_RUNS = 21
PAGE_RUNS = 5
SKIP_METHODS = {"query", "close", "exists"}


def _argument(name: str, annotation: object) -> object:
    now = datetime.now(UTC)
    text = str(annotation)
    wants_date = annotation is date or ("date" in text and "datetime" not in text)
    if name in ("since", "start", "lo"):
        return (now - timedelta(days=7)).date() if wants_date else now - timedelta(days=7)
    if name in ("until", "end", "hi"):
        return (now + timedelta(days=1)).date() if wants_date else now
    if name == "days":
        return 7
    if name == "workload":
        return "llm-pretrain"  # a workload of the benchmark fleet
    raise LookupError(name)


def _call(fn: Callable, *first: object) -> Callable[[], object] | str:
    """A no-argument call of `fn` (with `first` as its leading arguments), or why it cannot
    be made."""
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    kwargs = {}
    for p in list(sig.parameters.values())[len(first) :]:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.default is not p.empty:
            continue
        try:
            kwargs[p.name] = _argument(p.name, hints.get(p.name, p.annotation))
        except LookupError:
            return f"needs {p.name}"
    return lambda: fn(*first, **kwargs)


def panel_reads(snap) -> dict[str, Callable[[], object] | str]:
    """name -> a call, for every public Snapshot read and snapshot-reading warehouse function."""
    import warehouse
    from warehouse.snapshot import Snapshot

    reads: dict[str, Callable[[], object] | str] = {}
    for name, _member in inspect.getmembers(Snapshot, inspect.isfunction):
        if not name.startswith("_") and name not in SKIP_METHODS:
            reads[f"Snapshot.{name}"] = _call(getattr(snap, name))
    for info in pkgutil.iter_modules(warehouse.__path__):
        module = importlib.import_module(f"warehouse.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or fn.__module__ != module.__name__:
                continue
            params = list(inspect.signature(fn).parameters.values())
            try:
                first = typing.get_type_hints(fn).get(params[0].name) if params else None
            except Exception:  # annotations naming what only a type checker imports
                first = params[0].annotation if params else None
            if first in (Snapshot, "Snapshot"):
                reads[f"{info.name}.{name}"] = _call(fn, snap)
    return reads


def _p50_ms(fn: Callable[[], object], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _pages(cfg, live_files: int) -> list[Result]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from cli.daemon import dashboard_env

    env = dashboard_env(cfg)
    saved = {k: os.environ.get(k) for k in env if k.startswith("GPULEDGER_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("GPULEDGER_")})
    results = []
    try:
        st.cache_resource.clear()
        for spec in sorted(PAGES, key=lambda p: p.file):  # every registered page
            page = ROOT / spec.path
            times, errors = [], []
            for _ in range(PAGE_RUNS + 1):
                st.cache_data.clear()
                t0 = time.perf_counter()
                at = AppTest.from_file(str(page), default_timeout=120).run()
                times.append((time.perf_counter() - t0) * 1000)
                errors = [e.value for e in at.exception]
            ms = statistics.median(times[1:])
            results.append(
                Result(
                    f"page {page.stem}",
                    ms,
                    "ms",
                    goal=f"<= {PAGE_GOAL_MS:g} ms",
                    met=ms <= PAGE_GOAL_MS and not errors,
                    note=f"AppTest, data cache cleared, p50 of {PAGE_RUNS}; live spool:"
                    f" {live_files} agent batches of the last 30 s"
                    + (f"; page raised: {str(errors[0])[:80]}" if errors else ""),
                )
            )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        st.cache_resource.clear()
        st.cache_data.clear()
    return results


def _publish_seconds(cfg) -> float:
    import tempfile

    from warehouse.snapshot import publish
    from warehouse.store import Warehouse

    times = []
    with (
        tempfile.TemporaryDirectory(prefix="gpuledger-publish-") as tmp,
        Warehouse(cfg.db_path, cfg.spool_dir) as wh,
    ):
        for _ in range(3):
            t0 = time.perf_counter()
            publish(wh, Path(tmp) / "dashboard.duckdb", days=cfg.warehouse.snapshot_days)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench() -> list[Result]:
    from warehouse.snapshot import Snapshot

    fleet = built_fleet()
    cfg = fleet.cfg
    publish_s = _publish_seconds(cfg)
    snap = Snapshot(cfg.snapshot_path)
    results = [
        Result(
            "publish: ledger refresh + snapshot over the whole fleet (the daemon's cycle)",
            fleet.cycle_s,
            "s",
            note=f"{fleet.spec.describe()}; one run (advisor jobs are timed in bench_advisor)",
        ),
        Result(
            "publish alone: build and swap the snapshot",
            publish_s,
            "s",
            goal="<= 10 s",
            met=publish_s <= 10,
            note="median of 3; the daemon does it after each ingest that brought data"
            " ([run] publish_interval_s)",
        ),
        Result(
            "snapshot file size",
            cfg.snapshot_path.stat().st_size / 1e6,
            "MB",
            note=f"{cfg.warehouse.snapshot_days} days of minute rollups and results",
        ),
    ]
    try:
        for name, call in sorted(panel_reads(snap).items()):
            if isinstance(call, str):
                results.append(Result(f"panel {name}", float("nan"), "ms", note=f"skipped: {call}"))
                continue
            ms = _p50_ms(call, PANEL_RUNS)
            answer = call()
            size = f"; {answer.height:,} rows" if hasattr(answer, "height") else ""
            results.append(
                Result(
                    f"panel {name}",
                    ms,
                    "ms",
                    goal=f"<= {PANEL_GOAL_MS:g} ms p50",
                    met=ms <= PANEL_GOAL_MS,
                    note=f"p50 of {PANEL_RUNS}{size}",
                )
            )
    finally:
        snap.close()
    live = make_spool_live(fleet.spec, cfg.spool_dir)
    results += _pages(cfg, live)
    return results


if __name__ == "__main__":
    for r in bench():
        print(f"{r.name}: {r.value:,.1f} {r.unit} {r.goal} {r.note}")
