"""What-if for a described workload, with the money worked by hand (no team data: energy at the
assumed 300 W per GPU)."""

from pathlib import Path

import pytest

from advisor.recommend import Params
from advisor.whatif import Question, WhatIfError, what_if
from config.catalog import load_catalog

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "config" / "catalog.csv")
ENERGY = 1.4 * 0.15 / 1000  # USD per watt-hour after PUE
HELD = 20 * 730 / 24  # 20 h a day: 608.33 h a month
H100 = Question(gpu="H100", count=1, hours_per_day=20, busy=0.7, memory_gib=60, sensitive=False)


def test_an_h100_20h_a_day_at_70_percent_is_cheaper_bought():
    rec = what_if(H100, CATALOG, Params())
    current = 6.88 * HELD  # p5.4xlarge: $4,185.33 a month
    # $30,000 + 30 % for the server, network and rack around it = $39,000
    capital, ops, energy = 39000 / 26280 * 730, 730 * 0.10, 300 * HELD * ENERGY
    assert rec.profile.current_monthly_cost == pytest.approx(current)
    assert rec.action == "buy_local"
    assert rec.chosen.option == "buy 1 × H100 ($39,000)"
    assert rec.chosen.monthly_cost == pytest.approx(capital + ops + energy)  # $1,194.66
    assert rec.chosen.monthly_savings == pytest.approx(current - capital - ops - energy)
    assert rec.chosen.break_even_months == pytest.approx(39000 / (current - ops - energy))
    assert rec.chosen.break_even_months == pytest.approx(9.57, abs=0.01)
    options = {a.option: a for a in rec.alternatives}
    # 60 GiB + 10 % = 66 GiB: no 48 GiB L40S; an A100 would be 70 % x 3.17 = 222 % busy.
    assert not options["buy 1 × L40S ($10,400)"].feasible
    assert "222 %" in options["buy 1 × A100-80GB ($15,600)"].note
    # A 3-year reservation of its p5.4xlarge (described as steady: 20 h a day) costs
    # 3.44 x 730 = $2,511.20 a month: cheaper than on-demand, dearer than buying.
    reserved = options["1 × p5.4xlarge (1 × H100), 3-year reserved"]
    assert reserved.feasible and reserved.monthly_cost == pytest.approx(3.44 * 730)
    assert any("assumes 300 W" in r for r in rec.reasons)


def test_a_sensitive_workload_is_never_priced_in_the_cloud():
    rec = what_if(
        Question(gpu="H100", hours_per_day=20, busy=0.7, memory_gib=60, sensitive=True),
        CATALOG,
        Params(),
    )
    assert rec.action == "move_to_local"
    assert {a.placement for a in rec.alternatives} == {"local"}


def test_owned_gpus_are_kept_when_the_cloud_would_only_add_cost():
    rec = what_if(
        Question(gpu="H100", hours_per_day=20, busy=0.7, memory_gib=60, current="local"),
        CATALOG,
        Params(),
    )
    capital, ops, energy = 30000 / 26280 * 730, 730 * 0.10, 300 * HELD * ENERGY
    assert rec.profile.current_monthly_cost == pytest.approx(capital + ops + energy)
    assert rec.profile.marginal_monthly_cost == pytest.approx(energy)  # the purchase is sunk
    assert rec.action == "keep"


def test_a_mostly_idle_described_notebook_is_not_worth_buying_for():
    rec = what_if(Question(gpu="H100", busy=0.03, memory_gib=30), CATALOG, Params())
    # busy 3 % under the 10 % that makes an hour active: active ~30 % of hours, not steady
    assert rec.profile.duty_cycle == pytest.approx(0.3)
    assert rec.action == "downsize"
    assert rec.chosen.option == "1 × g6e.xlarge (1 × L40S), on-demand"


@pytest.mark.parametrize(
    ("question", "message"),
    [
        (Question(gpu="TPU v5"), "--gpu 'TPU v5' is not a GPU class of the catalog"),
        (Question(gpu="H100", busy=1.5), "--busy must be a fraction between 0 and 1, got 1.5"),
        (Question(gpu="H100", hours_per_day=0), "--hours-per-day must be in (0, 24], got 0"),
        (Question(gpu="A10G", current="local"), "no purchase price for A10G"),
        (Question(gpu="RTX 4090"), "no cloud instance with RTX 4090: use --current local"),
    ],
)
def test_a_question_that_cannot_be_priced_says_which_input(question, message):
    with pytest.raises(WhatIfError, match=None) as err:
        what_if(question, CATALOG, Params())
    assert message in str(err.value)


H200 = dict(gpu="NVIDIA H200", count=1, hours_per_day=24, busy=0.5, memory_gib=100)


def test_an_h200_in_the_cloud_is_priced_on_p5en():
    """The catalog's only H200 instance with an on-demand price: p5en.48xlarge, $63.296/h for 8
    GPUs, the whole instance for a 1-GPU workload: 63.296 x 730 h = $46,206.08 a month."""
    rec = what_if(Question(**H200, current="cloud"), CATALOG, Params())
    assert rec.profile.gpu_model == "H200" and rec.profile.instance_type == "p5en.48xlarge"
    assert (
        rec.profile.current_monthly_cost == pytest.approx(63.296 * 730) == pytest.approx(46206.08)
    )
    # buying one H200 ($35,000 + 30 % = $45,500): 45,500 / 26,280 x 730 = 1,263.89 capital
    # + 73 operations + 0.3 kW x 730 h x 0.21 = 45.99 energy = $1,382.88 a month
    buy = {a.option: a for a in rec.alternatives}["buy 1 × H200 ($45,500)"]
    assert buy.monthly_cost == pytest.approx(45500 / 26280 * 730 + 73 + 300 * 730 * ENERGY)
    assert buy.monthly_cost == pytest.approx(1382.88, abs=0.01)


def test_an_owned_h200_is_priced_at_its_purchase():
    rec = what_if(Question(**H200, current="local"), CATALOG, Params())
    capital, ops, energy = 35000 / 26280 * 730, 730 * 0.10, 300 * 730 * ENERGY
    assert rec.profile.current_monthly_cost == pytest.approx(capital + ops + energy)
    assert rec.profile.current_monthly_cost == pytest.approx(1091.21, abs=0.01)
    assert rec.action == "keep"  # the cloud only adds cost to an owned GPU


def test_a_name_of_two_classes_asks_which():
    with pytest.raises(WhatIfError) as err:
        what_if(Question(gpu="A100"), CATALOG, Params())
    assert "--gpu 'A100' names several GPU classes (A100-40GB, A100-80GB): say which" in str(
        err.value
    )
    assert what_if(Question(gpu="A100-80GB"), CATALOG, Params()).profile.gpu_model == "A100-80GB"
