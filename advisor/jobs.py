"""The periodic advisor jobs: read through warehouse/, compute with the pure functions, store."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import polars as pl

from advisor.ledger import daily_ledger, local_rates
from config.settings import Config
from warehouse.store import Warehouse

log = logging.getLogger(__name__)


def refresh_ledger(wh: Warehouse, cfg: Config, catalog: pl.DataFrame, *, days: int) -> int:
    """Recompute the daily ledger for the last `days` days; returns the rows stored."""
    now = datetime.now(UTC)
    since = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    minutes = wh.gpu_minutes_since(since)
    bills = wh.billing_daily(since, now + timedelta(days=1))
    rates = local_rates(minutes.select("host", "gpu_model").unique(), cfg, catalog)
    ledger = daily_ledger(
        minutes, bills, rates, price_per_kwh=cfg.energy.price_per_kwh, pue=cfg.energy.pue
    )
    wh.replace_result("results_daily_ledger", ledger)
    return ledger.height
