"""Money is conserved (Hypothesis): local workloads + `__idle__` add up to the local asset cost,
and cloud workloads + `untagged` add up to the imported EffectiveCost, whatever the data."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.attribution import IDLE, hourly_usage
from advisor.ledger import UNTAGGED, daily_ledger, local_rates
from config.catalog import load_catalog
from config.settings import Config

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "config" / "catalog.csv")
T0 = datetime(2026, 11, 20, tzinfo=UTC)
PRICE, PUE = 0.15, 1.4
# Purchase prices of the catalog (the A100-40GB and the unknown model have none: capital 0).
PURCHASE = {"RTX 4090": 1599.0, "A100-80GB": 12000.0, "A100-40GB": 0.0, "Mystery GPU": 0.0}
OPS = 0.10  # Config() default, per GPU-hour
YEARS = 3.0

MINUTE_SCHEMA = {
    "minute": pl.Datetime("us", "UTC"),
    "host": pl.String,
    "gpu_uuid": pl.String,
    "gpu_model": pl.String,
    "workload": pl.String,
    "seconds": pl.Float64,
    "busy_seconds": pl.Float64,
    "energy_j": pl.Float64,
}


@st.composite
def local_minutes(draw):
    rows = []
    for _ in range(draw(st.integers(1, 40))):
        host = draw(st.sampled_from(["ws1", "ws2", "dgx"]))
        model = {"ws1": "RTX 4090", "ws2": "Mystery GPU", "dgx": "A100-80GB"}[host]
        seconds = draw(st.floats(0.5, 60.0))
        rows.append(
            (
                T0 + timedelta(minutes=draw(st.integers(0, 3 * 1440))),
                host,
                f"{host}-gpu{draw(st.integers(0, 2))}",
                model,
                draw(st.sampled_from([None, "a", "b", "unattributed:bob"])),
                seconds,
                seconds * draw(st.floats(0.0, 1.0)),
                seconds * draw(st.floats(0.0, 700.0)),
            )
        )
    return pl.DataFrame(rows, schema=MINUTE_SCHEMA, orient="row")


def asset_cost(m: pl.DataFrame) -> float:
    """Sampled GPU time at purchase / (3 y x 8,760 h) + $0.10 per GPU-hour, plus energy."""
    total = 0.0
    for r in m.iter_rows(named=True):
        rate = PURCHASE[r["gpu_model"]] / (YEARS * 8760) + OPS
        total += r["seconds"] / 3600 * rate + r["energy_j"] / 3.6e6 * PUE * PRICE
    return total


NO_BILLS = pl.DataFrame(
    schema={
        "day": pl.Date,
        "workload": pl.String,
        "resource_id": pl.String,
        "currency": pl.String,
        "effective_cost": pl.Float64,
    }
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@SETTINGS
@given(local_minutes())
def test_local_workloads_and_idle_add_up_to_the_local_asset_cost(m):
    rates = local_rates(m.select("host", "gpu_model").unique(), Config(), CATALOG)
    for usage in (m, hourly_usage(m)):  # minute rows, and through the hourly attribution
        out = daily_ledger(usage, NO_BILLS, rates, price_per_kwh=PRICE, pue=PUE)
        assert set(out["placement"]) == {"local"}
        assert out["cost_usd"].sum() == pytest.approx(asset_cost(m), rel=1e-9, abs=1e-9)
        assert out["gpu_hours"].sum() == pytest.approx(m["seconds"].sum() / 3600, rel=1e-9)
        idle = out.filter(pl.col("workload") == IDLE)
        unallocated = m.filter(pl.col("workload").is_null())
        assert idle["gpu_hours"].sum() == pytest.approx(
            unallocated["seconds"].sum() / 3600, rel=1e-9, abs=1e-12
        )
        assert idle["cost_usd"].sum() == pytest.approx(asset_cost(unallocated), abs=1e-9)


@st.composite
def cloud_case(draw):
    days = [date(2026, 11, 20) + timedelta(days=i) for i in range(3)]
    bills = [
        (
            draw(st.sampled_from(days)),
            draw(st.sampled_from([None, "a", "b", UNTAGGED])),
            draw(st.sampled_from(["i-1", "i-2", "vol-1", None])),
            draw(st.sampled_from(["USD", "USD", "USD", "EUR"])),
            draw(st.floats(-50.0, 500.0)),
        )
        for _ in range(draw(st.integers(0, 12)))
    ]
    usage = []
    for _ in range(draw(st.integers(0, 30))):
        seconds = draw(st.floats(1.0, 60.0))
        usage.append(
            (
                T0 + timedelta(minutes=draw(st.integers(0, 3 * 1440 - 1))),
                draw(st.sampled_from(["i-1", "i-2"])),
                f"gpu{draw(st.integers(0, 3))}",
                "A100-40GB",
                draw(st.sampled_from([None, "a", "c"])),
                seconds,
                seconds / 2,
                seconds * 300.0,
            )
        )
    bill_frame = pl.DataFrame(
        bills,
        schema={
            "day": pl.Date,
            "workload": pl.String,
            "resource_id": pl.String,
            "currency": pl.String,
            "effective_cost": pl.Float64,
        },
        orient="row",
    ).with_columns(
        billed_cost=pl.col("effective_cost") * 1.1, list_cost=pl.col("effective_cost") * 1.3
    )
    return pl.DataFrame(usage, schema=MINUTE_SCHEMA, orient="row"), bill_frame


@pytest.mark.slow
@SETTINGS
@given(cloud_case())
def test_cloud_workloads_and_untagged_add_up_to_the_imported_effective_cost(case):
    usage, bills = case
    # The bill names every instance with telemetry here, so all money and hours are cloud.
    bills = pl.concat(
        [
            bills,
            pl.DataFrame(
                {
                    "day": [date(2026, 11, 19)] * 2,
                    "workload": ["a", None],
                    "resource_id": ["i-1", "i-2"],
                    "currency": ["USD", "USD"],
                    "effective_cost": [0.0, 0.0],
                    "billed_cost": [0.0, 0.0],
                    "list_cost": [0.0, 0.0],
                }
            ),
        ]
    )
    rates = local_rates(usage.select("host", "gpu_model").unique(), Config(), CATALOG)
    out = daily_ledger(usage, bills, rates, price_per_kwh=PRICE, pue=PUE)
    usd = bills.filter(pl.col("currency") == "USD")
    assert set(out["placement"]) <= {"cloud"}
    assert out["cost_usd"].sum() == pytest.approx(usd["effective_cost"].sum(), abs=1e-6)
    assert out["billed_cost_usd"].sum() == pytest.approx(usd["billed_cost"].sum(), abs=1e-6)
    assert out["list_cost_usd"].sum() == pytest.approx(usd["list_cost"].sum(), abs=1e-6)
    assert out["gpu_hours"].sum() == pytest.approx(usage["seconds"].sum() / 3600, abs=1e-9)
    # Per day and resource too: every dollar of an instance's day lands on that instance's rows.
    per_resource = usd.group_by("day", "resource_id").agg(pl.col("effective_cost").sum())
    ledger_per = out.group_by("day", "host").agg(pl.col("cost_usd").sum())
    joined = per_resource.join(
        ledger_per,
        left_on=["day", "resource_id"],
        right_on=["day", "host"],
        how="left",
        nulls_equal=True,
    )
    for row in joined.iter_rows(named=True):
        assert row["cost_usd"] == pytest.approx(row["effective_cost"], abs=1e-6)
    # Nobody but a process's workload, a tag's workload or `untagged` gets money.
    allowed = {"a", "b", "c", UNTAGGED}
    assert set(out["workload"]) <= allowed
