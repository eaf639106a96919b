"""`gpuledger alerts` end to end: --check on real warehouse files, the JSON contract (DESIGN.md §3),
the listing from the published snapshot, delivery configured by environment variable names, and
the exit statuses."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cli import app
from cli.jobs import periodic_jobs
from cli.main import main
from config.settings import load_config
from tables import spool
from tests.advisor.receivers import http_receiver, smtp_receiver
from tests.advisor.waste_samples import H100_HOST, notebook, p5_bill, samples
from warehouse import alerts as store
from warehouse.lock import WriterLock

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = {
    "workload",
    "host",
    "gpu_uuid",
    "kind",
    "state",
    "started_at",
    "duration_s",
    "wasted_usd",
}
UNBILLED_H100 = "i-0cccccccccccc0003"  # an EC2 instance the bill does not name yet


def run_cli(conf: Path, db: Path, *args: str) -> int:
    return main(["--config", str(conf), "--db", str(db), *args])


def write_config(tmp_path: Path, alerts: str = "") -> tuple[Path, Path]:
    conf = tmp_path / "gpuledger.toml"
    conf.write_text(
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n'
        f"[alerts]\nretry_backoff_s = 0.05\ntimeout_s = 2.0\n{alerts}"
    )
    return conf, tmp_path / "data" / "warehouse.duckdb"


def spool_scenario(spool_dir: Path, now: datetime) -> None:
    """Two H100s seen just now: the notebook idled 45 minutes and resumed five minutes ago; a
    second H100 has been idle for 40 minutes and still is."""
    start = now - timedelta(minutes=50)
    frames = [
        p5_bill(start - timedelta(hours=1), 3),
        notebook(start, 45, idle=True),
        notebook(start + timedelta(minutes=45), 5, idle=False),
        samples(
            UNBILLED_H100,
            "GPU-22222222",
            "NVIDIA H100 80GB HBM3",
            now - timedelta(minutes=40),
            40,
            util=2.0,
            workload="llm-eval",
        ),
    ]
    for frame in frames:
        kind = "billing_items" if "EffectiveCost" in frame.columns else "gpu_samples"
        spool.write_batch(spool_dir, kind, frame, "test")


@pytest.fixture
def now(clock: datetime) -> datetime:
    """The pinned clock (tests/clock.py), on a whole minute: the scenario ends there."""
    return clock.replace(second=0, microsecond=0)


@pytest.mark.date_sensitive
def test_check_then_list_prints_the_json_contract(tmp_path, now, capsys):
    conf, db = write_config(tmp_path)
    spool_scenario(load_config(conf, db=db).spool_dir, now)

    assert run_cli(conf, db, "alerts", "--check", "--format", "json") == 0
    out, err = capsys.readouterr()
    checked = json.loads(out)
    assert "2 alert(s) opened, 1 resolved" in err

    by_host = {a["host"]: a for a in checked}
    assert set(by_host) == {H100_HOST, UNBILLED_H100}
    for alert in checked:
        assert set(alert) >= CONTRACT
        datetime.fromisoformat(alert["started_at"])
    idle = by_host[H100_HOST]
    assert (idle["workload"], idle["kind"], idle["state"]) == (
        "research-notebook",
        "allocated_idle",
        "resolved",
    )
    assert idle["duration_s"] == 45 * 60
    assert idle["wasted_usd"] == pytest.approx(5.16)  # 0.75 h x $6.88 (p5.4xlarge)
    other = by_host[UNBILLED_H100]
    assert (other["workload"], other["state"], other["duration_s"]) == ("llm-eval", "open", 2400)
    # no bill yet: the catalog's cheapest H100 per GPU, $55.04 / 8 = $6.88
    assert other["wasted_usd"] == pytest.approx(40 / 60 * 6.88)
    assert checked[0]["state"] == "open"  # open ones first

    # The read-only listing reads the snapshot the check published.
    assert run_cli(conf, db, "alerts", "--format", "json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == checked

    assert run_cli(conf, db, "alerts") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "workload",
        "host",
        "gpu_model",
        "kind",
        "state",
        "started_at",
        "duration_s",
        "wasted_usd",
    ]
    assert any("research-notebook" in line and "5.16" in line for line in table[1:])


def test_check_delivers_to_the_webhook_and_by_email_with_secrets_from_the_environment(
    tmp_path, now, capsys, monkeypatch
):
    with http_receiver() as hook, smtp_receiver() as box:
        conf, db = write_config(
            tmp_path,
            'webhook_url_env = "TEST_GPULEDGER_HOOK"\nlog = false\n[alerts.email]\n'
            f'host = "{box.host}"\nport = {box.port}\nstarttls = false\n'
            'recipients = ["gpu-team@test.example"]\n',
        )
        monkeypatch.setenv("TEST_GPULEDGER_HOOK", hook.url)
        spool_scenario(load_config(conf, db=db).spool_dir, now)
        assert run_cli(conf, db, "alerts", "--check", "--format", "json") == 0
        alerts = json.loads(capsys.readouterr().out)
        mails = box.wait_for(2)
        hooks = hook.ok()
    assert sorted(h.body["event"] for h in hooks) == ["opened", "resolved"]
    assert {h.body["alert"]["alert_id"] for h in hooks} == {a["alert_id"] for a in alerts}
    assert len(mails) == 2
    subjects = sorted(str(m["Subject"]).strip() for _, _, m in mails)
    assert subjects[0].startswith("[gpuledger] Allocated but idle: llm-eval")
    assert "$5.16" in next(m.get_content() for _, _, m in mails if "Resolved" in m["Subject"])
    assert hook.url not in (tmp_path / "gpuledger.toml").read_text()


def test_a_channel_whose_variable_is_unset_is_named_and_left_out(tmp_path, now, capsys):
    conf, db = write_config(tmp_path, 'slack_webhook_url_env = "TEST_GPULEDGER_UNSET"\n')
    spool_scenario(load_config(conf, db=db).spool_dir, now)
    assert run_cli(conf, db, "alerts", "--check") == 0
    err = capsys.readouterr().err
    assert "slack_webhook_url_env names $TEST_GPULEDGER_UNSET, which is not set" in err


def test_list_without_a_snapshot_exits_1_and_says_why(tmp_path, capsys):
    conf, db = write_config(tmp_path)
    assert run_cli(conf, db, "alerts", "--format", "json") == 1
    assert "no snapshot" in capsys.readouterr().err


def test_check_while_the_daemon_owns_the_warehouse_exits_1(tmp_path, capsys):
    conf, db = write_config(tmp_path)
    db.parent.mkdir(parents=True)
    lock = WriterLock(db).acquire()
    try:
        assert run_cli(conf, db, "alerts", "--check") == 1
    finally:
        lock.release()
    assert "the daemon checks every minute" in capsys.readouterr().err


@pytest.mark.parametrize("days", ["0", "401"])
def test_bad_days_exit_2(tmp_path, days, capsys):
    conf, db = write_config(tmp_path)
    assert run_cli(conf, db, "alerts", "--days", days) == 2
    assert "--days" in capsys.readouterr().err


def test_the_daemon_job_checks_every_minute_and_can_be_turned_off(cfg, now):
    spool_scenario(cfg.spool_dir, now)
    catalog = app.catalog_for(cfg)
    with app.open_warehouse(cfg) as wh:
        wh.ingest_spool()
        jobs = {
            name: (period, fn)
            for name, period, fn in periodic_jobs(cfg, wh, catalog, demo_on=False)
        }
        assert jobs["alerts"][0] == 60.0
        jobs["alerts"][1]()  # what the scheduler calls
        states = sorted(store.list_alerts(wh, now - timedelta(days=1))["state"])
        off = replace(cfg, alerts=replace(cfg.alerts, enabled=False))
        names = [name for name, _, _ in periodic_jobs(off, wh, catalog, demo_on=False)]
    assert states == ["open", "resolved"]
    assert "alerts" not in names
