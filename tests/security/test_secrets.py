"""Secrets: none in any log line (commands run with fake secrets at DEBUG, their output searched),
and a warning when a configuration file that holds one is readable by others."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from cli.main import main
from config.exposure import RedactingFilter, exposure_warning, install_log_redaction
from tests.collectors.billing.aws_fakes import MotoAws, aws, moto_server  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEKEYID0000001",
    "AWS_SECRET_ACCESS_KEY": "fake/SecretAccessKey+0000000000000000000001",
    "AWS_SESSION_TOKEN": "FakeSessionToken0000000000000000000000000001",
    "GL_TEST_SLACK_URL": "http://127.0.0.1:9/services/T0000/B0000/SlackSecret000001",
    "GL_TEST_WEBHOOK_TOKEN": "WebhookBearerSecret000001",
    "GL_TEST_SMTP_PASSWORD": "SmtpPasswordSecret000001",
}


def config(tmp: Path) -> Path:
    path = tmp / "gpuledger.toml"
    path.write_text(
        f"""
[warehouse]
path = "{tmp / "data" / "warehouse.duckdb"}"
[catalog]
path = "{ROOT / "config" / "catalog.csv"}"
[demo]
mode = "off"
[alerts]
slack_webhook_url_env = "GL_TEST_SLACK_URL"
webhook_url_env = "GL_TEST_SLACK_URL"
webhook_token_env = "GL_TEST_WEBHOOK_TOKEN"
attempts = 1
timeout_s = 1.0
[alerts.email]
host = "127.0.0.1"
port = 9
user = "gpuledger"
password_env = "GL_TEST_SMTP_PASSWORD"
recipients = ["ops@example.com"]
[metrics]
enabled = false
[report]
weekly = false
"""
    )
    path.chmod(0o600)
    return path


def samples_csv(path: Path) -> Path:
    """Ninety minutes of samples from two hours ago by the real clock: the commands that read
    them run as other processes, which the pinned clock (tests/clock.py) does not reach."""
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    head = "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,workload"
    rows = [
        f"{(t + timedelta(seconds=60 * i)).isoformat()},node-s,GPU-s,H100,2,70000,81559,90,idle-job"
        for i in range(90)
    ]
    path.write_text("\n".join([head, *rows]) + "\n")
    return path


@pytest.mark.slow
def test_no_secret_reaches_any_log_at_debug(aws: MotoAws, tmp_path: Path) -> None:  # noqa: F811
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="secret-test")
    cfg = config(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if k != "GPULEDGER_CONFIG"},
        **SECRETS,
        "AWS_ENDPOINT_URL": aws.url,
        "GPULEDGER_LOG_LEVEL": "DEBUG",
        "PYTHONPATH": str(ROOT),
    }
    csv = samples_csv(tmp_path / "s.csv")
    commands = [
        ["doctor"],
        ["import", "samples", str(csv)],
        ["run", "--once"],
        ["alerts", "--check"],  # delivers to the (closed) webhook, Slack and SMTP addresses
        ["ship", "--once", "--target", "s3://secret-test/fleet"],  # signed S3 requests
        ["costs", "--format", "json"],
    ]
    logs = []
    for cmd in commands:
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", *cmd, "--config", str(cfg)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        logs.append((cmd, done.returncode, done.stdout + done.stderr))
    assert any("botocore" in text for _, _, text in logs)  # the SDK did log at DEBUG
    for cmd, code, text in logs:
        assert code in (0, 1), (cmd, text[-2000:])
        for name, secret in SECRETS.items():
            assert secret not in text, f"{name} in the output of gpuledger {' '.join(cmd)}"
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".log", ".txt")]
    for path in files:
        text = path.read_text(errors="replace")
        assert not any(s in text for s in SECRETS.values()), path


def test_the_filter_redacts_messages_arguments_and_tracebacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "TokenValue0123456789")
    monkeypatch.setenv("MY_HOOK", "https://hooks.example/abcdef123456")
    logger = logging.getLogger("tests.security.redaction")
    root = logging.Logger("isolated-root")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    root.addHandler(handler)
    install_log_redaction(None, root=root)
    handler.filters[0].secrets.append("https://hooks.example/abcdef123456")
    logger.parent = root
    logger.propagate = True
    logger.warning("token=%s", "TokenValue0123456789")
    try:
        raise RuntimeError("posting to https://hooks.example/abcdef123456 failed")
    except RuntimeError:
        logger.exception("delivery failed")
    text = "\n".join(records)
    assert "TokenValue0123456789" not in text and "abcdef123456" not in text
    assert text.count("***") >= 3
    assert isinstance(handler.filters[0], RedactingFilter)


def test_short_values_are_not_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "abc")
    flt = install_log_redaction(None, root=logging.Logger("other-root"))
    assert "abc" not in flt.secrets


SECRET_IN_FILE = """
[alerts]
slack_webhook_url_env = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"
"""
NAMES_ONLY = """
[alerts]
slack_webhook_url_env = "GPULEDGER_SLACK_URL"
[alerts.email]
password_env = "GPULEDGER_SMTP_PASSWORD"
"""


@pytest.mark.parametrize(
    ("text", "mode", "warned"),
    [
        (SECRET_IN_FILE, 0o644, True),
        (SECRET_IN_FILE, 0o640, True),
        (SECRET_IN_FILE, 0o600, False),
        (NAMES_ONLY, 0o644, False),
    ],
)
def test_a_readable_configuration_holding_a_secret_is_warned_about(
    tmp_path: Path,
    text: str,
    mode: int,
    warned: bool,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "gpuledger.toml"
    path.write_text(text)
    path.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="gpuledger.config"):
        main(["doctor", "--config", str(path), "--db", str(tmp_path / "w.duckdb")])
    capsys.readouterr()
    said = caplog.text
    if warned:
        assert str(path) in said and "alerts.slack_webhook_url_env" in said
        assert "chmod 600" in said and "XXXXXXXX" not in said
    else:
        assert "readable by other users" not in said


def test_secret_findings_name_the_key_and_what_it_looks_like(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("x")
    path.chmod(0o604)
    raw = {
        "aws": {
            "accounts": [{"role_arn": "arn:aws:iam::1:role/x", "note": "AKIAABCDEFGHIJKLMNOP"}]
        },
        "report": {"email": {"password_env": "hunter2 is my password"}},
        "ship": {"target": "s3://bucket/prefix"},
        "collect": {"prometheus_url": "http://user:pa55@dcgm:9400/metrics"},
    }
    warning = exposure_warning(path, raw)
    assert warning is not None
    assert "aws.accounts[0].note (an AWS access key id)" in warning
    assert "report.email.password_env (holds a value" in warning
    assert "collect.prometheus_url (a URL with a password)" in warning
    assert "ship.target" not in warning
