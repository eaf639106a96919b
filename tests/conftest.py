"""Shared fixtures: small real DuckDB warehouses built in a temporary directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.settings import Config, load_config
from tests.clock import (
    CHECK_DATES,
    ENV_NOW,
    ENV_TZ,
    parse_instant,
    pinned_clock,
    pinned_now,
    stamp_now,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REALDATA = FIXTURES / "realdata"
# The demo warehouse's last minute: a Wednesday (tests read the weekday's pattern).
DEMO_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# What docs/demo-fleet.md says each demo workload should be told to do.
DEMO_INTENDED_ACTIONS = {
    "llm-pretrain": "buy_local",
    "clinical-nlp": "move_to_local",
    "research-notebook": "downsize",
    "chat-inference": "move_to_cloud",
    "weekly-sweep": "keep",
    "batch-queue": "keep",
    "vision-dev": "keep",
}

# No test may ever reach a real AWS account or the instance metadata service.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)
os.environ.pop("GPULEDGER_CONFIG", None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshots",
        metavar="DIR",
        default=None,
        help="browser tests save full-page screenshots of the dashboard pages into DIR",
    )
    parser.addoption(
        "--pinned-now",
        metavar="INSTANT",
        default=None,
        help=f"the instant pinned tests run at, e.g. 2028-02-29T12:00:00Z (or ${ENV_NOW}; "
        "default: tests/clock.py DEFAULT_NOW)",
    )
    parser.addoption(
        "--pinned-tz",
        metavar="ZONE",
        default=None,
        help=f"the time zone pinned tests run in (or ${ENV_TZ}; default Europe/Berlin)",
    )
    parser.addoption(
        "--pinned-dates",
        action="store_true",
        help="run every date_sensitive test at each of tests/clock.py CHECK_DATES",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "date_sensitive: reads the date; runs at the pinned instant (tests/clock.py), and "
        "`make test-dates` runs it at several (--pinned-dates)",
    )
    now, tz = config.getoption("pinned_now"), config.getoption("pinned_tz")
    if now:
        try:
            parse_instant(now)
        except ValueError as exc:
            raise pytest.UsageError(f"--pinned-now: {exc}") from None
        os.environ[ENV_NOW] = now
    if tz:
        os.environ[ENV_TZ] = tz


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """With --pinned-dates, each date_sensitive test runs once per check date; fixtures that
    depend on `pinned_instant` (module-wide warehouses) are built again for each date."""
    if not metafunc.config.getoption("pinned_dates"):
        return
    if metafunc.definition.get_closest_marker("date_sensitive") is None:
        return
    metafunc.parametrize(
        "pinned_instant",
        list(CHECK_DATES.values()),
        ids=list(CHECK_DATES),
        indirect=True,
        scope="session",
    )


@pytest.fixture(scope="session")
def pinned_instant(request: pytest.FixtureRequest) -> datetime:
    """The instant pinned tests (and the module-wide fixtures they use) run at."""
    return getattr(request, "param", None) or pinned_now()


@pytest.fixture
def clock(pinned_instant: datetime) -> Iterator[datetime]:
    """The clock pinned at `pinned_instant` (ticking from there) for this test; the instant."""
    with pinned_clock(pinned_instant) as at:
        yield at


@pytest.fixture(autouse=True)
def _pin_date_sensitive(request: pytest.FixtureRequest, pinned_instant: datetime) -> Iterator[None]:
    """A date_sensitive test runs with the clock pinned, from before its first fixture."""
    if request.node.get_closest_marker("date_sensitive") is None:
        yield
        return
    with pinned_clock(pinned_instant):
        yield


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    """The shipped configuration with the warehouse in a temporary directory."""
    return load_config(
        ROOT / "config" / "gpuledger.toml", db=tmp_path / "data" / "warehouse.duckdb"
    )


@pytest.fixture
def small_demo_cfg(cfg: Config) -> Config:
    """One day of demo history at one sample a minute: a real but quick warehouse."""
    return replace(cfg, demo=replace(cfg.demo, history_days=1, history_interval_s=60))


@pytest.fixture
def demo_warehouse(small_demo_cfg: Config) -> Iterator[Config]:
    """A warehouse seeded with one demo day up to DEMO_NOW, ingested, with a published snapshot;
    the test runs with the clock pinned at DEMO_NOW (the snapshot's window, ages and "today"
    follow the demo day, whatever today's date)."""
    from cli import app

    catalog = app.catalog_for(small_demo_cfg)
    with pinned_clock(DEMO_NOW):
        with app.open_warehouse(small_demo_cfg) as wh:
            app.seed_demo(wh, small_demo_cfg, catalog, progress=False, now=DEMO_NOW)
        stamp_now(small_demo_cfg.snapshot_path)
        yield small_demo_cfg
