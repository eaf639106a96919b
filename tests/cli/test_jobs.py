"""The daemon's jobs registry (cli/jobs.py JOBS): which jobs run under a configuration, on which
period, in which order; a new job is one line; a job that is off loads none of its code."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from cli import jobs
from cli.jobs import JobSpec, periodic_jobs

ROOT = Path(__file__).resolve().parents[2]


def everything_on(cfg):
    return replace(
        cfg,
        alerts=replace(cfg.alerts, enabled=True, check_interval_s=45.0),
        aws=replace(cfg.aws, enabled=True),
        ship=replace(cfg.ship, pull_from="s3://bucket/gpuledger", interval_s=20.0),
        report=replace(cfg.report, weekly=True),
        retention=replace(cfg.retention, interval_s=600.0),
    )


def test_every_job_on_its_configured_period_in_the_registry_order(cfg):
    got = periodic_jobs(everything_on(cfg), None, pl.DataFrame(), demo_on=True)
    assert [(name, period) for name, period, _ in got] == [
        ("demo-billing", 300.0),
        ("alerts", 45.0),  # [alerts] check_interval_s
        ("aws-billing", 60.0),  # cli/providers: the AWS provider checks every minute
        ("retention", 600.0),  # [retention] interval_s
        ("ship-pull", 20.0),  # [ship] interval_s
        ("weekly-report", 60.0),
    ]
    assert all(callable(tick) for _, _, tick in got)


def test_with_every_feature_off_only_retention_runs(cfg):
    off = replace(
        cfg,
        alerts=replace(cfg.alerts, enabled=False),
        report=replace(cfg.report, weekly=False),
    )
    assert [name for name, _, _ in periodic_jobs(off, None, None, demo_on=False)] == ["retention"]


def test_a_new_job_is_one_line(cfg, monkeypatch):
    ticks: list[str] = []

    def factory(ctx):
        return lambda: ticks.append(ctx.cfg.demo.mode)

    line = JobSpec(
        "extra", lambda c: c.run.publish_interval_s * 3, lambda ctx: ctx.demo_on, factory
    )
    monkeypatch.setattr(jobs, "JOBS", [*jobs.JOBS, line])
    on = {name: (p, fn) for name, p, fn in periodic_jobs(cfg, None, None, demo_on=True)}
    period, tick = on["extra"]
    tick()
    assert period == 30.0 and ticks == ["auto"]  # 3 x [run] publish_interval_s (10 s)
    assert "extra" not in [n for n, _, _ in periodic_jobs(cfg, None, None, demo_on=False)]


@pytest.mark.parametrize(
    ("setting", "module"),
    [("alerts=replace(cfg.alerts, enabled=False)", "advisor.alerts"), ("", "collectors.shipping")],
)
def test_a_job_that_is_off_loads_none_of_its_code(setting, module):
    code = (
        "import sys; from dataclasses import replace; from config.settings import load_config; "
        "from cli.jobs import periodic_jobs; cfg = load_config('config/gpuledger.toml'); "
        f"cfg = replace(cfg, {setting}); periodic_jobs(cfg, None, None, demo_on=False); "
        f"print({module!r} in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"
