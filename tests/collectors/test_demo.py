from datetime import UTC, datetime, timedelta

import polars as pl

from collectors import demo

T0 = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday


def _history(seed: int, days: int = 7, interval: int = 300) -> pl.DataFrame:
    return pl.concat(
        f for _, f in demo.history(T0, T0 + timedelta(days=days), interval_s=interval, seed=seed)
    )


def test_the_same_seed_gives_the_same_fleet_and_another_seed_does_not():
    a, b, c = _history(42, days=1), _history(42, days=1), _history(7, days=1)
    assert a.equals(b)
    assert not a.equals(c)


def test_the_fleet_has_the_hosts_and_workloads_the_docs_promise():
    h = _history(42)
    assert {"dgx-a100", "ws-4090"} <= set(h["host"])
    per_host = h.group_by("host").agg(pl.col("gpu_uuid").n_unique(), pl.col("gpu_model").first())
    models = dict(per_host.select("host", "gpu_model").iter_rows())
    gpus = dict(per_host.select("host", "gpu_uuid").iter_rows())
    assert (models["dgx-a100"], gpus["dgx-a100"]) == ("A100-80GB", 8)
    assert (models["ws-4090"], gpus["ws-4090"]) == ("RTX 4090", 2)
    workloads = set(h["workload"].drop_nulls())
    assert workloads == {
        "batch-queue",
        "chat-inference",
        "vision-dev",
        "llm-pretrain",
        "clinical-nlp",
        "research-notebook",
        "weekly-sweep",
    }


def test_each_workload_has_its_intended_pattern():
    h = _history(42).with_columns(activity=pl.coalesce("sm_active_pct", "util_pct"))
    stats = {
        r["workload"]: r
        for r in h.filter(pl.col("workload").is_not_null())
        .group_by("workload")
        .agg(pl.col("activity").mean(), pl.col("mem_used_mib").max(), pl.len())
        .iter_rows(named=True)
    }
    assert stats["llm-pretrain"]["activity"] > 90  # continuous training in the cloud
    assert stats["batch-queue"]["activity"] > 85  # saturated local GPUs
    assert stats["research-notebook"]["activity"] < 10  # an H100 notebook, mostly idle ...
    assert stats["research-notebook"]["mem_used_mib"] > 29 * 1024  # ... holding its memory
    assert stats["chat-inference"]["mem_used_mib"] < 12 * 1024  # fits an L4's 24 GB
    # the weekly sweep runs only on Saturday 06-16 UTC: 10 h x 12 samples x 4 GPUs
    assert stats["weekly-sweep"]["len"] == 10 * 12 * 4


def test_the_bill_covers_the_running_instance_hours_at_catalog_prices():
    bills = demo.billing(T0, T0 + timedelta(days=7))
    per = dict(bills.group_by("InstanceType").agg(pl.col("EffectiveCost").sum()).iter_rows())
    assert abs(per["p4d.24xlarge"] - 7 * 24 * 21.96) < 1e-6
    assert abs(per["g6e.12xlarge"] - 10 * 10.49) < 1e-6  # one Saturday of 10 hours
    assert bills["scope"].n_unique() == bills.height  # every hour replaces only itself
    assert set(bills["workload"]) == {
        "llm-pretrain",
        "clinical-nlp",
        "research-notebook",
        "weekly-sweep",
    }


def test_live_ticks_carry_processes_with_workloads():
    batch = demo.LiveDemo(42).tick(T0 + timedelta(hours=10, minutes=30))  # Monday 10:30
    assert batch.gpu_samples.height >= 20
    procs = batch.process_samples
    assert procs.height > 0 and procs["workload"].null_count() == 0
    nb = procs.filter(pl.col("workload") == "research-notebook")
    assert nb["user"].to_list() == ["bob"]


def test_a_restart_only_fills_the_gap():
    now = T0 + timedelta(days=3)
    start, end = demo.history_window(now, 14, last=now - timedelta(hours=2))
    assert (end - start) < timedelta(hours=2)
    start, _ = demo.history_window(now, 14, last=None)
    assert start == now - timedelta(days=14)
