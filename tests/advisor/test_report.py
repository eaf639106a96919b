"""The weekly report: its weeks, when it is due, what it says (checked against the snapshot with
DuckDB), its images, and its delivery to a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import email
import email.policy
import socketserver
import threading
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb
import pytest

from advisor.jobs import weekly_report_tick
from advisor.report import (
    ReportError,
    due_at,
    due_weeks,
    email_report,
    last_complete_week,
    week_bounds,
    week_of,
    write_report,
)
from cli import app
from config.settings import Config, EmailConfig, load_config
from tables.escape import markdown_text
from tests.clock import pinned_clock, pinned_tz
from tests.conftest import ROOT

PNG = b"\x89PNG\r\n\x1a\n"


def test_iso_weeks():
    start, end = week_bounds("2026-W48")
    assert start == datetime(2026, 11, 23, tzinfo=UTC) and end == datetime(2026, 11, 30, tzinfo=UTC)
    assert week_of(start) == "2026-W48" and week_of(end - timedelta(seconds=1)) == "2026-W48"
    assert week_bounds("2021-W01")[0] == datetime(2021, 1, 4, tzinfo=UTC)
    assert last_complete_week(datetime(2026, 11, 30, 9, tzinfo=UTC)) == "2026-W48"
    for bad, message in (("2026-48", "must look like 2026-W48"), ("2026-W54", "not a week")):
        with pytest.raises(ReportError, match=message):
            week_bounds(bad)


@pytest.mark.parametrize(
    ("tz", "due"),
    [
        (UTC, datetime(2026, 11, 30, 8, tzinfo=UTC)),  # Monday 08:00
        (timezone(timedelta(hours=-8)), datetime(2026, 11, 30, 16, tzinfo=UTC)),  # 08:00 PST
        # East of UTC Monday 08:00 comes before the UTC week is over: at its end.
        (timezone(timedelta(hours=10)), datetime(2026, 11, 30, 0, tzinfo=UTC)),
    ],
)
def test_the_report_is_due_monday_0800_local_time(tz, due):
    assert due_at("2026-W48", tz) == due


def test_due_weeks_are_the_missed_complete_weeks_with_data():
    data = (datetime(2026, 11, 13, 12, tzinfo=UTC), datetime(2026, 11, 30, 7, tzinfo=UTC))
    monday_7 = datetime(2026, 11, 30, 7, tzinfo=UTC)
    # Before 08:00 the week just ended is not due yet; the daemon missed W46 and W47.
    assert due_weeks(monday_7, set(), *data, catch_up=4, tz=UTC) == ["2026-W46", "2026-W47"]
    later = monday_7 + timedelta(hours=2)
    assert due_weeks(later, {"2026-W47"}, *data, catch_up=4, tz=UTC) == ["2026-W46", "2026-W48"]
    assert due_weeks(later, set(), *data, catch_up=1, tz=UTC) == ["2026-W48"]
    assert due_weeks(later, set(), None, None, catch_up=4, tz=UTC) == []


@pytest.mark.date_sensitive
def test_the_report_is_due_monday_0800_in_the_machines_time_zone(clock):
    """Without a zone, `due_at` uses the machine's (TZ, pinned with the clock: Europe/Berlin
    unless --pinned-tz): the week that ended last is due from 08:00 local time on the first
    Monday on or after its end's local date (the UTC week ends on Monday at 01:00 or 02:00 in
    Berlin, summer time or not; on Sunday evening in New York), or at its end where that comes
    later, and the daemon's `due_weeks` offers it from then on."""
    zone = ZoneInfo(pinned_tz())
    week = last_complete_week(clock)
    start, end = week_bounds(week)
    days = (end.astimezone(zone).date() + timedelta(days=k) for k in range(7))
    monday = next(d for d in days if d.weekday() == 0)
    want = max(datetime.combine(monday, time(8), tzinfo=zone), end)
    assert due_at(week) == want
    data = (start - timedelta(days=14), clock)
    assert (week in due_weeks(clock, set(), *data, catch_up=1)) == (clock >= want)


@pytest.fixture(scope="module")
def demo_cfg(tmp_path_factory, pinned_instant) -> Config:
    """Two demo weeks ending at the (pinned) current hour, ingested and published."""
    base = tmp_path_factory.mktemp("report")
    (base / "config").mkdir()
    conf = base / "config" / "gpuledger.toml"
    conf.write_text(
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n'
        '[workloads]\nsensitive = ["clinical-nlp"]\n'
    )
    cfg = load_config(conf, db=base / "data" / "warehouse.duckdb")
    cfg = replace(cfg, demo=replace(cfg.demo, history_days=15, history_interval_s=300))
    now = pinned_instant.replace(minute=0, second=0, microsecond=0)
    with pinned_clock(pinned_instant):
        wh = app.open_warehouse(cfg)
        try:
            app.seed_demo(wh, cfg, app.catalog_for(cfg), progress=False, now=now)
        finally:
            wh.close()
    return cfg


def snapshot_week(cfg: Config, week: str) -> dict:
    start, end = week_bounds(week)
    con = duckdb.connect(str(cfg.snapshot_path), read_only=True)
    try:
        spend, hours = con.execute(
            "SELECT sum(cost_usd), sum(gpu_hours) FROM daily_ledger WHERE day >= ? AND day < ?",
            [start.date(), end.date()],
        ).fetchall()[0]
        per = dict(
            con.execute(
                "SELECT workload, sum(cost_usd) FROM daily_ledger WHERE day >= ? AND day < ?"
                " GROUP BY 1",
                [start.date(), end.date()],
            ).fetchall()
        )
    finally:
        con.close()
    return {"spend": spend, "hours": hours, "per": per}


@pytest.mark.slow
def test_the_weekly_report_of_the_demo_fleet(demo_cfg, tmp_path, clock):
    week = last_complete_week(clock)
    files = write_report(demo_cfg, app.catalog_for(demo_cfg), week, directory=tmp_path)
    assert files.html == tmp_path / f"{week}.html" and files.markdown == tmp_path / f"{week}.md"
    for image in files.images.values():
        assert image.read_bytes().startswith(PNG)
    assert set(files.images) == {"spend", "hours"}
    md, page = files.markdown.read_text(), files.html.read_text()
    want = snapshot_week(demo_cfg, week)
    assert f"**Spend this week: ${want['spend']:,.0f}**" in md
    assert f"**GPU-hours: {want['hours']:,.0f}**" in md
    for heading in (
        "## What changed since last week",
        "## Recommended actions",
        "## Spend and GPU-hours per workload",
        "## Wasted high-end GPU time",
        "## Recommendations with their arithmetic",
    ):
        assert heading in md
    # cloud and local side by side, one row per workload with its total
    for workload, usd in want["per"].items():
        assert f"| {markdown_text(workload)} |" in md and f"${usd:,.2f}" in md
    assert "| llm-pretrain | buy_local | buy 8 × A100-80GB ($124,800) |" in md
    assert "| research-notebook | downsize |" in md
    assert "### clinical-nlp: move_to_local" in md and "730 h" in md
    assert "research-notebook | H100 | allocated idle" in md  # the idle H100, from waste.py
    assert f"src='{week}-spend.png'" in page and "<h2>Recommended actions</h2>" in page


def test_a_week_without_data_is_refused(demo_cfg, tmp_path, clock):
    with pytest.raises(ReportError, match="no GPU data in 2020-W01"):
        write_report(demo_cfg, app.catalog_for(demo_cfg), "2020-W01", directory=tmp_path)
    assert not list(tmp_path.iterdir())


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO with AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def handle(self):
        server = self.server
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            cmd = line.decode().strip()
            verb = cmd.split(" ")[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-test\r\n250 AUTH PLAIN\r\n")
            elif verb == "AUTH":
                server.auth = base64.b64decode(cmd.split(" ")[2]).split(b"\0")
                self.wfile.write(b"235 ok\r\n")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                server.envelope.append(cmd)
                self.wfile.write(b"250 ok\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go\r\n")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk
                server.messages.append(data)
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"502 no\r\n")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SmtpHandler)
    server.daemon_threads = True
    server.messages, server.envelope, server.auth = [], [], None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_the_report_is_emailed_with_its_charts_and_the_password_from_the_environment(
    demo_cfg, tmp_path, smtp_server, monkeypatch, clock
):
    cfg = replace(
        demo_cfg,
        report=replace(
            demo_cfg.report,
            email=EmailConfig(
                host="127.0.0.1",
                port=smtp_server.server_address[1],
                starttls=False,
                user="reports",
                password_env="GPULEDGER_TEST_SMTP_PASSWORD",
                recipients=("lead@example.com",),
            ),
            timeout_s=5.0,
        ),
    )
    week = last_complete_week(clock)
    files = write_report(cfg, app.catalog_for(cfg), week, directory=tmp_path)
    with pytest.raises(ReportError, match="GPULEDGER_TEST_SMTP_PASSWORD, which is not set"):
        email_report(cfg, files, environ={})
    monkeypatch.setenv("GPULEDGER_TEST_SMTP_PASSWORD", "s3cret-pw")
    email_report(cfg, files)
    assert smtp_server.auth[1:] == [b"reports", b"s3cret-pw"]
    assert "rcpt TO:<lead@example.com>" in smtp_server.envelope
    (raw,) = smtp_server.messages
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"].startswith(f"gpuledger report {week}: spend $")
    parts = {p.get_content_type(): p for p in msg.walk()}
    assert {"text/plain", "text/html", "image/png"} <= set(parts)
    html = parts["text/html"].get_payload(decode=True).decode()
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 2
    for image in images:
        assert f"cid:{image['Content-ID'][1:-1]}" in html
        assert image.get_payload(decode=True).startswith(PNG)
    for path in [files.html, files.markdown]:
        assert "s3cret-pw" not in path.read_text()


@pytest.mark.slow
def test_the_daemon_job_writes_missed_weeks_once(demo_cfg, tmp_path, clock):
    cfg = replace(demo_cfg, report=replace(demo_cfg.report, dir=str(tmp_path / "reports")))
    catalog = app.catalog_for(cfg)
    now = clock
    first = weekly_report_tick(cfg, catalog, now=now + timedelta(days=7), tz=UTC)
    assert len(first) == 1  # one a tick: the scheduler is never held for long
    rest = weekly_report_tick(cfg, catalog, now=now + timedelta(days=7), tz=UTC, limit=None)
    weeks = sorted(f.week for f in first + rest)
    assert weeks[0] == first[0].week  # oldest first
    # 15 days of data: the two or three complete weeks that hold some, newest included
    assert weeks and weeks[-1] == week_of(now)
    assert all((tmp_path / "reports" / f"{w}.html").exists() for w in weeks)
    assert weekly_report_tick(cfg, catalog, now=now + timedelta(days=7), tz=UTC) == []


def test_the_daemon_schedules_the_weekly_report(cfg):
    from cli.jobs import periodic_jobs

    quiet = replace(cfg, alerts=replace(cfg.alerts, enabled=False))
    names = [name for name, _period, _fn in periodic_jobs(quiet, None, None, demo_on=False)]
    assert "weekly-report" in names
    off = replace(quiet, report=replace(quiet.report, weekly=False))
    assert "weekly-report" not in [n for n, _p, _f in periodic_jobs(off, None, None, demo_on=False)]
