"""Operations the CLI commands and the daemon share: open, ingest, run the jobs, publish."""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from advisor.jobs import refresh_ledger
from cli.progress import Progress
from collectors import demo
from config.catalog import load_catalog
from config.settings import Config
from tables import spool
from tables.batches import remove_stale_temporaries
from warehouse.db import memory_limit
from warehouse.errors import explain
from warehouse.lock import LockHeld
from warehouse.snapshot import publish
from warehouse.store import IngestResult, Warehouse

log = logging.getLogger(__name__)


def open_warehouse(cfg: Config) -> Warehouse:
    """The writer; raises LockHeld when a daemon (or another command) owns the warehouse. What a
    writer killed mid-write left under temporary names (a spool batch, the snapshot it was
    building) is deleted first: the writer that starts is the one that owns them now."""
    wh = Warehouse(cfg.db_path, cfg.spool_dir).open()
    if cfg.lake.enabled:  # raw rows into the Iceberg lake (warehouse/lake_ingest.py)
        from warehouse.lake import open_lake

        try:
            wh.lake = open_lake(cfg)
            wh.lake_interval_s = cfg.lake.commit_interval_s
        except BaseException:
            wh.close()
            raise
    try:
        remove_stale_temporaries(cfg.spool_dir, [cfg.snapshot_path])
    except OSError as exc:  # never a reason not to start
        log.warning("could not remove the temporary files of a stopped writer: %s", exc)
    return wh


def catalog_for(cfg: Config) -> pl.DataFrame:
    return load_catalog(cfg.catalog_path)


def cycle(
    wh: Warehouse,
    cfg: Config,
    catalog: pl.DataFrame,
    *,
    progress: bool = False,
    force: bool = False,
    recompute: bool = False,
) -> IngestResult:
    """Ingest the spool; when anything arrived (or `force`), refresh the ledger (the days the
    ingest touched; every day with `recompute`) and publish."""
    bar: Progress | None = None

    def report(kind: str, done: int, total: int) -> None:
        nonlocal bar
        if not progress or total < 10:
            return
        if bar is None or bar.label != f"ingest {kind}":
            bar = Progress(f"ingest {kind}", total)
        bar.update(done, f"{done}/{total} files")
        if done == total:
            bar.finish(f"{total} files")
            bar = None

    result = wh.ingest_spool(progress=report)
    if result.files or force or recompute:
        refresh_and_publish(wh, cfg, catalog, recompute=recompute)
    return result


def refresh_and_publish(
    wh: Warehouse, cfg: Config, catalog: pl.DataFrame, *, recompute: bool = False
) -> None:
    """The ledger (the days the ingest touched; every day with `recompute`), then the snapshot."""
    refresh_ledger(wh, cfg, catalog, recompute=recompute)
    publish(wh, cfg.snapshot_path, days=cfg.warehouse.snapshot_days)


# DuckDB's memory while an import ingests (warehouse/db.py memory_limit): its cache of written
# blocks would otherwise grow with the file.
IMPORT_MEMORY_LIMIT = "256MB"


def ingest_now(cfg: Config, *, chunk_rows: int | None = None) -> str:
    """Ingest what the spool holds when no daemon owns the warehouse (`import`, `billing`,
    `collect --since`); else say it is queued for the daemon. `chunk_rows` bounds the rows of
    one ingest transaction and DuckDB's memory is capped meanwhile (an import keeps its memory
    small).

    Rows stored are stored: when the ledger or the snapshot after them fails (a full disk), the
    status says so and what to do, and the command does not fail for it."""
    try:
        with open_warehouse(cfg) as wh:
            bounded: AbstractContextManager[None] = nullcontext()
            if chunk_rows is not None:
                wh.chunk_rows = chunk_rows
                bounded = memory_limit(wh.db, IMPORT_MEMORY_LIMIT)
            with bounded:
                result = wh.ingest_spool()
            if not result.files:
                return result.summary()
            try:
                refresh_and_publish(wh, cfg, catalog_for(cfg))
            except Exception as exc:
                found = explain(exc, cfg.db_path)
                if found is None:
                    log.exception("refreshing the ledger and the snapshot after the ingest failed")
                why = str(found) if found is not None else f"{type(exc).__name__}: {exc}"
                return (
                    f"{result.summary()}; stored, but the dashboard's figures were not refreshed"
                    f" ({why}); the next `gpuledger run` or import refreshes them"
                )
            return result.summary()
    except LockHeld as exc:
        return f"queued in the spool: the running daemon will ingest it ({exc.holder})"


def nvml_status() -> tuple[bool, str]:
    """Whether NVML answers on this host, and what it said."""
    try:
        from collectors.gpu.nvml import nvml_available
    except ImportError as exc:  # pragma: no cover - only when the module is missing
        return False, f"NVML collector unavailable ({exc})"
    return nvml_available()


def demo_decision(cfg: Config, wh: Warehouse) -> tuple[bool, str]:
    """Whether the demo fleet runs, and why (DESIGN.md §3: no GPU and no cloud account)."""
    if cfg.demo.mode == "off":
        return False, "[demo] mode = off"
    if cfg.demo.mode == "on":
        return True, "[demo] mode = on"
    has_gpu, why = nvml_status()
    if has_gpu:
        return False, f"an NVIDIA GPU answers here ({why})"
    if cfg.aws.enabled:
        return False, "AWS billing is configured ([aws] enabled = true)"
    if wh.has_real_data():
        return False, "the warehouse holds real samples or bills"
    return True, "no GPU, no cloud account and no real data: showing the demo fleet"


@dataclass
class DemoSeed:
    start: datetime
    end: datetime
    gpu_rows: int
    billing_rows: int
    seconds: float


def seed_demo(
    wh: Warehouse,
    cfg: Config,
    catalog: pl.DataFrame,
    *,
    now: datetime | None = None,
    progress: bool = True,
) -> DemoSeed | None:
    """Write the demo history (or the gap since the last demo sample) to the spool and ingest it.

    Returns None when the history is already current.
    """
    t0 = time.monotonic()
    now = now or datetime.now(UTC)
    last = wh.last_sample("demo")
    start, end = demo.history_window(now, cfg.demo.history_days, last)
    if end - start < timedelta(seconds=cfg.demo.history_interval_s):
        return None
    days = max(1, int((end - start).total_seconds() // 86400) + 1)
    bar = Progress("demo fleet history", days * len(demo.HOSTS)) if progress else None
    rows = 0
    for i, (host, frame) in enumerate(
        demo.history(start, end, interval_s=cfg.demo.history_interval_s, seed=cfg.demo.seed)
    ):
        spool.write_batch(cfg.spool_dir, "gpu_samples", frame, host)
        rows += frame.height
        if bar:
            bar.update(i + 1, f"{rows:,} samples")
    bills = demo.billing(start - timedelta(hours=1), end)
    if bills.height:
        spool.write_batch(cfg.spool_dir, "billing_items", bills, "demo-billing")
    if bar:
        bar.finish(f"{rows:,} samples, {bills.height} bill lines")
    cycle(wh, cfg, catalog, progress=progress, force=True)
    return DemoSeed(start, end, rows, bills.height, time.monotonic() - t0)


def demo_billing_tick(cfg: Config, now: datetime | None = None) -> int:
    """The live demo's billing pull: the last two hours' lines (replacing themselves by scope)."""
    now = now or datetime.now(UTC)
    bills = demo.billing(now - timedelta(hours=2), now)
    if bills.height:
        spool.write_batch(cfg.spool_dir, "billing_items", bills, "demo-billing")
    return bills.height


__all__ = [
    "LockHeld",
    "catalog_for",
    "cycle",
    "demo_billing_tick",
    "demo_decision",
    "ingest_now",
    "nvml_status",
    "open_warehouse",
    "seed_demo",
]
