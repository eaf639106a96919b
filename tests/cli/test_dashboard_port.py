"""`gpuledger dashboard --port` and `gpuledger run --dashboard --port` serve the dashboard on the
port given (README: "Changing the dashboard's port"); a port outside 1-65535 is refused with
exit status 2, naming the option."""

from __future__ import annotations

import subprocess

import pytest

from cli import daemon
from cli.main import main


def run_cli(cfg, *args: str) -> int:
    return main(["--config", cfg.source, "--db", str(cfg.db_path), *args])


def test_dashboard_serves_on_the_port_given(cfg, monkeypatch, capsys):
    started: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda command, env=None: started.append(command) or 0)
    assert run_cli(cfg, "dashboard", "--port", "8611") == 0
    (command,) = started
    assert command[command.index("--server.port") + 1] == "8611"
    assert "dashboard: http://127.0.0.1:8611" in capsys.readouterr().out


def test_dashboard_without_port_uses_the_configured_one(cfg, monkeypatch):
    started: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda command, env=None: started.append(command) or 0)
    assert run_cli(cfg, "dashboard") == 0
    assert started[0][started[0].index("--server.port") + 1] == str(cfg.dashboard.port) == "8501"


def test_run_with_the_dashboard_takes_the_port(cfg, monkeypatch):
    seen = {}

    class FakeDaemon:
        def __init__(self, cfg, *, dashboard, once):
            seen.update(port=cfg.dashboard.port, dashboard=dashboard)

        def run(self) -> int:
            return 0

    monkeypatch.setattr(daemon, "Daemon", FakeDaemon)
    assert run_cli(cfg, "run", "--dashboard", "--port", "8622") == 0
    assert seen == {"port": 8622, "dashboard": True}


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_a_port_that_is_no_port_is_refused(cfg, port, capsys):
    assert run_cli(cfg, "dashboard", "--port", port) == 2
    assert "--port" in capsys.readouterr().err
