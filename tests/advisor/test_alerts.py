"""The alert state machine (advisor/alerts.py) on a real warehouse, with messages delivered to a
real webhook and a real SMTP server on 127.0.0.1: one alert per run, across ingest batches and a
daemon restart, cooldown, the digest, and the demo fleet's idle H100 notebook."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from advisor.alerts import AlertService, check_alerts, plan_changes
from cli import app
from config.settings import EmailConfig
from tests.advisor.receivers import http_receiver, smtp_receiver
from tests.advisor.waste_samples import (
    H100_HOST,
    P5_4XL_USD,
    T0,
    ingest,
    notebook,
    p5_bill,
    quiet_cfg,
    samples,
)
from warehouse import alerts as store

MIN = timedelta(minutes=1)


def at(minutes: int) -> datetime:
    return T0 + minutes * MIN


def hooked(cfg, url: str, **alerts):
    """The configuration with the JSON webhook on (its URL in $TEST_HOOK_URL) and the log off."""
    conf = quiet_cfg(cfg, webhook_url_env="TEST_HOOK_URL", log=False, **alerts)
    return conf, {"TEST_HOOK_URL": url}


def alert_rows(wh) -> list[dict]:
    return store.list_alerts(wh, T0 - timedelta(days=30)).to_dicts()


def sent(hook) -> list[tuple[str, str, float]]:
    return [
        (r.body["event"], r.body["alert"]["alert_id"], round(r.body["alert"]["wasted_usd"], 4))
        for r in hook.ok()
    ]


def test_a_notebook_idle_45_minutes_on_an_h100_is_one_alert_resolved_when_it_resumes(cfg):
    # 45 idle minutes (09:10-09:55) on a p5.4xlarge at $6.88/h, arriving in four ingest batches
    with http_receiver() as hook, app.open_warehouse(cfg) as wh:
        conf, env = hooked(cfg, hook.url)
        service = AlertService(conf, app.catalog_for(conf), environ=env)
        batches = [
            (notebook(at(0), 10, idle=False), notebook(at(10), 25, idle=True)),  # 25 idle min
            (notebook(at(35), 10, idle=True),),  # 35
            (notebook(at(45), 10, idle=True),),  # 45, still idle
            (notebook(at(55), 10, idle=False),),  # it resumes
        ]
        ingest(cfg, wh, p5_bill(), *batches[0])
        assert service.run_once(wh, now=at(35)).opened == 0  # 25 minutes: not yet
        assert alert_rows(wh) == []

        ingest(cfg, wh, *batches[1])
        result = service.run_once(wh, now=at(45))
        assert (result.opened, result.resolved) == (1, 0)
        (opened,) = alert_rows(wh)
        assert (opened["state"], opened["kind"], opened["workload"], opened["host"]) == (
            "open",
            "allocated_idle",
            "research-notebook",
            H100_HOST,
        )
        assert opened["started_at"] == at(10)
        assert opened["duration_s"] == 35 * 60
        assert opened["wasted_usd"] == pytest.approx(35 / 60 * 6.88)  # $4.01

        ingest(cfg, wh, *batches[2])
        service.run_once(wh, now=at(55))
        (still,) = alert_rows(wh)
        assert (still["alert_id"], still["state"]) == (opened["alert_id"], "open")
        assert still["wasted_usd"] == pytest.approx(5.16)  # 0.75 h x $6.88, worked by hand

        ingest(cfg, wh, *batches[3])
        result = service.run_once(wh, now=at(65))
        assert (result.opened, result.resolved) == (0, 1)
        assert service.flush(wh, 10)
        (done,) = alert_rows(wh)
        history = store.events(wh, done["alert_id"])["event"].to_list()
        log = store.deliveries(wh)
        service.close()
    assert done["alert_id"] == opened["alert_id"]
    assert (done["state"], done["resolved_at"], done["ended_at"]) == ("resolved", at(55), at(55))
    assert done["duration_s"] == 45 * 60
    assert done["wasted_usd"] == pytest.approx(0.75 * P5_4XL_USD) == pytest.approx(5.16)
    assert history == ["opened", "resolved"]
    assert sent(hook) == [
        ("opened", done["alert_id"], round(35 / 60 * 6.88, 4)),
        ("resolved", done["alert_id"], 5.16),
    ]
    assert log.select("event", "channel", "status").rows() == [
        ("opened", "webhook", "sent"),
        ("resolved", "webhook", "sent"),
    ]


def test_a_consumer_gpu_idle_raises_no_alert(cfg):
    with app.open_warehouse(cfg) as wh:
        ingest(
            cfg,
            wh,
            samples("ws-4090", "GPU-4090", "RTX 4090", T0, 120, util=0.0, mem_total_gib=24.0),
            samples("ws-a1000", "GPU-a1000", "NVIDIA RTX A1000", T0, 120, util=0.0),
        )
        result = check_alerts(wh, cfg, app.catalog_for(cfg), channels=["log"], now=at(120))
        assert (result.runs, result.opened, result.queued) == (0, 0, 0)
        assert alert_rows(wh) == []


def test_a_daemon_restart_in_the_middle_of_a_run_is_still_one_alert(cfg):
    conf = quiet_cfg(cfg)
    catalog = app.catalog_for(conf)
    with app.open_warehouse(conf) as wh:  # the daemon before the restart
        ingest(conf, wh, p5_bill(), notebook(at(0), 40, idle=True))
        service = AlertService(conf, catalog)
        service.run_once(wh, now=at(40))
        service.flush(wh, 5)
        service.close()
        (before,) = alert_rows(wh)
    assert before["state"] == "open"
    with app.open_warehouse(conf) as wh:  # a new process: nothing kept in memory
        ingest(conf, wh, notebook(at(40), 20, idle=True), notebook(at(60), 5, idle=False))
        service = AlertService(conf, catalog)
        result = service.run_once(wh, now=at(65))
        service.flush(wh, 5)
        service.close()
        rows = alert_rows(wh)
        log = store.deliveries(wh)
        history = store.events(wh)
    assert result.opened == 0 and result.resolved == 1
    (after,) = rows
    assert after["alert_id"] == before["alert_id"]
    assert (after["state"], after["started_at"], after["duration_s"]) == ("resolved", at(0), 3600)
    assert after["wasted_usd"] == pytest.approx(P5_4XL_USD)  # one idle hour
    assert history["event"].to_list() == ["opened", "resolved"]
    assert log.select("event", "channel", "status").rows() == [
        ("opened", "log", "sent"),
        ("resolved", "log", "sent"),
    ]


def test_messages_pending_at_a_restart_are_sent_after_it(cfg):
    with http_receiver() as hook:
        conf, env = hooked(cfg, hook.url)
        catalog = app.catalog_for(conf)
        with app.open_warehouse(conf) as wh:  # checked, then stopped before sending
            ingest(conf, wh, p5_bill(), notebook(at(0), 40, idle=True))
            check_alerts(wh, conf, catalog, channels=["webhook"], now=at(40))
            assert store.deliveries(wh, status="pending").height == 1
        with app.open_warehouse(conf) as wh:
            service = AlertService(conf, catalog, environ=env)
            service.run_once(wh, now=at(41))
            assert service.flush(wh, 10)
            service.close()
            log = store.deliveries(wh)
        assert [e for e, _, _ in sent(hook)] == ["opened"]
    assert log["status"].to_list() == ["sent"]


def test_cooldown_stores_a_new_alert_soon_after_one_resolved_but_sends_nothing(cfg):
    with http_receiver() as hook, app.open_warehouse(cfg) as wh:
        conf, env = hooked(cfg, hook.url, cooldown_minutes=30)
        ingest(
            conf,
            wh,
            p5_bill(),
            notebook(at(0), 35, idle=True),
            notebook(at(35), 5, idle=False),  # a cell ran for five minutes
            notebook(at(40), 35, idle=True),
            notebook(at(75), 5, idle=False),
        )
        service = AlertService(conf, app.catalog_for(conf), environ=env)
        result = service.run_once(wh, now=at(80))
        assert service.flush(wh, 10)
        service.close()
        first, second = sorted(alert_rows(wh), key=lambda a: a["started_at"])
        suppressed = store.events(wh, second["alert_id"])["event"].to_list()
    assert (result.opened, result.suppressed) == (2, 1)
    assert (first["notify"], second["notify"]) == (True, False)
    assert suppressed == ["opened", "resolved", "suppressed"]
    assert [(e, a) for e, a, _ in sent(hook)] == [("resolved", first["alert_id"])]


def test_a_run_already_over_at_its_first_check_is_one_resolved_alert_sent_once(cfg):
    with app.open_warehouse(cfg) as wh:
        ingest(cfg, wh, p5_bill(), notebook(at(0), 45, idle=True), notebook(at(45), 5, idle=False))
        catalog = app.catalog_for(cfg)
        first = check_alerts(wh, cfg, catalog, channels=["log"], now=at(50))
        again = check_alerts(wh, cfg, catalog, channels=["log"], now=at(51))
        (alert,) = alert_rows(wh)
        log = store.deliveries(wh)
    assert (first.opened, first.resolved, first.queued) == (1, 1, 1)
    assert (again.opened, again.resolved, again.queued) == (0, 0, 0)
    assert alert["state"] == "resolved" and alert["wasted_usd"] == pytest.approx(5.16)
    message = json.loads(log["message"][0])
    assert message["event"] == "resolved"
    assert "45 min" in message["text"] and "$5.16" in message["text"]


def test_the_daily_digest_goes_out_once_a_day_after_its_hour(cfg):
    conf = quiet_cfg(cfg, digest=True, digest_hour_utc=9)
    catalog = app.catalog_for(conf)
    with app.open_warehouse(conf) as wh:
        ingest(conf, wh, p5_bill(), notebook(at(0), 45, idle=True), notebook(at(45), 5, idle=False))
        early = check_alerts(wh, conf, catalog, channels=["log"], now=T0 - 61 * MIN)
        first = check_alerts(wh, conf, catalog, channels=["log"], now=at(50))
        second = check_alerts(wh, conf, catalog, channels=["log"], now=at(51))
        digests = store.deliveries(wh).filter(pl.col("event") == "digest")
    assert (early.digest, first.digest, second.digest) == (False, True, False)
    (message,) = [json.loads(m) for m in digests["message"]]
    assert message["digest"]["alerts"] == 1
    assert message["digest"]["wasted_usd"] == pytest.approx(5.16)
    assert message["digest"]["by_workload"] == [
        {"workload": "research-notebook", "alerts": 1, "wasted_usd": pytest.approx(5.16)}
    ]


def test_an_open_alert_no_run_continues_resolves_and_a_resolved_one_is_final():
    t = datetime(2026, 1, 1, tzinfo=UTC)
    base = {
        "host": "h",
        "gpu_uuid": "g",
        "workload": "w",
        "kind": "allocated_idle",
        "gpu_model": "H100",
        "duration_s": 1800.0,
        "wasted_s": 1800.0,
        "wasted_usd": 1.0,
        "usd_per_hour": 2.0,
        "notify": True,
    }
    known = pl.DataFrame(
        [
            {
                **base,
                "alert_id": "open-1",
                "state": "open",
                "started_at": t,
                "ended_at": t + 30 * MIN,
            },
            {
                **base,
                "alert_id": "done-1",
                "gpu_uuid": "g2",
                "state": "resolved",
                "started_at": t,
                "ended_at": t + 30 * MIN,
                "resolved_at": t + 30 * MIN,
            },
        ],
        schema=store.ALERT_SCHEMA,
        strict=False,
    )
    rerun = pl.DataFrame(
        [
            {
                **base,
                "gpu_uuid": "g2",
                "started_at": t + 5 * MIN,  # the window cut its start: still the same run
                "ended_at": t + 30 * MIN,
                "ongoing": False,
            }
        ]
    )
    plan = plan_changes(rerun, known, now=t + 40 * MIN, cooldown=timedelta(0))
    assert plan.inserts == []
    (update,) = plan.updates
    assert (update["alert_id"], update["state"]) == ("open-1", "resolved")
    assert [(e["alert_id"], e["event"], e["note"]) for e in plan.events] == [
        ("open-1", "resolved", "no longer detected")
    ]


def test_the_demo_notebook_raises_one_alert_per_idle_run_delivered_by_webhook_and_email(
    demo_warehouse,
):
    """Done when: the demo fleet's idle H100 notebook (research-notebook on i-...0003, an H100 at
    $6.88/h from the p5.4xlarge line of the catalog) raises one alert per idle run with the right
    dollar figure, delivered to the webhook and by email. One demo day ends Wednesday
    2026-11-25 12:00 UTC; the notebook works 10:00-11:00 and 14:00-15:30 on weekdays."""
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    cfg = demo_warehouse
    with http_receiver() as hook, http_receiver() as slack, smtp_receiver() as box:
        conf = quiet_cfg(
            cfg,
            log=False,
            webhook_url_env="TEST_HOOK_URL",
            slack_webhook_url_env="TEST_SLACK_URL",
            email=EmailConfig(
                host=box.host, port=box.port, starttls=False, recipients=("gpu-team@test.example",)
            ),
        )
        env = {"TEST_HOOK_URL": hook.url, "TEST_SLACK_URL": slack.url}
        with app.open_warehouse(conf) as wh:
            service = AlertService(conf, app.catalog_for(conf), environ=env)
            service.run_once(wh, now=now)
            assert service.flush(wh, 20)
            service.close()
            alerts = store.list_alerts(wh, now - timedelta(days=2))
        mails = box.wait_for(alerts.height)
        slacks = slack.ok()
        hooks = hook.ok()
    notebook_alerts = alerts.filter(pl.col("workload") == "research-notebook").sort("started_at")
    d = datetime(2026, 11, 24, tzinfo=UTC)
    expected = [  # (start, end, state, dollars by hand at $6.88/h)
        (d + timedelta(hours=12), d + timedelta(hours=14), "resolved", 2 * 6.88),  # day starts
        (d + timedelta(hours=15.5), d + timedelta(hours=34), "resolved", 18.5 * 6.88),
        (d + timedelta(hours=35), d + timedelta(hours=36), "open", 1 * 6.88),  # still idle
    ]
    got = notebook_alerts.select("started_at", "ended_at", "state", "wasted_usd").rows()
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    assert [g[3] for g in got] == pytest.approx([13.76, 127.28, 6.88])
    assert set(notebook_alerts["kind"]) == {"allocated_idle"}
    assert set(notebook_alerts["host"]) == {"i-0d3a9c1e5b7f20003"}
    # Every alert reached every channel once: the webhook, Slack and email.
    by_id = {r.body["alert"]["alert_id"]: r.body for r in hooks}
    assert set(by_id) == set(alerts["alert_id"])
    assert len(hooks) == len(slacks) == len(mails) == alerts.height
    ongoing = notebook_alerts.row(2, named=True)
    assert by_id[ongoing["alert_id"]]["event"] == "opened"
    assert by_id[ongoing["alert_id"]]["alert"]["wasted_usd"] == pytest.approx(6.88)
    long_run = by_id[notebook_alerts["alert_id"][1]]
    assert long_run["event"] == "resolved" and "$127.28" in long_run["text"]
    assert any("$127.28" in m.get_content() for _, _, m in mails)
    assert any("$127.28" in s.body["text"] and s.body["blocks"] for s in slacks)
