"""The billing pull providers registry (cli/providers/__init__.py): `gpuledger billing NAME` and
the daemon's `<name>-billing` job come from it, and a new provider is one module + one line."""

from __future__ import annotations

import argparse
import importlib
from dataclasses import replace

import pytest

from cli import providers
from cli.jobs import periodic_jobs
from cli.main import build_parser, main
from cli.providers import PullProvider

CALLS: list[tuple[str, object]] = []


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `fake` provider's options (this module is its command module)."""
    p.add_argument("--month", required=True)


def run(args: argparse.Namespace, cfg) -> int:
    CALLS.append(("run", args.month))
    return 0


def daemon_job(cfg, *, check_every_s: float):
    def tick() -> None:
        CALLS.append(("tick", check_every_s))

    return tick


@pytest.fixture
def fake_provider():
    """A provider registered for one test, switched by [alerts] enabled (on by default)."""
    CALLS.clear()
    entry = providers.register(
        PullProvider(
            "fake", "tests.cli.test_providers", "alerts", "Fake", "pull the fake cloud", "", 30.0
        )
    )
    yield entry
    del providers.PROVIDERS[entry.name]


def test_each_provider_module_has_its_command_and_daemon_job():
    assert tuple(providers.PROVIDERS) == ("aws", "azure", "gcp")
    for p in providers.PROVIDERS.values():
        module = importlib.import_module(p.module)
        for name in ("add_arguments", "run", "daemon_job"):
            assert callable(getattr(module, name)), (p.name, name)
    with pytest.raises(ValueError, match="'aws' is taken"):
        providers.register(PullProvider("aws", "x", "aws", "AWS", "again"))


def test_the_billing_command_lists_the_registered_providers(fake_provider):
    (commands,) = build_parser()._subparsers._group_actions
    billing = commands.choices["billing"]
    (which,) = billing._subparsers._group_actions
    assert list(which.choices) == ["aws", "azure", "gcp", "fake"]
    (line,) = [a for a in commands._choices_actions if a.dest == "billing"]
    assert line.help == "pull cloud billing (AWS, Azure, Google Cloud, Fake)"


def test_a_registered_provider_runs_as_billing_name(cfg, fake_provider, capsys):
    assert main(["--config", cfg.source, "billing", "fake", "--month", "2026-11"]) == 0
    assert CALLS == [("run", "2026-11")]
    assert main(["--config", cfg.source, "billing", "fake"]) == 2  # its own required option
    assert "--month" in capsys.readouterr().err


def test_the_daemon_pulls_each_enabled_provider_on_its_period(cfg, fake_provider):
    jobs = {
        name: (period, fn) for name, period, fn in periodic_jobs(cfg, None, None, demo_on=False)
    }
    period, tick = jobs["fake-billing"]
    tick()
    assert period == 30.0 and CALLS == [("tick", 30.0)]
    assert "aws-billing" not in jobs  # [aws] enabled = false in the shipped file
    off = replace(cfg, alerts=replace(cfg.alerts, enabled=False))
    assert "fake-billing" not in [n for n, _, _ in periodic_jobs(off, None, None, demo_on=False)]
