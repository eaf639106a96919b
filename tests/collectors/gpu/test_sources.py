"""The GPU sources registry (collectors/gpu/sources.py): every place that names a source reads it,
a module of a source provides what its line promises, and a new source is one module + one line."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from cli import collect
from cli.daemon import Daemon
from collectors.gpu import sources
from collectors.gpu.sources import GpuSource, Sampler, SourceSettings, SourceUnavailable
from config.settings import Config, ConfigError, load_config
from tables.records import Batch

ROOT = Path(__file__).resolve().parents[3]
SMI_XML = ROOT / "tests/fixtures/realdata/nvidia-smi-xml-datakit/gtx-1660-ti.xml"
PROMISES = {
    "captures": "parse_capture",
    "history": "read_history",
    "probe": "probe",
}


@pytest.fixture
def extra_source():
    """A source registered for one test (its entry points are this module's `open_sampler` and
    `probe`), then removed."""
    entry = sources.register(
        GpuSource("fake", "tests.collectors.gpu.test_sources", "a test source", daemon=True)
    )
    yield entry
    del sources.SOURCES[entry.name]


def open_sampler(settings: SourceSettings) -> Sampler:
    """The `fake` source's entry point: one GPU named after the settings' host."""

    def sample(now: datetime) -> Batch:
        row = {"ts": now, "host": settings.host or "fake-host", "gpu_uuid": "GPU-fake"}
        row |= {"gpu_model": "Fake", "util_pct": 50.0, "mem_used_mib": 1.0, "mem_total_mib": 2.0}
        return Batch(pl.DataFrame([{**row, "power_w": 10.0, "source": "fake"}]))

    return Sampler(sample)


@pytest.mark.parametrize("name", sources.names())
def test_each_source_module_has_what_its_line_promises(name):
    entry = sources.get(name)
    module = importlib.import_module(entry.module)
    assert callable(module.open_sampler)
    for flag, function in PROMISES.items():
        assert callable(getattr(module, function, None)) is getattr(entry, flag), (name, flag)


def test_the_sources_in_their_order_and_what_each_can_do():
    assert sources.names() == ("nvml", "smi", "prometheus", "demo")
    assert sources.having("captures") == ("smi", "prometheus")
    assert sources.having("history") == ("prometheus",)
    assert sources.having("daemon") == ("nvml", "demo")
    with pytest.raises(SourceUnavailable, match="unknown source nope"):
        sources.get("nope")
    with pytest.raises(ValueError, match="'smi' is taken"):
        sources.register(GpuSource("smi", "x", "again"))
    with pytest.raises(ValueError, match="'auto' is taken"):
        sources.register(GpuSource("auto", "x", "the configuration's word"))


def test_the_source_option_and_the_configuration_list_the_registry(tmp_path, extra_source):
    parser = collect.argparse.ArgumentParser()
    collect.add_arguments(parser)
    (action,) = [a for a in parser._actions if a.dest == "source"]
    assert tuple(action.choices) == (*sources.names(),) and "fake" in action.choices
    assert "fake: a test source" in action.help

    conf = tmp_path / "c.toml"
    conf.write_text('[collect]\nsource = "fake"\n')
    assert load_config(conf).collect.source == "fake"
    conf.write_text('[collect]\nsource = "nope"\n')
    with pytest.raises(ConfigError, match="must be one of auto, nvml, smi, prometheus, demo, fake"):
        load_config(conf)


def test_a_registered_source_samples_through_collect_once(cfg, capsys, extra_source):
    """One new module and one line: `collect --source fake --once` prints its sample."""
    args = ["--config", cfg.source, "--source", "fake", "--host", "h1", "--once"]
    assert collect.main([*args, "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["host"], row["gpu_uuid"]) == ("h1", "GPU-fake")


def test_from_names_the_sources_that_read_captures(cfg, capsys):
    args = ["--config", cfg.source, "--source", "nvml", "--from", str(SMI_XML), "--once"]
    assert collect.main(args) == 2
    assert "--from works with --source smi or prometheus, not nvml" in capsys.readouterr().err
    args = ["--config", cfg.source, "--source", "smi", "--since", "2026-01-01"]
    assert collect.main(args) == 2
    assert "read history from --source prometheus only" in capsys.readouterr().err


def test_a_source_that_cannot_work_here_is_a_usage_error(cfg, capsys):
    assert collect.main(["--config", cfg.source, "--source", "prometheus", "--once"]) == 2
    assert "source prometheus needs --url or [collect] prometheus_url" in capsys.readouterr().err


def test_settings_come_from_the_options_then_the_configuration(cfg: Config):
    cfg = replace(
        cfg,
        collect=replace(cfg.collect, host_id="node-7", prometheus_url="http://exp:9400/metrics"),
    )
    s = collect.source_settings(cfg)
    assert (s.host, s.host_id, s.url, s.seed) == (None, "node-7", "http://exp:9400/metrics", 42)
    assert s.rules == cfg.workloads.rules
    s = collect.source_settings(cfg, host="h2", url="http://other:9400/metrics")
    assert (s.host, s.url) == ("h2", "http://other:9400/metrics")


@pytest.mark.parametrize(
    ("configured", "demo_on", "samples"),
    [
        ("auto", True, "demo"),
        ("demo", False, "demo"),
        ("smi", False, None),  # sampled by `gpuledger collect`, not the daemon
        ("prometheus", True, None),
        ("fake", False, "fake"),
    ],
)
def test_the_daemon_samples_only_the_sources_it_runs_itself(
    cfg: Config, extra_source, configured, demo_on, samples
):
    cfg = replace(cfg, collect=replace(cfg.collect, source=configured))
    agent = Daemon(cfg)._sampler(demo_on)
    if samples is None:
        assert agent is None
        return
    sources_seen = set(agent.sample(datetime(2026, 11, 20, 12, tzinfo=UTC)).gpu_samples["source"])
    assert sources_seen == {samples}


def test_the_daemon_asks_the_probe_before_sampling(cfg: Config, extra_source, monkeypatch, caplog):
    """A source with a probe that says no is not opened (NVML on a host without a driver)."""
    monkeypatch.setitem(
        sources.SOURCES, "fake", replace(extra_source, probe=True)
    )  # this module's probe() below
    cfg = replace(cfg, collect=replace(cfg.collect, source="fake"))
    with caplog.at_level("INFO", logger="cli.daemon"):
        assert Daemon(cfg)._sampler(False) is None
    assert "no local sampling: no fake GPU here" in caplog.text


def probe() -> tuple[bool, str]:
    return False, "no fake GPU here"


def test_the_lean_collector_imports_only_the_chosen_source():
    code = (
        "import sys; from cli.entry import main; "
        "rc = main(['collect', '--source', 'demo', '--once', '--format', 'json']); "
        "print(sorted(m for m in ('collectors.gpu.nvml', 'collectors.gpu.smi', "
        "'collectors.gpu.prometheus', 'collectors.demo') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip().splitlines()[-1] == "['collectors.demo']"
