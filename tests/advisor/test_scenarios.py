"""The scenario library: small fleets, each with the action and the savings worked by hand in its
docstring, that the advisor must match (savings within 2 %). Conventions in
tests/advisor/fleets.py: a month is 730 h, a watt-hour costs $0.00021 after PUE, a purchase is
price × 1.3 (server, network, rack) over 26,280 h + $0.10 per GPU-hour + energy. The bills name
AWS instances, so only AWS machines are proposed ([advisor] clouds empty: the billed clouds);
all-local fleets set clouds = aws to keep the arithmetic on AWS prices.

Catalog prices used ($/h, on-demand / spot / 1-year / 3-year reserved): p5.48xlarge 55.04,
p5.4xlarge 6.88 (3y 3.44), p4de.24xlarge 27.45 (3y 13.725), g6e.12xlarge 10.49,
g6e.xlarge 1.861, g6.xlarge 0.8048 / 0.3885, g5.xlarge 1.006 / 0.3948, g4dn.xlarge 0.526.
Purchase: H100 $30,000, A100-80GB $12,000, RTX A6000 $4,650, L40S $8,000.
"""

from __future__ import annotations

import pytest

from advisor.recommend import Params
from tests.advisor.fleets import (
    WATT_HOUR_USD,
    Gpu,
    advise,
    always,
    base_plus_peaks_service,
    evidence,
    hourly_bill,
    hours,
    usage_of,
)

AWS = Params(clouds=("aws",))
MONTH = 730.0
CAPITAL = 1.3 / 26280 * MONTH  # a purchase's price × this = its capital a month


def weekday(h: int) -> int:
    return (h // 24) % 7  # T0 is a Monday


def office(h: int) -> bool:
    return weekday(h) < 5 and 9 <= h % 24 < 19


# 1 ------------------------------------------------------------------------------------------
def test_a_notebook_on_8_h100_consolidates_onto_three_small_gpus():
    """A notebook holds 8 × H100 (p5.48xlarge, $55.04/h, 24/7, 14 days) at 1 % busy with 8 GiB
    on each GPU: today 55.04 × 730 = $40,179.20 a month. Never busy 10 % of an hour, its GPUs are
    idle, nothing needs them together: at its busiest (p95) 8 × 0.01 = 0.08 GPU-equivalents are
    busy at once (one GPU), and its memory, 8 × 8 = 64 GiB + 10 % = 70.4 GiB, needs 3 × 24 GiB L4
    (busy 1 % × 8 × 3.17 ÷ (3 × 0.39) = 21.7 %). 3 × g6.xlarge: 3 × 0.8048 × 730 = $1,762.51
    (T4s would need 5: 5 × 0.526 × 730 = $1,919.90). Saves 40,179.20 − 1,762.51 = $38,416.69
    (96 %). No instance of which it would use under a quarter of the GPUs is listed: no
    g6.12xlarge (4 × L4) for 3 GPUs' need, no p5.48xlarge (8 × H100) for 1 H100's."""
    rows = []
    for g in range(8):
        rows += hours(Gpu("i-p5", f"i-p5-{g}", "H100", watts=120), 14, always("nb", 0.01, 8.0))
    a = advise(
        usage_of(rows), hourly_bill("i-p5", "nb", 55.04, 14), [("i-p5", "p5.48xlarge")], days=14
    )
    r = a.recs["nb"]
    assert r["action"] == "downsize" and r["assumption"] == "idle_gpus"
    assert r["alternative"] == "3 × g6.xlarge (1 × L4), on-demand" and r["gpus_after"] == 3
    assert r["current_monthly_cost_usd"] == pytest.approx(40179.20)
    assert r["monthly_savings_usd"] == pytest.approx(38416.69, rel=0.02)
    assert r["monthly_savings_usd"] / r["current_monthly_cost_usd"] > 0.9
    assert r["busy_gpus_p95"] == pytest.approx(0.08) and r["memory_total_gib"] == pytest.approx(64)
    options = a.options("nb")
    assert "3 × g6.xlarge (1 × L4), on-demand" in options
    assert not any(o.startswith(("1 × g6.12xlarge", "1 × p5.48xlarge")) for o in options)
    assert "1 × p5.4xlarge (1 × H100), 3-year reserved" in options  # the H100 class: one GPU
    assert "Consolidation: from 8 × H100 to 3 × L4." in a.reasons("nb")


# 2 ------------------------------------------------------------------------------------------
def test_one_light_gpu_of_four_keeps_one_small_gpu_and_a_schedule():
    """A dev box: g6e.12xlarge (4 × L40S, $10.49/h, 24/7, 14 days): its process holds one GPU
    (20 GiB), busy 60 % in office hours (Mon–Fri 09–19 UTC) and 0 % otherwise; the other three
    never run a process. Today 10.49 × 730 = $7,657.70. One GPU at once (single GPU): an L4 holds
    20 GiB + 10 % = 22 GiB and its work (busy 60 × 100 ÷ (4 × 336) = 4.46 % of its 4 GPUs' time
    × 4 × 0.58 ÷ 0.39 = 26.6 % ≤ 70 %): 1 × g6.xlarge = 0.8048 × 730 = $587.50, saving
    $7,070.20. Active in 50 of 168 hours a week (30 %): stopped outside Mon–Fri 09:00–19:00
    it pays 50 × 730 ÷ 168 = 217.26 h, saving 0.8048 × (730 − 217.26) = $412.65 more. In all
    $7,482.85 a month."""
    dev = lambda h: ("dev", 0.6 if office(h) else 0.0, 20.0)  # noqa: E731
    idle = always(None, 0.0, 0.0)
    rows = hours(Gpu("i-g6e", "g0", "L40S", total_gib=48), 14, dev)
    for g in (1, 2, 3):
        rows += hours(Gpu("i-g6e", f"g{g}", "L40S", total_gib=48), 14, idle)
    a = advise(
        usage_of(rows), hourly_bill("i-g6e", "dev", 10.49, 14), [("i-g6e", "g6e.12xlarge")], days=14
    )
    r = a.recs["dev"]
    assert r["action"] == "downsize" and r["gpus"] == 4 and r["gpus_after"] == 1
    assert r["alternative"] == "1 × g6.xlarge (1 × L4), on-demand"
    assert r["schedule"] == "Mon–Fri 09:00–19:00 UTC"
    assert r["schedule_savings_usd"] == pytest.approx(412.65, rel=0.02)
    assert r["monthly_savings_usd"] == pytest.approx(7482.85, rel=0.02)
    assert not any("p4d" in o for o in a.options("dev"))  # no 8-GPU A100 for one light GPU


# 3 ------------------------------------------------------------------------------------------
def trainer_rows() -> list[tuple]:
    rows = []
    for g in range(8):
        gpu = Gpu("i-p4de", f"t{g}", "A100-80GB", watts=250)
        rows += hours(gpu, 14, always("train", 0.45, 30.0))
    return rows


def trainer_advice(proof):
    return advise(
        usage_of(trainer_rows()),
        hourly_bill("i-p4de", "train", 27.45, 14),
        [("i-p4de", "p4de.24xlarge")],
        days=14,
        proof=proof,
    )


def test_a_multi_gpu_trainer_is_never_split_below_its_gpus():
    """A trainer on p4de.24xlarge (8 × A100-80GB, $27.45/h: $20,038.50 a month), 45 % busy and
    30 GiB on every GPU, 250 W each. The process samples show one command busy on all 8 GPUs in
    every busy minute: one multi-GPU job (NCCL ranks, one per GPU), so every option keeps 8 GPUs.
    Buying 8 × A100-80GB: 8 × 12,000 × 1.3 = $124,800 → 124,800 ÷ 26,280 × 730 = $3,466.67 +
    8 × 730 × 0.10 = $584 + 8 × 250 W × 730 h × 0.00021 = $306.60 = $4,357.27 a month, saving
    $15,681.23, paid back in 124,800 ÷ (20,038.50 − 584 − 306.60) = 6.5 months (a 3-year
    reservation saves 20,038.50 − 13.725 × 730 = $10,019.25). Were its GPUs independent, the
    work would spread over any GPUs that do it: 11 RTX A6000 (45 % × 8 × 1.00 ÷ (11 × 0.5) =
    65 %; 11 × $4,650 × 1.3 = $66,495 → $1,847.08 + $803 + 11 × 250 W × 730 h × 0.00021 =
    $421.58 = $3,071.66) would beat 6 A100s ($3,267.95). Without process samples its GPUs busy
    together in every hour are assumed one job too."""
    job = {"busy_minutes": 20160, "multi_gpu_minutes": 20160, "job_gpus": 8, "processes": 8}
    a = trainer_advice(evidence(train=job))
    r = a.recs["train"]
    assert r["action"] == "buy_local" and r["assumption"] == "multi_gpu_job"
    assert r["alternative"] == "buy 8 × A100-80GB ($124,800)" and r["gpus_after"] == 8
    assert r["monthly_savings_usd"] == pytest.approx(15681.23, rel=0.02)
    assert r["break_even_months"] == pytest.approx(6.5, abs=0.05)
    feasible = a.alts.filter("feasible")
    assert (feasible["gpus"] >= 8).all()
    assert "NCCL-style ranks" in a.reasons("train")

    apart = trainer_advice(evidence(train={**job, "multi_gpu_minutes": 0}))
    assert apart.recs["train"]["assumption"] == "independent"
    assert apart.recs["train"]["alternative"] == "buy 11 × RTX A6000 ($66,495)"
    assert apart.recs["train"]["alternative_monthly_cost_usd"] == pytest.approx(3071.66, rel=0.02)

    hourly = trainer_advice(None)
    assert hourly.recs["train"]["assumption"] == "multi_gpu_job"
    assert "assumed one multi-GPU job" in hourly.reasons("train")


# 4 ------------------------------------------------------------------------------------------
def test_a_24_7_trainer_buys_its_gpu():
    """One H100 on p5.4xlarge ($6.88/h) 24/7 for 30 days, 80 % busy, 60 GiB, 500 W: $5,022.40 a
    month. Buying an H100: 30,000 × 1.3 = $39,000 → $1,083.33 capital + $73 operations +
    500 W × 730 h × 0.00021 = $76.65 energy = $1,232.98 a month, saving $3,789.42, paid back in
    39,000 ÷ (5,022.40 − 73 − 76.65) = 8.0 months. A 3-year reservation of its p5.4xlarge
    (3.44 × 730 = $2,511.20) saves less; an A100 would be 80 % × 3.17 = 254 % busy. 30 days,
    SM active, memory known, steady: confidence high."""
    rows = hours(Gpu("i-h", "h0", "H100", watts=500), 30, always("trainer", 0.8, 60.0))
    sm_active = evidence(trainer={"sm_active_share": 1.0})  # measured by NVML GPM
    a = advise(
        usage_of(rows),
        hourly_bill("i-h", "trainer", 6.88, 30),
        [("i-h", "p5.4xlarge")],
        days=30,
        proof=sm_active,
    )
    r = a.recs["trainer"]
    assert r["action"] == "buy_local" and r["alternative"] == "buy 1 × H100 ($39,000)"
    assert r["monthly_savings_usd"] == pytest.approx(3789.42, rel=0.02)
    assert r["break_even_months"] == pytest.approx(8.0, abs=0.05)
    reserved = a.options("trainer")["1 × p5.4xlarge (1 × H100), 3-year reserved"]
    assert reserved["feasible"] and reserved["monthly_cost_usd"] == pytest.approx(3.44 * MONTH)
    assert r["confidence_level"] == "high"


# 5 ------------------------------------------------------------------------------------------
def test_a_weekly_eval_keeps_its_instance():
    """A sweep on g6e.12xlarge (4 × L40S, $10.49/h) Saturdays 06–16 UTC only, 88 % busy, 40 GiB:
    billed 20 h in 14 days = 10.49 × 20 ÷ 336 × 730 = $455.82 a month. Its 4 GPUs work together
    (kept whole); active in 6 % of hours, so buying and reservations are out, and it already
    stops when idle (its 10 active hours a week are all it holds: no schedule). Keep (saves $0).
    An idle lab GPU reports all along, as the rest of a fleet does, so the window is 14 days."""

    def saturday(h: int) -> tuple | None:
        return ("sweep", 0.88, 40.0) if weekday(h) == 5 and 6 <= h % 24 < 16 else None

    rows = []
    for g in range(4):
        rows += hours(Gpu("i-w", f"w{g}", "L40S", total_gib=48, watts=300), 14, saturday)
    rows += hours(Gpu("lab", "l0", "L40S", total_gib=48), 14, always(None, 0.0, 0.0))
    bill = hourly_bill("i-w", "sweep", lambda h: 10.49 if saturday(h) else 0.0, 14)
    a = advise(usage_of(rows), bill, [("i-w", "g6e.12xlarge")], days=14)
    r = a.recs["sweep"]
    assert r["action"] == "keep" and r["alternative"] is None
    assert r["current_monthly_cost_usd"] == pytest.approx(455.82, rel=0.02)
    assert r["monthly_savings_usd"] == 0.0 and r["schedule"] is None


# 6 ------------------------------------------------------------------------------------------
def test_a_saturated_local_queue_gets_the_gpu_its_light_neighbour_frees():
    """Host q, 4 × A100-80GB owned, never idle: `queue` on 3 GPUs at 95 % (saturated), `light`
    on one at 8 % with 9 GiB, 100 W (never busy 10 % of an hour: no commitment for it). `light`
    moves to the cloud: a T4 holds 9 GiB + 10 % and runs 8 % × 1.00 ÷ 0.21 = 38 % busy:
    g4dn.xlarge 0.526 × 730 = $383.98 a month against the
    100 W × 730 h × 0.00021 = $15.33 of energy it stops using: its own spend rises by $368.65.
    The A100 it frees is worth 27.45 ÷ 8 × 730 = $2,504.81 a month to `queue` (what p4de would
    charge for it): the team saves $2,136.16. `queue` keeps its GPUs; bursting past them costs
    27.45 ÷ 8 = $3.43 per GPU-hour."""
    rows = []
    for g in range(3):
        rows += hours(Gpu("q", f"q{g}", "A100-80GB", watts=300), 14, always("queue", 0.95, 60.0))
    rows += hours(Gpu("q", "q3", "A100-80GB", watts=100), 14, always("light", 0.08, 9.0))
    a = advise(usage_of(rows), days=14, params=AWS)
    light, queue = a.recs["light"], a.recs["queue"]
    assert light["action"] == "move_to_cloud"
    assert light["alternative"] == "1 × g4dn.xlarge (1 × T4), on-demand"
    assert light["monthly_savings_usd"] == pytest.approx(-368.65, rel=0.02)
    assert light["freed_capacity_usd"] == pytest.approx(2504.81, rel=0.02)
    assert "raises its own spend by $368.65" in a.reasons("light")
    assert queue["action"] == "keep"
    assert "burst to the cloud at $3.43 per GPU-hour" in a.reasons("queue")


# 7 ------------------------------------------------------------------------------------------
def test_a_base_plus_peaks_service_goes_hybrid():
    """An API on g6e.xlarge instances (1 × L40S, $1.861/h each), 60 % busy and 30 GiB on each,
    200 W, for 30 days: two run all day, four more 12:00–16:00 UTC. 2 × 24 + 4 × 4 = 64 GPU-hours
    a day = 1,946.67 a month = $3,622.75. Its processes are independent (process samples).
    A local base of b GPUs carries Σ min(demand, b), the cloud the rest; the cheapest class that
    holds 30 GiB + 10 % and the work (60 % × 0.58 ÷ 0.5 = 69.6 %) is the RTX A6000 ($4,650 × 1.3 =
    $6,045: $167.92 capital + $73 operations = $240.92 a month each). b = 2: 2 × 240.92 +
    1,460 GPU-h × 200 W × 0.00021 = $543.16 local + 486.67 GPU-h × 1.861 = $905.69 cloud =
    $1,448.85 (b = 3: $1,468.46; b = 1: $2,535.80): saves $2,173.90 a month; the purchase
    ($12,090) pays back in 12,090 ÷ (3,622.75 − 905.69 − 146 − 61.32) = 4.8 months. Buying all
    of it (six A6000s for its work) would cost $1,527.27; staying in the cloud $3,622.75."""

    a = advise(**base_plus_peaks_service(), days=30)
    r = a.recs["api"]
    assert r["action"] == "hybrid" and r["assumption"] == "independent"
    assert r["alternative"] == (
        "hybrid: buy 2 × RTX A6000 for the base load, g6e.xlarge on-demand for the peaks"
    )
    assert r["current_monthly_cost_usd"] == pytest.approx(3622.75, rel=0.02)
    assert r["alternative_monthly_cost_usd"] == pytest.approx(1448.85, rel=0.02)
    assert r["monthly_savings_usd"] == pytest.approx(2173.90, rel=0.02)
    assert r["break_even_months"] == pytest.approx(4.8, abs=0.05) and r["gpus_after"] == 2
    curve = a.curves.filter(a.curves["workload"] == "api")
    assert curve.height == 30 * 24 and set(curve["base_gpus"]) == {2.0}
    assert curve["gpus"].max() == pytest.approx(6) and curve["gpus"].min() == pytest.approx(2)
    words = a.reasons("api")
    assert "a base of 2 GPUs carries 1,460" in words and "$905.69" in words


# 8 ------------------------------------------------------------------------------------------
def test_a_sensitive_workload_never_goes_to_the_cloud():
    """Scenario 6's light neighbour, but `records` is listed in [workloads] sensitive: the cloud
    is never considered (no cloud option is even listed), no smaller local GPU is spare, so it
    keeps its A100, saving $0, whatever the saturated `batch` beside it would gain (a T4 in the
    cloud would have saved the team 15.33 − 383.98 + 3.43125 × 730 = $2,136.16)."""
    rows = hours(Gpu("h", "h0", "A100-80GB", watts=300), 14, always("batch", 0.95, 60.0))
    rows += hours(Gpu("h", "h1", "A100-80GB", watts=100), 14, always("records", 0.08, 9.0))
    a = advise(usage_of(rows), days=14, params=AWS, sensitive=("records",))
    r = a.recs["records"]
    assert r["action"] == "keep" and r["monthly_savings_usd"] == 0.0
    assert not any(a.alts.filter(a.alts["workload"] == "records")["placement"] == "cloud")
    assert "cloud options are not considered" in a.reasons("records")


# 9 ------------------------------------------------------------------------------------------
def test_an_interruptible_batch_runs_on_spot():
    """A nightly ETL on g5.xlarge (A10G, $1.006/h), 00–08 UTC only, 70 % busy, 10 GiB, 14 days:
    1.006 × 8 ÷ 24 × 730 = $244.79 a month for 243.33 h. Listed in [workloads] interruptible,
    spot is proposed: an L4 runs it 70 % × 0.22 ÷ 0.39 = 39.5 % busy, g6.xlarge spot 0.3885 ×
    243.33 = $94.54 (the A10G's own spot: $96.07): saves $150.25. Not listed, the best is
    g6.xlarge on-demand (0.8048 × 243.33 = $195.83, saving $48.96, under the $100 minimum): keep."""
    night = lambda h: ("etl", 0.7, 10.0) if h % 24 < 8 else None  # noqa: E731
    rows = hours(Gpu("i-g5", "e0", "A10G", total_gib=24, watts=150), 14, night)
    bill = hourly_bill("i-g5", "etl", lambda h: 1.006 if night(h) else 0.0, 14)
    args = (usage_of(rows), bill, [("i-g5", "g5.xlarge")])
    a = advise(*args, days=14, params=Params(interruptible=("etl",)))
    r = a.recs["etl"]
    assert r["action"] == "downsize" and r["alternative"] == "1 × g6.xlarge (1 × L4), spot"
    assert r["monthly_savings_usd"] == pytest.approx(150.25, rel=0.02)
    assert "listed in [workloads] interruptible" in a.reasons("etl")
    assert advise(*args, days=14).recs["etl"]["action"] == "keep"


# 10 -----------------------------------------------------------------------------------------
def test_a_committed_instance_is_not_told_to_commit_again():
    """Scenario 4's H100 trainer, but its bill shows the instance under a Savings Plan at
    $4.12/h: $3,007.60 a month. No reservation is proposed again (both are listed as already
    committed); buying still saves 3,007.60 − 1,232.98 = $1,774.62, paid back in 39,000 ÷
    (3,007.60 − 73 − 76.65) = 13.6 months, and the reasons say the commitment is paid for its
    term. Without the commitment on the bill the 3-year reservation is a feasible option."""
    rows = hours(Gpu("i-h", "h0", "H100", watts=500), 30, always("trainer", 0.8, 60.0))
    bill = hourly_bill("i-h", "trainer", 4.12, 30)
    committed = [("i-h", "p5.4xlarge", "sp-0abc", "Savings Plan")]
    a = advise(usage_of(rows), bill, committed, days=30)
    r = a.recs["trainer"]
    assert r["action"] == "buy_local"
    assert r["monthly_savings_usd"] == pytest.approx(1774.62, rel=0.02)
    assert r["break_even_months"] == pytest.approx(13.6, abs=0.05)
    reserved = a.alts.filter(a.alts["kind"].str.starts_with("cloud_reserved"))
    assert reserved.height > 0 and not reserved["feasible"].any()
    assert (
        reserved["note"]
        .str.contains("already committed (Savings Plan sp-0abc)", literal=True)
        .all()
    )
    assert "under a commitment (Savings Plan sp-0abc)" in a.reasons("trainer")
    free = advise(usage_of(rows), bill, [("i-h", "p5.4xlarge")], days=30)
    assert free.options("trainer")["1 × p5.4xlarge (1 × H100), 3-year reserved"]["feasible"]


# 11 -----------------------------------------------------------------------------------------
def test_unknown_memory_keeps_every_gpu_and_only_big_ones_fit():
    """Scenario 1's notebook on a page without memory readings (e.g. DCGM without
    DCGM_FI_DEV_FB_USED): its memory is unknown, never 0 GiB, so nothing consolidates (each of
    the 8 GPUs its processes held is kept) and only GPUs with at least the H100's 80 GiB count:
    p4de.24xlarge (8 × A100-80GB, 1 % × 3.17 = 3.2 % busy) at 27.45 × 730 = $20,038.50 saves
    40,179.20 − 20,038.50 = $20,140.70. The confidence number is halved: 14 ÷ 30 = 0.47 × 0.5."""
    rows = []
    for g in range(8):
        rows += hours(Gpu("i-p5", f"i-p5-{g}", "H100"), 14, always("nb", 0.01, None))
    a = advise(
        usage_of(rows), hourly_bill("i-p5", "nb", 55.04, 14), [("i-p5", "p5.48xlarge")], days=14
    )
    r = a.recs["nb"]
    assert r["peak_memory_gib"] is None and r["memory_total_gib"] is None
    assert r["action"] == "downsize" and r["gpus_after"] == 8
    assert r["alternative"] == "1 × p4de.24xlarge (8 × A100-80GB), on-demand"
    assert r["monthly_savings_usd"] == pytest.approx(20140.70, rel=0.02)
    assert r["confidence"] == pytest.approx(round(round(14 / 30, 2) * 0.5, 2))
    assert "memory unknown" in " ".join(r["confidence_reasons"])


# 12 -----------------------------------------------------------------------------------------
def test_a_mig_slice_without_an_activity_signal_keeps_its_slice():
    """A local H100 split into seven 1g.10gb instances (each 1/7 of the board); `infer` runs on
    one, the other six idle, with no activity signal (MIG without DCGM profiling): busy unknown,
    never 0 %. It holds its slice 730 ÷ 7 = 104.3 h a month; a slower GPU cannot be shown to keep
    up and a cloud H100 (6.88 × 104.3 = $717.49) costs more than the energy it would save, so it
    keeps its slice; the confidence is low (no activity signal)."""
    rows = []
    for i in range(7):
        gpu = Gpu(
            "mig-b",
            f"MIG-{i}",
            "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
            total_gib=10,
            watts=300,
            idle_watts=300,
            share=1 / 7,
            parent="GPU-board",
            profile="1g.10gb",
        )
        rows += hours(gpu, 14, always("infer" if i == 0 else None, None, 8.0))
    a = advise(usage_of(rows), days=14, params=AWS)
    r = a.recs["infer"]
    assert r["gpu_model"] == "H100" and r["busy_fraction"] is None
    assert r["action"] == "keep" and r["monthly_savings_usd"] == 0.0
    assert r["gpu_hours_per_month"] == pytest.approx(MONTH / 7)
    assert r["confidence_level"] == "low"
    assert "no activity signal" in " ".join(r["confidence_reasons"])
    slower = a.alts.filter((a.alts["workload"] == "infer") & (a.alts["gpu_model"] == "L4"))
    assert slower.height and not slower["feasible"].any()


# 13 -----------------------------------------------------------------------------------------
def test_three_days_of_data_give_a_low_confidence():
    """A notebook on p5.4xlarge, 3 % busy, 30 GiB, seen for 3 days: the L40S (g6e.xlarge) saves
    (6.88 − 1.861) × 730 = $3,663.87 as ever, but under a week of data shows no weekly pattern:
    confidence low (3 ÷ 30 = 0.1), and no commitment is proposed on 3 days."""
    rows = hours(Gpu("i-p5", "n0", "H100"), 3, always("nb", 0.03, 30.0))
    a = advise(usage_of(rows), hourly_bill("i-p5", "nb", 6.88, 3), [("i-p5", "p5.4xlarge")], days=3)
    r = a.recs["nb"]
    assert r["action"] == "downsize" and r["alternative"] == "1 × g6e.xlarge (1 × L40S), on-demand"
    assert r["monthly_savings_usd"] == pytest.approx(3663.87, rel=0.02)
    assert r["confidence_level"] == "low" and r["confidence"] == pytest.approx(0.1)
    assert "only 3 days observed" in " ".join(r["confidence_reasons"])
    reserved = a.alts.filter(a.alts["kind"] == "cloud_reserved_3y")
    assert not reserved["feasible"].any()


# 14 -----------------------------------------------------------------------------------------
def test_a_notebook_needing_its_big_gpu_runs_on_a_schedule():
    """A notebook on p5.4xlarge ($6.88/h, 24/7, 14 days) holding 70 GiB, busy 40 % Mon–Fri
    09–17 UTC and idle otherwise: $5,022.40 a month. 70 GiB + 10 % = 77 GiB leaves only 80 GiB
    GPUs, all dearer on AWS; active in 40 of 168 hours (24 %), so it stops when idle: 40 × 730 ÷
    168 = 173.81 h × 6.88 = $1,195.81 a month, saving $3,826.59 (76 %)."""
    work = lambda h: ("nb", 0.4 if weekday(h) < 5 and 9 <= h % 24 < 17 else 0.0, 70.0)  # noqa: E731
    rows = hours(Gpu("i-p5", "n0", "H100", watts=300), 14, work)
    a = advise(
        usage_of(rows), hourly_bill("i-p5", "nb", 6.88, 14), [("i-p5", "p5.4xlarge")], days=14
    )
    r = a.recs["nb"]
    assert r["action"] == "schedule"
    assert r["alternative"] == "stop when idle: run Mon–Fri 09:00–17:00 UTC (174 h a month)"
    assert r["monthly_savings_usd"] == pytest.approx(3826.59, rel=0.02)
    assert r["schedule_savings_usd"] == pytest.approx(3826.59, rel=0.02)
    assert r["schedule_hours_per_month"] == pytest.approx(40 * MONTH / 168)


# 15 -----------------------------------------------------------------------------------------
def test_a_cloud_notebook_moves_to_an_idle_local_gpu():
    """Scenario 13's notebook, 14 days, while the lab's two L40S sit idle at 35 W: one of them
    holds it (30 GiB + 10 % ≤ 48 GiB; 3 % × 3.17 ÷ 0.58 = 16 % busy) for its energy alone,
    35 W × 730 h × 0.00021 = $5.37 a month (the purchase is paid): saves 5,022.40 − 5.37 =
    $5,017.03."""
    rows = hours(Gpu("i-p5", "n0", "H100"), 14, always("nb", 0.03, 30.0))
    for g in range(2):
        lab = Gpu("lab", f"l{g}", "L40S", total_gib=48, idle_watts=35)
        rows += hours(lab, 14, always(None, 0.0, 0.0))
    a = advise(
        usage_of(rows), hourly_bill("i-p5", "nb", 6.88, 14), [("i-p5", "p5.4xlarge")], days=14
    )
    r = a.recs["nb"]
    assert r["action"] == "move_to_local" and r["alternative"] == "1 spare L40S on lab"
    assert r["alternative_monthly_cost_usd"] == pytest.approx(35 * MONTH * WATT_HOUR_USD)
    assert r["monthly_savings_usd"] == pytest.approx(5017.03, rel=0.02)


def test_every_scenario_states_its_arithmetic():
    """Each scenario's docstring holds its hand-worked action and money (the library's rule)."""
    scenarios = [
        f
        for name, f in globals().items()
        if name.startswith("test_") and f.__doc__ and "$" in f.__doc__
    ]
    assert len(scenarios) >= 15
