"""Shared fixtures: small real DuckDB warehouses built in a temporary directory."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.settings import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REALDATA = FIXTURES / "realdata"
# What docs/demo-fleet.md says each demo workload should be told to do.
DEMO_INTENDED_ACTIONS = {
    "llm-pretrain": "buy_local",
    "clinical-nlp": "move_to_local",
    "research-notebook": "downsize",
    "chat-inference": "downsize",
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
def demo_warehouse(small_demo_cfg: Config) -> Config:
    """A warehouse seeded with one demo day, ingested, with a published snapshot."""
    from cli import app

    catalog = app.catalog_for(small_demo_cfg)
    with app.open_warehouse(small_demo_cfg) as wh:
        app.seed_demo(
            wh,
            small_demo_cfg,
            catalog,
            progress=False,
            now=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        )
    return small_demo_cfg
