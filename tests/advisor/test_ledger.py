"""The daily ledger's money, worked by hand."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from advisor.ledger import IDLE, UNTAGGED, daily_ledger, local_rates
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


# The cloud join (DESIGN.md §2): an instance's money split by GPU-seconds on it ------------------
BILL_SCHEMA = {
    "day": pl.Date,
    "workload": pl.String,
    "resource_id": pl.String,
    "currency": pl.String,
    "effective_cost": pl.Float64,
    "billed_cost": pl.Float64,
    "list_cost": pl.Float64,
}


def bill(*rows):
    return pl.DataFrame(list(rows), schema=BILL_SCHEMA, orient="row")


def instance_minutes(host: str, spans: list[tuple[str | None, int]], day=DAY):
    """Consecutive one-minute rows on one GPU: (workload or None, minutes) in order."""
    frames, start = [], 0
    for workload, n in spans:
        m = minutes(host, "A100-40GB", workload, n, watts=400.0, util=0.5 if workload else 0.0)
        frames.append(
            m.with_columns(minute=pl.col("minute") + timedelta(minutes=start) + (day - DAY))
        )
        start += n
    return pl.concat(frames)


def ledger_of(usage, bills):
    rates = local_rates(usage.select("host", "gpu_model").unique(), Config(), CATALOG)
    return daily_ledger(usage, bills, rates, price_per_kwh=0.15, pue=1.4)


def by_workload(out):
    return {r["workload"]: r for r in out.iter_rows(named=True)}


def test_an_instances_bill_is_split_by_gpu_seconds_and_its_idle_time_stays_with_the_tag():
    # One GPU for an hour: train 30 min, eval 15 min, nothing 15 min; the day's bill is $12
    # (billed $15, list $20), tagged workload=train.
    usage = instance_minutes("i-1", [("train", 30), ("eval", 15), (None, 15)])
    out = ledger_of(usage, bill((date(2026, 11, 20), "train", "i-1", "USD", 12.0, 15.0, 20.0)))
    rows = by_workload(out)
    assert set(rows) == {"train", "eval"}
    train, evaluation = rows["train"], rows["eval"]
    # train: its 30 min (12 x 30/60 = $6) + the idle 15 min it owns (12 x 15/60 = $3)
    assert train["cost_usd"] == pytest.approx(9.0)
    assert train["idle_cost_usd"] == pytest.approx(3.0)
    assert train["gpu_hours"] == pytest.approx(0.75) and train["idle_gpu_hours"] == pytest.approx(
        0.25
    )
    assert train["busy_gpu_hours"] == pytest.approx(0.25)  # 30 min at 50 %
    assert train["billed_cost_usd"] == pytest.approx(15.0 * 45 / 60)
    assert train["list_cost_usd"] == pytest.approx(20.0 * 45 / 60)
    assert evaluation["cost_usd"] == pytest.approx(12.0 * 15 / 60)
    assert evaluation["idle_cost_usd"] == 0.0 and evaluation["gpu_hours"] == pytest.approx(0.25)
    assert out["cost_usd"].sum() == pytest.approx(12.0)
    assert set(out["placement"]) == {"cloud"}


def test_a_list_cost_the_bill_does_not_give_stays_unknown_not_zero():
    # Cost Explorer gives no ListCost: the day's $12 (billed $15) of i-1, train for the whole
    # hour, has list cost null in the ledger, not $0 (which would read as a $12 discount).
    usage = instance_minutes("i-1", [("train", 60)])
    out = ledger_of(usage, bill((date(2026, 11, 20), "train", "i-1", "USD", 12.0, 15.0, None)))
    train = by_workload(out)["train"]
    assert (train["cost_usd"], train["billed_cost_usd"]) == pytest.approx((12.0, 15.0))
    assert train["list_cost_usd"] is None
    # A bill without telemetry (an instance no agent runs on) keeps it unknown as well.
    out = ledger_of(usage, bill((date(2026, 11, 20), "eval", "i-2", "USD", 3.0, 3.0, None)))
    assert by_workload(out)["eval"]["list_cost_usd"] is None


def test_an_untagged_instances_idle_time_goes_to_untagged():
    usage = instance_minutes("i-2", [("notebook", 20), (None, 40)])
    out = ledger_of(usage, bill((date(2026, 11, 20), None, "i-2", "USD", 6.0, 6.0, 6.0)))
    rows = by_workload(out)
    assert rows["notebook"]["cost_usd"] == pytest.approx(2.0)
    assert rows[UNTAGGED]["cost_usd"] == pytest.approx(4.0)
    assert rows[UNTAGGED]["idle_gpu_hours"] == pytest.approx(40 / 60)


def test_a_tag_changed_during_the_day_shares_the_idle_time_by_each_tags_money():
    # $6 of the day's lines say workload=a, $2 say workload=b; x ran 30 of the 60 minutes.
    usage = instance_minutes("i-3", [("x", 30), (None, 30)])
    out = ledger_of(
        usage,
        bill(
            (date(2026, 11, 20), "a", "i-3", "USD", 6.0, 6.0, 6.0),
            (date(2026, 11, 20), "b", "i-3", "USD", 2.0, 2.0, 2.0),
        ),
    )
    rows = by_workload(out)
    assert rows["x"]["cost_usd"] == pytest.approx(4.0)  # 8 x 30/60
    assert rows["x"]["gpu_hours"] == pytest.approx(0.5)  # counted once across both tags
    assert rows["a"]["cost_usd"] == pytest.approx(3.0) and rows["b"]["cost_usd"] == pytest.approx(
        1.0
    )
    assert rows["a"]["idle_gpu_hours"] == pytest.approx(0.375)
    assert rows["b"]["idle_gpu_hours"] == pytest.approx(0.125)
    assert out["gpu_hours"].sum() == pytest.approx(1.0)
    assert out["cost_usd"].sum() == pytest.approx(8.0)


def test_bills_without_telemetry_and_telemetry_without_bills():
    # Day 1: telemetry and a bill; day 2: telemetry only (the bill lags); a storage line with
    # no telemetry at all.
    usage = pl.concat(
        [
            instance_minutes("i-4", [("llm", 60)]),
            instance_minutes("i-4", [(None, 60)], day=DAY + timedelta(days=1)),
        ]
    )
    out = ledger_of(
        usage,
        bill(
            (date(2026, 11, 20), "llm", "i-4", "USD", 21.96, 21.96, 21.96),
            (date(2026, 11, 20), "llm", "vol-1", "USD", 0.40, 0.40, 0.40),
        ),
    )
    rows = {(r["day"], r["host"]): r for r in out.iter_rows(named=True)}
    assert rows[(date(2026, 11, 20), "i-4")]["cost_usd"] == pytest.approx(21.96)
    assert rows[(date(2026, 11, 20), "vol-1")]["cost_usd"] == pytest.approx(0.40)
    assert rows[(date(2026, 11, 20), "vol-1")]["gpu_hours"] == 0.0
    late = rows[(date(2026, 11, 21), "i-4")]
    assert late["workload"] == "llm"  # idle time of its instance, owner known from the bill
    assert late["cost_usd"] == 0.0 and late["idle_gpu_hours"] == pytest.approx(1.0)
    assert out["cost_usd"].sum() == pytest.approx(22.36)


def test_an_ec2_host_without_a_bill_yet_is_cloud_and_untagged():
    usage = instance_minutes("i-0abc1234def567890", [(None, 60)])
    out = ledger_of(usage, NO_BILLS)
    row = out.row(0, named=True)
    assert (row["placement"], row["workload"], row["cost_usd"]) == ("cloud", UNTAGGED, 0.0)


def test_local_rates_price_each_reported_name_at_its_class():
    """Real names resolve to their class (config/gpu_class.py); the reported memory splits the
    V100s; a configured host's own purchase_usd wins; a configured host reporting a name no
    class knows falls back to the class of its configured gpu_model; an unknown model on an
    unconfigured host is unpriced (capital 0, `priced` false)."""
    gpus = pl.DataFrame(
        {
            "host": ["a", "b", "b", "c", "d", "e"],
            "gpu_model": [
                "NVIDIA H100 80GB HBM3",
                "Tesla V100-PCIE",
                "Tesla V100-PCIE",
                "NVIDIA L40S",
                "Graphics Device",
                "Graphics Device",
            ],
            "mem_total_mib": [81559.0, 32510.0, 32510.0, 46068.0, 5912.0, 5912.0],
        }
    )
    cfg = replace(
        Config(),
        local=replace(
            Config().local,
            hosts=(
                LocalHost(name="c", gpu_model="L40S", gpu_count=4, purchase_usd=28_000.0),
                LocalHost(name="d", gpu_model="RTX 4090", depreciation_years=4.0),
            ),
        ),
    )
    rates = {r["host"]: r for r in local_rates(gpus, cfg, CATALOG).iter_rows(named=True)}
    assert {h: r["gpu_class"] for h, r in rates.items()} == {
        "a": "H100", "b": "V100-32GB", "c": "L40S", "d": "RTX 4090", "e": None,
    }  # fmt: skip
    three_years = 3 * 8760
    assert rates["a"]["capital_usd_per_gpu_hour"] == pytest.approx(30_000 / three_years)
    assert rates["b"]["capital_usd_per_gpu_hour"] == pytest.approx(1_500 / three_years)
    # host c: its own $28,000 for 4 GPUs = $7,000 each, not the catalog's $8,000
    assert rates["c"]["capital_usd_per_gpu_hour"] == pytest.approx(7_000 / three_years)
    # host d: "Graphics Device" is no class; its configured RTX 4090 ($1,599) over 4 years
    assert rates["d"]["capital_usd_per_gpu_hour"] == pytest.approx(1_599 / (4 * 8760))
    assert (rates["e"]["capital_usd_per_gpu_hour"], rates["e"]["priced"]) == (0.0, False)
    assert all(rates[h]["priced"] for h in "abcd")
    assert {r["ops_usd_per_gpu_hour"] for r in rates.values()} == {0.10}


def test_unpriced_local_hours_are_counted_in_the_ledger():
    """2 hours of an unknown model at 100 W: $0.10 operations + 0.1 kW x 1.4 x $0.15 = $0.121 an
    hour, $0.242, and all 2 GPU-hours unpriced; the H100 beside it is priced."""
    m = pl.concat(
        [
            minutes("e", "Graphics Device", "job", 120, watts=100.0, util=0.5),
            minutes("a", "NVIDIA H100 80GB HBM3", "job", 120, watts=700.0, util=0.5),
        ]
    )
    rates = local_rates(m.select("host", "gpu_model").unique(), Config(), CATALOG)
    out = daily_ledger(m, NO_BILLS, rates, price_per_kwh=0.15, pue=1.4)
    rows = {r["host"]: r for r in out.iter_rows(named=True)}
    assert rows["e"]["cost_usd"] == pytest.approx(0.242)
    assert rows["e"]["unpriced_gpu_hours"] == pytest.approx(2.0)
    # 30,000 / 26,280 + 0.10 + 0.7 x 0.21 = 1.388553 an hour: $2.777105 for 2 hours
    assert rows["a"]["cost_usd"] == pytest.approx(2.777105, abs=1e-6)
    assert rows["a"]["unpriced_gpu_hours"] == 0.0
