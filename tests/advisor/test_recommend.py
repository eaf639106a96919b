"""Recommendations, table-driven, with the money worked by hand (monthly = 730 h; local GPUs at
catalog purchase price over 3 years + $0.10 per GPU-hour; energy at $0.15/kWh and PUE 1.4)."""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from advisor.attribution import IDLE
from advisor.ledger import daily_ledger, held_usage, host_placements, local_rates
from advisor.recommend import Params, Window, _confidence, observed_window, recommendations
from config.catalog import load_catalog
from config.settings import Config

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "config" / "catalog.csv")
T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
GIB = 1024.0
ENERGY = 1.4 * 0.15 / 1000  # USD per watt-hour after PUE

USAGE_SCHEMA = {
    "hour": pl.Datetime("us", "UTC"),
    "host": pl.String,
    "gpu_uuid": pl.String,
    "gpu_model": pl.String,
    "workload": pl.String,
    "seconds": pl.Float64,
    "busy_seconds": pl.Float64,
    "energy_j": pl.Float64,
    "mem_peak_mib": pl.Float64,
    "mem_total_mib": pl.Float64,
}
BILL_SCHEMA = {
    "day": pl.Date,
    "workload": pl.String,
    "resource_id": pl.String,
    "currency": pl.String,
    "effective_cost": pl.Float64,
    "billed_cost": pl.Float64,
    "list_cost": pl.Float64,
}

# hour index since T0 -> (workload or None, busy fraction); None: the GPU is absent that hour
Pattern = Callable[[int], tuple[str | None, float] | None]


def gpus(host, model, n, days, pattern: Pattern, *, watts, mem_gib, total_gib=80.0):
    rows = []
    for h in range(days * 24):
        state = pattern(h)
        if state is None:
            continue
        workload, busy = state
        for g in range(n):
            rows.append(
                (
                    T0 + timedelta(hours=h),
                    host,
                    f"{host}-{g}",
                    model,
                    workload or IDLE,
                    3600.0,
                    3600.0 * busy,
                    3600.0 * watts,
                    mem_gib * GIB if workload else 500.0,
                    total_gib * GIB,
                )
            )
    return rows


def usage_of(*groups):
    return pl.DataFrame([r for g in groups for r in g], schema=USAGE_SCHEMA, orient="row")


def hourly_bill(resource, workload, usd_per_hour, days, runs: Callable[[int], bool] = None):
    per_day: dict[date, float] = {}
    for h in range(days * 24):
        if runs is None or runs(h):
            day = (T0 + timedelta(hours=h)).date()
            per_day[day] = per_day.get(day, 0.0) + usd_per_hour
    return [(d, workload, resource, "USD", c, c, c) for d, c in per_day.items()]


def advise(usage, bills=(), instances=(), *, days, params=Params(), sensitive=()):
    bills = pl.DataFrame(list(bills), schema=BILL_SCHEMA, orient="row")
    placements = host_placements(usage["host"], bills)
    held = held_usage(usage, placements)
    rates = local_rates(held.select("host", "gpu_model").unique(), Config(), CATALOG)
    ledger = daily_ledger(held, bills, rates, price_per_kwh=0.15, pue=1.4)
    inst = pl.DataFrame(
        list(instances), schema={"host": pl.String, "instance_type": pl.String}, orient="row"
    )
    recs, alts = recommendations(
        held, ledger, inst, CATALOG, params, set(sensitive), end=T0 + timedelta(days=days)
    )
    return {r["workload"]: r for r in recs.iter_rows(named=True)}, alts


def test_p4d_busy_22h_a_day_at_85_percent_for_30_days_buys_local_a100s():
    def train(h):
        return ("train", 0.85) if h % 24 < 22 else (None, 0.0)

    usage = usage_of(
        gpus("i-p4d", "A100-40GB", 8, 30, train, watts=300.0, mem_gib=30.0, total_gib=40)
    )
    recs, alts = advise(
        usage,
        hourly_bill("i-p4d", "train", 21.96, 30),
        [("i-p4d", "p4d.24xlarge")],
        days=30,
    )
    r = recs["train"]
    current = 21.96 * 24 * 30 / 720 * 730  # the bill over 720 h, scaled to 730 h
    assert r["current_monthly_cost_usd"] == pytest.approx(current) == pytest.approx(16030.80)
    assert r["busy_fraction"] == pytest.approx(22 * 0.85 / 24)
    assert r["duty_cycle"] == pytest.approx(22 / 24)
    assert r["gpus"] == 8 and r["gpu_hours_per_month"] == pytest.approx(8 * 730)
    # Buying 8 x A100-80GB ($12,000 each + 30 % for the server, network and rack around them =
    # $124,800): capital 124,800 / (3 x 8,760) x 730 = 3,466.67, operations 8 x 730 x 0.10 =
    # 584, energy 8 x 300 W x 730 h x 1.4 x $0.15/kWh = 367.92.
    capital, ops, energy = 124800 / 26280 * 730, 584.0, 8 * 300 * 730 * ENERGY
    assert energy == pytest.approx(367.92)
    assert r["action"] == "buy_local"
    assert r["alternative"] == "buy 8 × A100-80GB ($124,800)"
    assert r["alternative_monthly_cost_usd"] == pytest.approx(capital + ops + energy)
    assert r["monthly_savings_usd"] == pytest.approx(current - (capital + ops + energy))
    assert r["monthly_savings_usd"] == pytest.approx(11612.21, abs=0.01)
    # Pays back when the cash saved each month (the bill less operations and energy) has
    # covered the purchase: 124,800 / (16,030.80 - 584 - 367.92) = 8.28 months.
    assert r["break_even_months"] == pytest.approx(124800 / (current - ops - energy))
    assert r["break_even_months"] == pytest.approx(8.2765, abs=1e-3)
    assert r["upfront_usd"] == 124800.0
    assert r["gpus_after"] == 8 and r["assumption"] == "multi_gpu_job"  # busy together 22 h a day
    words = " ".join(r["reasons"])
    assert "$16,030.80" in words and "8.3 months" in words and "$11,612.21" in words
    # The L40S is cheaper to buy but too slow: 77.9 % busy x 1.00 / 0.58 = 134 % > 70 %.
    l40s = alts.filter(pl.col("option") == "buy 8 × L40S ($83,200)").row(0, named=True)
    assert not l40s["feasible"] and "too slow" in l40s["note"] and "134 %" in l40s["note"]


def notebook(h):
    return ("notebook", 0.03)


def test_a_notebook_busy_3_percent_on_an_h100_downsizes_to_an_l40s_instance():
    usage = usage_of(gpus("i-p5", "H100", 1, 7, notebook, watts=100.0, mem_gib=30.0))
    recs, alts = advise(
        usage, hourly_bill("i-p5", "notebook", 6.88, 7), [("i-p5", "p5.4xlarge")], days=7
    )
    r = recs["notebook"]
    assert r["current_monthly_cost_usd"] == pytest.approx(6.88 * 730)  # $5,022.40
    assert r["duty_cycle"] == 0.0  # never busy 10 % of an hour: buying is not on the table
    assert r["action"] == "downsize"
    # 30 GiB + 10 % = 33 GiB: an L40S (48 GiB) fits, a 24 GiB L4 does not; 3 % x 3.17 / 0.58
    # = 16 % of an L40S.
    assert r["alternative"] == "1 × g6e.xlarge (1 × L40S), on-demand"
    assert r["monthly_savings_usd"] == pytest.approx(6.88 * 730 - 1.861 * 730)  # $3,663.87
    assert r["break_even_months"] is None
    l4 = alts.filter(pl.col("option").str.starts_with("1 × g6.xlarge")).row(0, named=True)
    assert not l4["feasible"] and "33.0 GiB > 24 GiB" in l4["note"]


def test_the_same_notebook_moves_to_an_idle_local_l40s_at_the_cost_of_its_energy():
    idle_lab = gpus("lab", "L40S", 1, 7, lambda h: (None, 0.0), watts=35.0, mem_gib=0, total_gib=48)
    usage = usage_of(gpus("i-p5", "H100", 1, 7, notebook, watts=100.0, mem_gib=30.0), idle_lab)
    recs, _ = advise(
        usage, hourly_bill("i-p5", "notebook", 6.88, 7), [("i-p5", "p5.4xlarge")], days=7
    )
    r = recs["notebook"]
    # The lab's L40S was never held: its own average draw, 35 W, for the notebook's 730 h: $5.37
    # (not the 100 W the notebook draws on its H100).
    energy = 35 * 730 * ENERGY
    assert r["action"] == "move_to_local"
    assert r["alternative"] == "1 spare L40S on lab"
    assert r["alternative_monthly_cost_usd"] == pytest.approx(energy)
    assert r["monthly_savings_usd"] == pytest.approx(6.88 * 730 - energy)


def test_a_sensitive_workload_in_the_cloud_moves_to_local_even_when_that_is_dearer():
    def ocr(h):  # the instance runs 4 h a day, busy 60 %
        return ("patient-ocr", 0.6) if 9 <= h % 24 < 13 else None

    usage = usage_of(gpus("i-g4", "T4", 1, 7, ocr, watts=70.0, mem_gib=10.0, total_gib=16))
    recs, _ = advise(
        usage,
        hourly_bill("i-g4", "patient-ocr", 0.526, 7, lambda h: 9 <= h % 24 < 13),
        [("i-g4", "g4dn.xlarge")],
        days=7,
        sensitive={"patient-ocr"},
    )
    r = recs["patient-ocr"]
    held = 28 / 168 * 730  # 4 h a day, scaled to a month: 121.67 h
    current = 0.526 * held  # $63.99
    # $1,599 + 30 % for the workstation around it = $2,078.70: $57.74 + $73 + $1.79
    rtx = 1599 * 1.3 / 26280 * 730 + 730 * 0.10 + 70 * held * ENERGY
    assert r["current_monthly_cost_usd"] == pytest.approx(current)
    assert r["action"] == "move_to_local"
    assert r["alternative"] == "buy 1 × RTX 4090 ($2,079)"
    assert r["alternative_monthly_cost_usd"] == pytest.approx(rtx)
    assert r["monthly_savings_usd"] == pytest.approx(current - rtx) and current - rtx < 0
    words = " ".join(r["reasons"])
    assert "sensitive" in words and "must not run in the cloud" in words
    assert f"costs ${rtx - current:,.2f} a month more than now" in words


def dgx(batch_busy):
    def pattern_for(gpu):
        def pattern(h):
            return ("batch", batch_busy) if gpu == 0 else ("chat", 0.15)

        return pattern

    rows = []
    for gpu in (0, 1):
        for r in gpus("dgx", "A100-80GB", 1, 7, pattern_for(gpu), watts=100.0, mem_gib=9.0):
            rows.append((*r[:2], f"dgx-{gpu}", *r[3:]))
    return usage_of(rows)


def test_a_small_inference_on_a_full_a100_host_moves_to_the_cloud_and_frees_the_gpu():
    """A team with only local GPUs (no bill names a cloud) may be proposed every cloud: the
    cheapest L4 is Google Cloud's g2-standard-4 ($0.70683/h) before AWS's g6.xlarge ($0.8048).
    A local -> cloud move is `move_to_cloud`; it raises the workload's own spend, and the A100 it
    frees for the saturated queue is shown apart, as capacity freed for others."""
    recs, alts = advise(dgx(0.95), days=7)
    chat = recs["chat"]
    # Leaving saves its energy (100 W x 730 h) and hands the A100 to `batch` (95 % busy on a
    # host never idle), which would otherwise rent it: $27.45 / 8 GPUs x 730 h = $2,504.81 (the
    # cheapest A100-80GB per GPU of any cloud: p4de's $3.43 against Azure's $3.673).
    energy, credit, l4 = 100 * 730 * ENERGY, 27.45 / 8 * 730, 0.70683 * 730
    assert chat["action"] == "move_to_cloud"
    assert chat["alternative"] == "1 × g2-standard-4 (1 × L4), on-demand"
    # Its own cash: $15.33 of energy - $515.99 = -$500.66 (its spend rises); the team saves
    # -$500.66 + $2,504.81 = $2,004.15.
    assert chat["monthly_savings_usd"] == pytest.approx(energy - l4)
    assert chat["freed_capacity_usd"] == pytest.approx(credit)
    assert energy - l4 + credit == pytest.approx(2004.15, abs=0.01)
    assert "raises its own spend by $500.66 a month" in " ".join(chat["reasons"])
    assert "1 × g2-standard-4 on GCP at $0.7068/h on-demand × 730 h a month = $515.99" in " ".join(
        chat["reasons"]
    )
    # The T4 is cheaper but would run 15 % x 1.00 / 0.21 = 71 % busy, over the 70 % ceiling.
    t4 = alts.filter(
        (pl.col("workload") == "chat") & pl.col("option").str.starts_with("1 × g4dn")
    ).row(0, named=True)
    assert not t4["feasible"] and "71 %" in t4["note"]
    assert recs["batch"]["action"] == "keep"  # nobody saturated waits for its GPUs
    assert "$2,504.81" in " ".join(chat["reasons"])


def test_advisor_clouds_limits_what_is_proposed_and_lists_the_other_clouds():
    """With [advisor] clouds = ["aws"] the same chat workload goes to AWS's g6.xlarge
    ($0.8048 x 730 = $587.50: the team saves $15.33 + $2,504.81 - $587.50 = $1,932.64, of which
    its own cash -$572.17 and the A100 it frees $2,504.81); Google Cloud's cheaper g2-standard-4
    is still priced and listed, with its cloud, but never proposed."""
    recs, alts = advise(dgx(0.95), days=7, params=Params(clouds=("aws",)))
    chat = recs["chat"]
    energy, credit, l4 = 100 * 730 * ENERGY, 27.45 / 8 * 730, 0.8048 * 730
    assert chat["alternative"] == "1 × g6.xlarge (1 × L4), on-demand"
    assert chat["monthly_savings_usd"] == pytest.approx(energy - l4)
    assert chat["monthly_savings_usd"] + chat["freed_capacity_usd"] == pytest.approx(
        energy + credit - l4
    )
    mine = alts.filter(pl.col("workload") == "chat")
    g2 = mine.filter(pl.col("option") == "1 × g2-standard-4 (1 × L4), on-demand").row(0, named=True)
    assert g2["provider"] == "gcp" and not g2["feasible"]
    assert g2["monthly_cost_usd"] == pytest.approx(0.70683 * 730)  # $515.99
    assert "on GCP, not one of [advisor] clouds (aws)" in g2["note"]
    assert set(mine["provider"].drop_nulls()) == {"aws", "azure", "gcp"}
    assert (
        mine.filter(pl.col("kind") == "spare")["provider"].null_count()
        == mine.filter(pl.col("kind") == "spare").height
    )  # local options name no cloud


def test_a_cloud_workload_is_proposed_machines_of_the_clouds_its_bills_name():
    """[advisor] clouds empty: an AWS bill (p4d.24xlarge) settles the clouds to AWS; the Azure
    and Google Cloud machines are listed for comparison, none chosen."""
    from advisor.recommend.params import with_clouds

    settled = with_clouds(Params(), ["p4d.24xlarge", None], CATALOG)
    assert settled.clouds == ("aws",)
    assert with_clouds(Params(), ["Standard_NC24ads_A100_v4", "a2-highgpu-1g"], CATALOG).clouds == (
        "azure",
        "gcp",
    )
    assert with_clouds(Params(), ["m5.large"], CATALOG).clouds == ("aws", "azure", "gcp")
    assert with_clouds(Params(clouds=("gcp",)), ["p4d.24xlarge"], CATALOG).clouds == ("gcp",)


def test_without_a_saturated_neighbour_a_local_workload_keeps_its_paid_for_gpu():
    recs, _ = advise(dgx(0.40), days=7)
    chat = recs["chat"]
    assert chat["action"] == "keep" and chat["monthly_savings_usd"] == 0.0
    assert "leaving would save only its energy, $15.33 a month" in " ".join(chat["reasons"])


def test_a_saving_under_the_minimum_keeps_the_workload_where_it_is():
    def inference(h):
        return ("api", 0.20)

    usage = usage_of(gpus("i-g6", "L4", 1, 7, inference, watts=60.0, mem_gib=10.0, total_gib=24))
    args = (usage, hourly_bill("i-g6", "api", 0.8048, 7), [("i-g6", "g6.xlarge")])
    recs, _ = advise(*args, days=7)
    assert recs["api"]["action"] == "buy_local"  # an RTX 4090: saves ~$460 of $587.50
    strict = replace(Params(), min_saving_usd=1000.0)
    recs, _ = advise(*args, days=7, params=strict)
    assert recs["api"]["action"] == "keep"
    assert "at least $1,000 and 15 % ($1,000.00 here)" in " ".join(recs["api"]["reasons"])


def test_the_window_is_whole_days_the_data_covers():
    hours = pl.DataFrame(
        {"hour": [T0 + timedelta(hours=13), T0 + timedelta(days=3, hours=9)]},
        schema={"hour": pl.Datetime("us", "UTC")},
    )
    # Data from Monday 13:00 to Thursday 09:59: Tuesday and Wednesday are whole days.
    w = observed_window(hours, datetime(2026, 11, 30, tzinfo=UTC), 30)
    assert (w.first_day, w.end_day, w.hours) == (date(2026, 11, 3), date(2026, 11, 5), 48.0)
    # A window of 1 day keeps the newest.
    assert observed_window(hours, datetime(2026, 11, 30, tzinfo=UTC), 1).first_day == date(
        2026, 11, 4
    )
    counts = Window(date(2026, 11, 2), date(2026, 11, 16)).hour_of_week_counts()
    assert set(counts.values()) == {2} and len(counts) == 168


def test_confidence_grows_with_days_observed_and_falls_with_variability():
    steady = [24.0] * 30
    assert _confidence(steady[:7], 7, 30) == pytest.approx(7 / 30, abs=0.01)
    assert _confidence(steady, 30, 30) == 1.0
    bursty = [0.0, 0.0, 0.0, 0.0, 0.0, 40.0, 0.0] * 2  # weekly totals equal: still confident
    assert _confidence(bursty, 14, 30) == pytest.approx(14 / 30, abs=0.01)
    erratic = [0.0, 50.0, 3.0, 0.0, 40.0, 0.0, 1.0]
    assert _confidence(erratic, 7, 30) < _confidence(steady[:7], 7, 30)


def test_the_csv_export_has_one_row_per_workload_with_its_reasons():
    import csv
    import io

    from warehouse.advisor_reads import recommendations_csv

    usage = usage_of(gpus("i-p5", "H100", 1, 7, notebook, watts=100.0, mem_gib=30.0))
    bills = pl.DataFrame(hourly_bill("i-p5", "notebook", 6.88, 7), schema=BILL_SCHEMA, orient="row")
    placements = host_placements(usage["host"], bills)
    held = held_usage(usage, placements)
    rates = local_rates(held.select("host", "gpu_model").unique(), Config(), CATALOG)
    ledger = daily_ledger(held, bills, rates, price_per_kwh=0.15, pue=1.4)
    inst = pl.DataFrame({"host": ["i-p5"], "instance_type": ["p5.4xlarge"]})
    recs, _ = recommendations(
        held, ledger, inst, CATALOG, Params(), set(), end=T0 + timedelta(days=7)
    )
    (row,) = list(csv.DictReader(io.StringIO(recommendations_csv(recs))))
    assert row["workload"] == "notebook" and row["action"] == "downsize"
    assert row["monthly_savings_usd"] == "3663.87"
    assert row["reasons"].count(" | ") == len(recs["reasons"][0]) - 1


def with_uuid(rows, uuid):
    return [(*r[:2], uuid, *r[3:]) for r in rows]


def lab_l40s(days):
    """Three L40S on `lab`: lab-0 renders 08:00-16:00 at 250 W (90 % busy) and idles at 35 W
    otherwise; lab-1 idles at 35 W; lab-2 idles at 35 W and is replaced after day 3 by lab-2b
    (a new UUID in the same slot, not a fourth GPU)."""

    def render(h):
        return ("render", 0.9) if 8 <= h % 24 < 16 else None

    def between(h):
        return None if 8 <= h % 24 < 16 else (None, 0.0)

    def always(h):
        return (None, 0.0)

    def old_gpu(h):
        return (None, 0.0) if h < 72 else None

    def new_gpu(h):
        return None if h < 72 else (None, 0.0)

    rows = with_uuid(
        gpus("lab", "L40S", 1, days, render, watts=250.0, mem_gib=20, total_gib=48), "lab-0"
    )
    rows += with_uuid(
        gpus("lab", "L40S", 1, days, between, watts=35.0, mem_gib=0, total_gib=48), "lab-0"
    )
    rows += with_uuid(
        gpus("lab", "L40S", 1, days, always, watts=35.0, mem_gib=0, total_gib=48), "lab-1"
    )
    rows += with_uuid(
        gpus("lab", "L40S", 1, days, old_gpu, watts=35.0, mem_gib=0, total_gib=48), "lab-2"
    )
    rows += with_uuid(
        gpus("lab", "L40S", 1, days, new_gpu, watts=35.0, mem_gib=0, total_gib=48), "lab-2b"
    )
    return rows


def cloud_notebook(n, mem_gib=30.0):
    rows = []
    for g in range(n):
        one = gpus("i-p5", "H100", 1, 7, notebook, watts=100.0, mem_gib=mem_gib)
        rows += with_uuid(one, f"i-p5-{g}")
    return rows


def test_spare_capacity_counts_the_hosts_own_gpus_and_prices_their_own_power():
    """A notebook on 2 × H100 in the cloud (busy 3 %, 100 W each; $13.76/h) and the lab's
    three L40S. Every hour at least two L40S are idle (lab-1 and lab-2/2b while lab-0 renders),
    so the notebook fits there. The lab has 3 GPUs, not 4 UUIDs and not the notebook's 2. Its
    L40S draw 250 W while held (lab-0 rendering), so moving there adds
    2 × 250 W × 730 h × 1.4 PUE × $0.15/kWh = $76.65 a month (at the notebook's own 100 W it
    would read $30.66), and saves 2 × $6.88 × 730 h − $76.65 = $10,044.80 − $76.65 = $9,968.15."""
    usage = usage_of(cloud_notebook(2), lab_l40s(7))
    bill = hourly_bill("i-p5", "notebook", 2 * 6.88, 7)
    recs, alts = advise(usage, bill, [("i-p5", "p5.48xlarge")], days=7)
    r = recs["notebook"]
    energy = 2 * 250 * 730 * ENERGY
    assert energy == pytest.approx(76.65)
    assert r["gpus"] == 2
    assert r["action"] == "move_to_local" and r["alternative"] == "2 spare L40S on lab"
    assert r["alternative_monthly_cost_usd"] == pytest.approx(energy)
    assert r["monthly_savings_usd"] == pytest.approx(2 * 6.88 * 730 - energy)
    assert r["monthly_savings_usd"] == pytest.approx(9968.15)
    words = " ".join(r["reasons"])
    assert "2 of the 3 L40S on lab" in words
    assert "at the 250 W a GPU there draws while in use" in words and "$76.65" in words


def test_a_workload_needing_more_gpus_than_the_spare_host_has_does_not_fit_there():
    """Four H100s of notebook, 40 GiB on each, never busy 10 % of an hour (idle GPUs): they
    consolidate by memory, 4 × 40 GiB = 160 GiB + 10 % = 176 GiB needs 4 × 48 GiB L40S. The lab
    has 3 L40S (telemetry), so the option is infeasible whatever its idle hours; with
    [[local.hosts]] saying the lab has 4, the count passes and the hours decide (at most 3 idle
    at once: still not spare when it runs)."""
    usage = usage_of(cloud_notebook(4, mem_gib=40.0), lab_l40s(7))
    bill = hourly_bill("i-p5", "notebook", 4 * 6.88, 7)

    def spare_option(params):
        _, alts = advise(usage, bill, [("i-p5", "p5.48xlarge")], days=7, params=params)
        return alts.filter(pl.col("kind") == "spare").row(0, named=True)

    counted = spare_option(Params())
    assert not counted["feasible"]
    assert counted["note"] == "needs 4 GPUs at once, the host has 3"
    configured = spare_option(replace(Params(), host_gpus=(("lab", 4), ("other", 8))))
    assert not configured["feasible"] and configured["note"].startswith("not spare when it runs")
    assert Params.from_config(Config()).host_gpus == ()


def test_unknown_memory_never_fits_a_smaller_gpu():
    """An L40S notebook in the cloud (g6e.xlarge, $1.861/h), busy 3 %. With 10 GiB measured it
    downsizes to a T4 (g4dn.xlarge, $0.526/h: 10 GiB + 10 % ≤ 16 GiB; 3 % × 0.58 ÷ 0.21 = 8 %
    busy). When its GPU never reported memory in use, the peak is unknown, not 0 GiB: only GPUs
    with at least the L40S's 48 GiB are known to fit, so no T4 (nor 24 GiB L4) is chosen, and
    the confidence is halved."""
    known = usage_of(gpus("i-g6e", "L40S", 1, 7, notebook, watts=60.0, mem_gib=10.0, total_gib=48))
    unknown = known.with_columns(
        mem_peak_mib=pl.when(pl.col("workload") == "notebook").then(None).otherwise("mem_peak_mib")
    )
    args = (hourly_bill("i-g6e", "notebook", 1.861, 7), [("i-g6e", "g6e.xlarge")])
    recs, _ = advise(known, *args, days=7)
    assert recs["notebook"]["action"] == "downsize"
    assert recs["notebook"]["alternative"] == "1 × g4dn.xlarge (1 × T4), on-demand"

    recs, alts = advise(unknown, *args, days=7)
    r = recs["notebook"]
    assert r["peak_memory_gib"] is None
    assert r["action"] == "keep" and r["alternative"] is None
    small = alts.filter(pl.col("gpu_model").is_in(["T4", "L4"]))
    assert small.height > 0 and not small["feasible"].any()
    for model, note in small.select("gpu_model", "note").iter_rows():
        size = {"T4": 16, "L4": 24}[model]
        assert f"memory unknown: {size} GiB < the 48 GiB of its L40S it may need" in note
    big = alts.filter(pl.col("feasible"))
    assert big.height > 0 and big["note"].str.contains("memory unknown: ", literal=True).all()
    assert r["confidence"] == pytest.approx(round(7 / 30 * 0.5, 2))
    words = " ".join(r["reasons"])
    assert "peak memory unknown" in words and "Memory unknown: its GPUs reported no memory" in words
