"""The daily ledger's money, worked by hand."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from advisor.ledger import IDLE, daily_ledger, local_rates
from config.catalog import load_catalog
from config.settings import Config, LocalHost

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "config" / "catalog.csv")
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def minutes(host: str, model: str, workload: str | None, n: int, watts: float, util: float):
    """n one-minute rollup rows of one GPU."""
    return pl.DataFrame(
        {
            "minute": [DAY + timedelta(minutes=i) for i in range(n)],
            "host": host,
            "gpu_uuid": f"GPU-{host}",
            "gpu_model": model,
            "workload": pl.Series([workload] * n, dtype=pl.String),
            "seconds": 60.0,
            "busy_seconds": 60.0 * util,
            "energy_j": 60.0 * watts,
        }
    )


NO_BILLS = pl.DataFrame(
    schema={
        "day": pl.Date,
        "workload": pl.String,
        "resource_id": pl.String,
        "currency": pl.String,
        "effective_cost": pl.Float64,
    }
)


def test_local_cost_is_capital_plus_operations_plus_measured_energy():
    cfg = Config()  # 3 years, $0.10 ops per GPU-hour
    m = minutes("ws1", "RTX 4090", "vision", 60, watts=300.0, util=0.5)
    rates = local_rates(m.select("host", "gpu_model").unique(), cfg, CATALOG)
    out = daily_ledger(m, NO_BILLS, rates, price_per_kwh=0.15, pue=1.4)
    row = out.row(0, named=True)
    capital = 1599 / (3 * 8760)  # $0.060845 per GPU-hour
    energy = 0.300 * 1.4 * 0.15  # 0.3 kWh for the hour x PUE x tariff = $0.063
    assert row["placement"] == "local" and row["workload"] == "vision"
    assert row["gpu_hours"] == pytest.approx(1.0)
    assert row["busy_gpu_hours"] == pytest.approx(0.5)
    assert row["cost_usd"] == pytest.approx(capital + 0.10 + energy)


def test_a_configured_host_uses_its_own_price_and_years():
    cfg = Config()
    cfg = replace(
        cfg,
        local=replace(
            cfg.local,
            hosts=(
                LocalHost(
                    name="dgx",
                    gpu_model="A100-80GB",
                    gpu_count=8,
                    purchase_usd=80000.0,
                    depreciation_years=4.0,
                    ops_usd_per_gpu_hour=0.2,
                ),
            ),
        ),
    )
    m = minutes("dgx", "A100-80GB", "train", 30, watts=0.0, util=1.0)
    rates = local_rates(m.select("host", "gpu_model").unique(), cfg, CATALOG)
    out = daily_ledger(m, NO_BILLS, rates, price_per_kwh=0.15, pue=1.4)
    per_hour = 80000 / 8 / (4 * 8760) + 0.2
    assert out["cost_usd"][0] == pytest.approx(0.5 * per_hour)


def test_unallocated_local_time_is_its_own_idle_row():
    cfg = Config()
    m = pl.concat(
        [
            minutes("ws1", "RTX 4090", "vision", 30, watts=300.0, util=0.8),
            minutes("ws1", "RTX 4090", None, 90, watts=30.0, util=0.0).with_columns(
                pl.col("minute") + timedelta(minutes=30)
            ),
        ]
    )
    rates = local_rates(m.select("host", "gpu_model").unique(), cfg, CATALOG)
    out = daily_ledger(m, NO_BILLS, rates, price_per_kwh=0.15, pue=1.4)
    by = {r["workload"]: r for r in out.iter_rows(named=True)}
    assert set(by) == {"vision", IDLE}
    assert by[IDLE]["gpu_hours"] == pytest.approx(1.5)
    capital = 1599 / (3 * 8760)
    assert by[IDLE]["cost_usd"] == pytest.approx(1.5 * (capital + 0.10) + 0.045 * 1.4 * 0.15)


def test_cloud_money_comes_from_the_bill_and_idle_instance_time_stays_with_its_owner():
    m = minutes("i-1", "A100-40GB", None, 60, watts=400.0, util=0.0)
    bills = pl.DataFrame(
        {
            "day": [date(2026, 11, 20)] * 3,
            "workload": ["llm", "llm", "untagged"],
            "resource_id": ["i-1", "i-1", "vol-9"],
            "currency": ["USD", "USD", "USD"],
            "effective_cost": [21.96, 21.96, 0.5],
        }
    )
    rates = local_rates(m.select("host", "gpu_model").unique(), Config(), CATALOG)
    out = daily_ledger(m, bills, rates, price_per_kwh=0.15, pue=1.4)
    rows = {(r["workload"], r["host"]): r for r in out.iter_rows(named=True)}
    assert rows[("llm", "i-1")]["placement"] == "cloud"
    assert rows[("llm", "i-1")]["gpu_hours"] == pytest.approx(1.0)
    assert rows[("llm", "i-1")]["cost_usd"] == pytest.approx(43.92)  # energy is in the bill
    assert rows[("untagged", "vol-9")]["cost_usd"] == pytest.approx(0.5)
    assert out["cost_usd"].sum() == pytest.approx(44.42)  # every dollar in exactly one row


def test_other_currencies_are_never_added_to_dollars():
    bills = pl.DataFrame(
        {
            "day": [date(2026, 11, 20)] * 2,
            "workload": ["a", "b"],
            "resource_id": ["r1", "r2"],
            "currency": ["USD", "CAD"],
            "effective_cost": [10.0, 99.0],
        }
    )
    empty = minutes("x", "H100", None, 1, 0.0, 0.0).clear()
    out = daily_ledger(
        empty, bills, local_rates(empty, Config(), CATALOG), price_per_kwh=0.15, pue=1.4
    )
    assert out["cost_usd"].sum() == pytest.approx(10.0)
