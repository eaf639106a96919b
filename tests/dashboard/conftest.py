"""Dashboard fixtures: a demo snapshot, the environment the dashboard reads, clean caches, and the
figures the Overview should show, computed straight from the snapshot file with DuckDB."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import streamlit as st

from cli import app
from cli.daemon import dashboard_env
from config.settings import Config, load_config
from tests.clock import pinned_clock, stamp_now

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "streamlit_app.py"
DAYS = 7  # the Overview's window (dashboard/pages/overview.py)
DASHBOARD_VARS = ("GPULEDGER_CONFIG", "GPULEDGER_DB", "GPULEDGER_SNAPSHOT", "GPULEDGER_SPOOL")


@pytest.fixture(scope="session")
def screenshots_dir(pytestconfig: pytest.Config) -> Path | None:
    """The --screenshots directory, or None (also when the option was not registered)."""
    value = pytestconfig.getoption("screenshots", default=None)
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute():
        path = Path(pytestconfig.invocation_params.dir) / path
    path.mkdir(parents=True, exist_ok=True)
    return path


# Warehouses ------------------------------------------------------------------------------------
def demo_config(base: Path) -> Config:
    """The shipped configuration, warehouse under `base`, one demo day at one sample a minute."""
    cfg = load_config(ROOT / "config" / "gpuledger.toml", db=base / "data" / "warehouse.duckdb")
    return replace(cfg, demo=replace(cfg.demo, history_days=1, history_interval_s=60))


def age_spool(cfg: Config, seconds: float = 3600.0) -> None:
    """Back-date the spool files, so the live tile ignores the seeded history and shows the
    snapshot until a test writes a fresh batch."""
    old = time.time() - seconds
    for path in cfg.spool_dir.rglob("*.parquet"):
        os.utime(path, (old, old))


def seed_demo_snapshot(cfg: Config, at: datetime | None = None) -> Config:
    """One demo day ending at `at` (the clock pinned there; None: the real clock), so it falls
    in the 7-day window of pages that run at that clock, ingested, published; the spool files
    are back-dated and the snapshot stamped with that clock."""
    with pinned_clock(at) if at else nullcontext():
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        with app.open_warehouse(cfg) as wh:
            app.seed_demo(wh, cfg, app.catalog_for(cfg), progress=False, now=now)
        assert cfg.snapshot_path.exists()
        age_spool(cfg)
        stamp_now(cfg.snapshot_path)
    return cfg


def screenshot_days(cfg: Config, pytestconfig: pytest.Config) -> Config:
    if pytestconfig.getoption("screenshots", default=None):  # pictures for docs/: two weeks
        return replace(cfg, demo=replace(cfg.demo, history_days=14))
    return cfg


@pytest.fixture(scope="module")
def demo_snapshot(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config, pinned_instant
) -> Config:
    """Like tests/conftest.py's demo_warehouse (one demo day at 60 s, published snapshot), but
    built once per module, ending at the pinned instant the dashboard tests run at (see
    `_pinned_clock`); its spool files are back-dated."""
    cfg = screenshot_days(demo_config(tmp_path_factory.mktemp("dashboard-demo")), pytestconfig)
    return seed_demo_snapshot(cfg, pinned_instant)


@pytest.fixture(scope="module")
def live_demo_snapshot(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Config:
    """demo_snapshot at the real clock, for a dashboard served by another process (which reads
    the real clock): one demo day ending at the current minute."""
    cfg = screenshot_days(demo_config(tmp_path_factory.mktemp("dashboard-live")), pytestconfig)
    cfg = seed_demo_snapshot(cfg)
    if pytestconfig.getoption("screenshots", default=None):  # pictures after the first check
        first_alert_check(cfg)
    return cfg


def first_alert_check(cfg: Config) -> None:
    """The daemon's first alert check on the seeded fleet, then the snapshot published again, as
    a dashboard a minute after `make run` shows it (not "checking…")."""
    from advisor.alerts import AlertService

    catalog = app.catalog_for(cfg)
    with app.open_warehouse(cfg) as wh:
        service = AlertService(replace(cfg, alerts=replace(cfg.alerts, log=False)), catalog)
        try:
            service.run_once(wh, now=datetime.now(UTC).replace(second=0, microsecond=0))
        finally:
            service.close()
        app.cycle(wh, cfg, catalog, force=True)
    age_spool(cfg)
    stamp_now(cfg.snapshot_path)


@pytest.fixture(autouse=True)
def _pinned_clock(request: pytest.FixtureRequest) -> None:
    """The in-process dashboard reads the clock (its default ranges, ages, the live tile): its
    tests run at the pinned instant; browser tests talk to a server in another process."""
    if request.node.get_closest_marker("browser") is None:
        request.getfixturevalue("clock")


@pytest.fixture
def empty_snapshot(cfg: Config) -> Config:
    """`gpuledger init` on an empty warehouse: a published snapshot that holds no samples."""
    cfg.spool_dir.mkdir(parents=True, exist_ok=True)
    with app.open_warehouse(cfg) as wh:
        app.cycle(wh, cfg, app.catalog_for(cfg), force=True)
    assert cfg.snapshot_path.exists()
    return cfg


# The in-process dashboard (AppTest) -------------------------------------------------------------
def clear_streamlit_caches() -> None:
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def dashboard_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Point the in-process dashboard at a configuration (as `gpuledger dashboard` would);
    keyword overrides replace single variables, e.g. GPULEDGER_SPOOL=... ."""

    def use(cfg: Config, **overrides: str | os.PathLike) -> None:
        env = dashboard_env(cfg)
        for name in DASHBOARD_VARS:
            if name in overrides:
                monkeypatch.setenv(name, str(overrides[name]))
            elif name in env:
                monkeypatch.setenv(name, env[name])
            else:
                monkeypatch.delenv(name, raising=False)
        clear_streamlit_caches()

    clear_streamlit_caches()
    yield use
    clear_streamlit_caches()


# Expected figures --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OverviewFigures:
    gpu_hours: float
    busy_gpu_hours: float
    cloud_usd: float
    local_usd: float
    data_as_of: str
    placements: frozenset[str]
    gpus: frozenset[tuple[str, int]]  # (host, gpu index) in gpu_latest
    since: date  # the first UTC day the figures cover

    # As dashboard/pages/overview.py formats them.
    @property
    def metrics(self) -> dict[str, str]:
        return {
            f"GPU-hours, last {DAYS} days": f"{self.gpu_hours:,.0f}",
            f"Busy, last {DAYS} days": f"{self.busy_gpu_hours / self.gpu_hours:.0%}"
            if self.gpu_hours
            else "n/a",
            f"Cloud spend, last {DAYS} days": f"${self.cloud_usd:,.0f}",
            f"Local cost, last {DAYS} days": f"${self.local_usd:,.0f}",
        }

    @property
    def as_of_caption(self) -> str:
        return f"Data as of {self.data_as_of[:19].replace('T', ' ')} UTC"


def overview_figures(snapshot_path: Path) -> OverviewFigures:
    """Read the snapshot file directly (not through warehouse.snapshot.Snapshot)."""
    since = datetime.now(UTC).date() - timedelta(days=DAYS - 1)  # today and the 6 days before
    con = duckdb.connect(str(snapshot_path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute(
            "SELECT placement, gpu_hours, busy_gpu_hours, cost_usd FROM daily_ledger"
            " WHERE day >= ?",
            [since],
        ).fetchall()
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        gpus = con.execute("SELECT DISTINCT host, gpu_index FROM gpu_latest").fetchall()
    finally:
        con.close()
    return OverviewFigures(
        gpu_hours=sum(r[1] or 0 for r in rows),
        busy_gpu_hours=sum(r[2] or 0 for r in rows),
        cloud_usd=sum(r[3] or 0 for r in rows if r[0] == "cloud"),
        local_usd=sum(r[3] or 0 for r in rows if r[0] == "local"),
        data_as_of=meta.get("data_as_of", ""),
        placements=frozenset(r[0] for r in rows),
        gpus=frozenset((h, int(i)) for h, i in gpus),
        since=since,
    )
