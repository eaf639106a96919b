"""Where the dashboard's data comes from: the published snapshot (read-only) and, for the live
tile, the newest spool files. Paths come from the environment `gpuledger dashboard` sets, else
from the configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import streamlit as st

from config.settings import load_config
from warehouse.live import latest_gpu_samples
from warehouse.snapshot import Snapshot, SnapshotMissing


@dataclass(frozen=True)
class Paths:
    snapshot: Path
    spool: Path
    refresh_s: float


@st.cache_resource
def paths() -> Paths:
    cfg = load_config(os.environ.get("GPULEDGER_CONFIG"), db=os.environ.get("GPULEDGER_DB"))
    return Paths(
        snapshot=Path(os.environ.get("GPULEDGER_SNAPSHOT") or cfg.snapshot_path),
        spool=Path(os.environ.get("GPULEDGER_SPOOL") or cfg.spool_dir),
        refresh_s=cfg.dashboard.refresh_s,
    )


@st.cache_resource
def snapshot() -> Snapshot:
    """One read-only connection per server; it reopens itself when the file is replaced."""
    return Snapshot(paths().snapshot)


def snapshot_ready() -> bool:
    return snapshot().exists()


def published_at() -> str:
    try:
        return snapshot().meta().get("published_at", "")
    except SnapshotMissing:
        return ""


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@st.cache_data(ttl=10, show_spinner=False)
def overview(
    start: date, end: date, version: str, filters: dict[str, list[str]] | None = None
) -> dict:
    """Everything the Overview page shows for the UTC days `start` to `end` (both included);
    `version` (the publish time) keys the cache."""
    snap = snapshot()
    since, until = _midnight(start), end + timedelta(days=1)
    filters = filters or {}
    return {
        "meta": snap.meta(),
        "totals": snap.ledger_totals(since, until, **filters),
        "daily": snap.daily_ledger(since, until, **filters),
        "cloud_by_workload": snap.daily_by_workload(since, "cloud", until, **filters),
        "gpus": snap.gpus_now(),
    }


@st.cache_data(ttl=10, show_spinner=False)
def ledger_totals(
    start: date, end: date, version: str, filters: dict[str, list[str]] | None = None
) -> dict[str, float]:
    """GPU-hours, busy GPU-hours, cloud and local cost of the UTC days `start` to `end` (both
    included), e.g. the period a view is compared with."""
    return snapshot().ledger_totals(_midnight(start), end + timedelta(days=1), **(filters or {}))


@st.cache_data(ttl=30, show_spinner=False)
def cloud_hosts(version: str) -> list[str]:
    """Hosts the bills name as cloud instances (the placement filter of the GPU tables)."""
    from warehouse import advisor_reads

    snap = snapshot()
    if not advisor_reads.has_advisor_tables(snap):
        return []
    return advisor_reads.instances(snap)["host"].to_list()


@st.cache_data(ttl=10, show_spinner=False)
def month_and_waste(
    start: date, end: date, version: str, filters: dict[str, list[str]] | None = None
) -> dict:
    """Spend since the first of this month (UTC) and the wasted high-end GPU time of the UTC
    days `start` to `end` (both included) as stored for every day (`checked` false on a
    snapshot without it)."""
    snap = snapshot()
    now = datetime.now(UTC)
    month = snap.ledger_totals(
        now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), **(filters or {})
    )
    waste = wasted(start, end + timedelta(days=1), version, filters)
    return {
        "month_usd": month["cloud_usd"] + month["local_usd"],
        "month_cloud_usd": month["cloud_usd"],
        "wasted_usd": waste["wasted_usd"],
        "wasted_gpu_hours": waste["wasted_gpu_hours"],
        "waste_checked": waste["checked"],
    }


@st.cache_data(ttl=10, show_spinner=False)
def wasted(
    since: datetime | date,
    until: date | None,
    version: str,
    filters: dict[str, list[str]] | None = None,
    by: tuple[str, ...] = (),
) -> dict:
    """The stored wasted high-end GPU time of the UTC days from `since` to `until` (exclusive;
    None: to the newest): `wasted_usd`, `wasted_gpu_hours`, `runs`, the rows per `by` (`rows`)
    and `checked` (false where the snapshot predates the stored waste: say "checking…")."""
    from warehouse.waste_reads import has_waste, waste_summary

    snap = snapshot()
    checked = has_waste(snap)
    rows = waste_summary(snap, since, until, by=by, **(filters or {}))
    return {
        "checked": checked,
        "wasted_usd": float(rows["wasted_usd"].sum()),
        "wasted_gpu_hours": float(rows["wasted_gpu_hours"].sum()),
        "runs": int(rows["runs"].sum()),
        "rows": rows,
    }


@st.cache_data(ttl=30, show_spinner=False)
def ledger_choices(version: str) -> dict[str, list[str]]:
    """Hosts, workloads and placements to filter by (none from a snapshot without a ledger)."""
    from warehouse import advisor_reads

    snap = snapshot()
    if not advisor_reads.has_advisor_tables(snap):
        return {}
    return snap.ledger_dimensions()


def live_gpus() -> pl.DataFrame:
    return latest_gpu_samples(paths().spool, within_s=max(30.0, paths().refresh_s * 10))


def live_processes() -> pl.DataFrame:
    from warehouse.live import latest_process_samples

    return latest_process_samples(paths().spool, within_s=max(30.0, paths().refresh_s * 10))


@st.cache_data(ttl=10, show_spinner=False)
def data_health(version: str) -> dict[str, pl.DataFrame]:
    from warehouse.snapshot import data_health_reads

    return data_health_reads(snapshot())


@st.cache_resource
def effective_config():
    """The configuration the dashboard runs with (read-only)."""
    return load_config(os.environ.get("GPULEDGER_CONFIG"), db=os.environ.get("GPULEDGER_DB"))


def lake_enabled() -> bool:
    return bool(effective_config().lake.enabled)


@st.cache_resource
def _lake():
    """The lake, opened once per server (a reader: it never creates a table)."""
    from warehouse.lake import open_lake

    return open_lake(effective_config())


@st.cache_data(ttl=60, show_spinner=False)
def lake_hour(host: str, hour: datetime) -> pl.DataFrame:
    """Raw GPU samples of `host` in the hour from `hour`, from the lake."""
    return _lake().raw_for(host, hour)
