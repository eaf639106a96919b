"""The alert state machine over wasted high-end GPU time (advisor/waste.py finds the runs).

One alert per GPU + workload + kind and run: it opens when a run grows long enough, is updated
(duration, money) while the run lasts and resolves when it ends. All state lives in the warehouse
(warehouse/alerts.py): every check re-reads the open alerts and the minutes since each one's
start, so a run that spans ingest batches or a daemon restart stays one alert. A new alert on a
key whose last alert resolved less than `[alerts] cooldown_minutes` before is stored but not
sent. Messages go to an outbox (the delivery log) in the same transaction and are sent by
advisor/delivery.py; an optional daily digest sums up the last 24 hours.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from advisor.delivery import Delivery, Dispatcher, channels_from_config
from advisor.waste import billed_hosts, cost_rates_now, wasted_runs
from config.settings import Config
from tables.published import ALERT
from tables.stored import RESULTS_GPU_COST_RATES
from warehouse import alerts as store
from warehouse import results
from warehouse.store import ROLLUP_LOOKBACK, Warehouse

log = logging.getLogger(__name__)

KEY = ("host", "gpu_uuid", "workload", "kind")
# The bill's instance types are read over all time, as for the stored waste (advisor/jobs.py).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KIND_WORDS = {
    "allocated_idle": "allocated but idle",
    "inefficient_busy": "busy but inefficient",
    "over_powered": "over-powered",
}
RUN_FIGURES = (
    "gpu_model",
    "started_at",
    "ended_at",
    "duration_s",
    "wasted_s",
    "wasted_usd",
    "usd_per_hour",
    "placement",
    "price_basis",
    "activity_pct",
    "util_pct",
    "sm_active_pct",
    "mem_used_max_gib",
    "suggested_class",
)


# Words -----------------------------------------------------------------------------------------
def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _usd(value: Any) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def describe(alert: Mapping[str, Any], event: str, cfg: Config) -> dict[str, Any]:
    """The notification for one alert event: title, text, fields and the alert as data."""
    t = cfg.thresholds
    kind = alert["kind"]
    who = f"{alert['workload']} on {alert['host']}"
    gpu = f"{alert['gpu_model']} {alert['gpu_uuid']}"
    took = _duration(alert["duration_s"] or 0.0)
    money = f"{_usd(alert['wasted_usd'])} at {_usd(alert['usd_per_hour'])}/h"
    if kind == "allocated_idle":
        what = (
            f"{who} has held {gpu} for {took} with {_pct(alert['activity_pct'])} activity"
            f" (idle under {t.idle_activity_pct:g}%)"
        )
    elif kind == "inefficient_busy":
        what = (
            f"{who} keeps {gpu} busy (utilization.gpu {_pct(alert['util_pct'])}) but only"
            f" {_pct(alert['sm_active_pct'])} of its SMs active, for {took}"
        )
    else:
        what = (
            f"{who} uses at most {alert['mem_used_max_gib'] or 0:.1f} GiB and"
            f" {_pct(alert['activity_pct'])} activity of {gpu} for {took}:"
            f" it fits a smaller GPU, {alert['suggested_class']}"
        )
    if event == "opened":
        title = f"{KIND_WORDS[kind].capitalize()}: {alert['workload']} on {alert['gpu_model']}"
        text = f"{what}. Wasted so far: {money}."
    else:
        title = f"Resolved: {alert['workload']} on {alert['gpu_model']} was {KIND_WORDS[kind]}"
        text = (
            f"{what}, from {_when(alert['started_at'])} to {_when(alert['ended_at'])}."
            f" Wasted: {money}."
        )
    basis = alert.get("price_basis") or ""
    if kind == "over_powered":
        basis = f"{basis}; wasted = the price above {alert['suggested_class']}"
    elif kind == "inefficient_busy":
        basis = f"{basis}; wasted = the idle share of the SMs"
    return {
        "event": event,
        "title": title,
        "text": text,
        "fields": {
            "Workload": alert["workload"],
            "Host": alert["host"],
            "GPU": gpu,
            "Kind": kind,
            "State": alert["state"],
            "Started": _when(alert["started_at"]),
            "Duration": took,
            "Wasted": _usd(alert["wasted_usd"]),
            "Price": f"{_usd(alert['usd_per_hour'])}/h",
        },
        "footer": f"gpuledger alert {alert['alert_id']} · price basis: {basis}",
        "alert": contract_row(alert),
    }


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else str(value)


def contract_row(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The fields `alerts --format json` promises (DESIGN.md §3), plus a few more, JSON-ready:
    tables/published.py ALERT, in its order."""
    out: dict[str, Any] = {}
    for k in ALERT.names:
        v = alert.get(k)
        if isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, float):
            v = round(v, 6)
        out[k] = v
    return out


def _alerts(n: int) -> str:
    return f"{n} alert" if n == 1 else f"{n} alerts"


def digest(alerts: pl.DataFrame, day: date) -> dict[str, Any]:
    """The daily digest: alerts of the last 24 hours and money wasted per workload."""
    total = float(alerts["wasted_usd"].sum()) if alerts.height else 0.0
    per = (
        alerts.group_by("workload")
        .agg(pl.len().alias("n"), pl.col("wasted_usd").sum().alias("usd"))
        .sort("usd", "workload", descending=[True, False])
        if alerts.height
        else pl.DataFrame(schema={"workload": pl.String, "n": pl.UInt32, "usd": pl.Float64})
    )
    open_now = int((alerts["state"] == "open").sum()) if alerts.height else 0
    lines = [f"{w}: {_alerts(n)}, {_usd(u)} wasted" for w, n, u in per.iter_rows()]
    text = (
        f"{_alerts(alerts.height)} in the last 24 hours, {open_now} still open;"
        f" {_usd(total)} of high-end GPU time wasted."
    )
    if lines:
        text += "\n" + "\n".join(lines)
    return {
        "event": "digest",
        "title": f"gpuledger daily digest {day.isoformat()}: {_usd(total)} wasted",
        "text": text,
        "fields": {w: f"{_alerts(n)}, {_usd(u)}" for w, n, u in per.iter_rows()},
        "footer": "gpuledger daily digest",
        "digest": {
            "day": day.isoformat(),
            "alerts": alerts.height,
            "open": open_now,
            "wasted_usd": round(total, 6),
            "by_workload": [
                {"workload": w, "alerts": n, "wasted_usd": round(u, 6)}
                for w, n, u in per.iter_rows()
            ],
        },
    }


# The state machine (pure) ----------------------------------------------------------------------
@dataclass
class Plan:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    notices: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (alert, event)

    def count(self, event: str) -> int:
        return sum(1 for e in self.events if e["event"] == event)


def _event(alert: dict[str, Any], event: str, now: datetime, note: str | None = None) -> dict:
    return {
        "alert_id": alert["alert_id"],
        "ts": now,
        "event": event,
        "state": alert["state"],
        "duration_s": alert["duration_s"],
        "wasted_usd": alert["wasted_usd"],
        "note": note,
    }


def plan_changes(
    runs: pl.DataFrame, known: pl.DataFrame, *, now: datetime, cooldown: timedelta
) -> Plan:
    """What one check changes, given the runs found and the alerts already stored.

    A run that overlaps a stored alert of the same key is that alert: an open one is updated,
    and resolved when the run is over; a resolved one is final. A run with no alert opens one
    (resolved at once when it is already over), sent unless the key's last alert resolved
    within `cooldown` before the run started. An open alert no run continues resolves.
    """
    plan = Plan()
    by_key: dict[tuple, list[dict[str, Any]]] = {}
    for a in known.sort("started_at").to_dicts():
        by_key.setdefault(tuple(a[k] for k in KEY), []).append(a)
    matched: set[str] = set()
    for run in runs.sort("started_at").to_dicts():
        alerts = by_key.setdefault(tuple(run[k] for k in KEY), [])
        match = _overlapping(run, alerts, matched)
        if match is not None:
            matched.add(match["alert_id"])
            if match["state"] == "open":  # a resolved alert is final
                _continue_alert(plan, match, run, now)
            continue
        alert = _open_alert(plan, run, alerts, now, cooldown)
        matched.add(alert["alert_id"])
        alerts.append(alert)
    for alerts in by_key.values():
        for a in alerts:
            if a["state"] == "open" and a["alert_id"] not in matched:
                alert = {**a, "state": "resolved", "resolved_at": a["ended_at"], "updated_at": now}
                plan.updates.append(alert)
                plan.events.append(_event(alert, "resolved", now, "no longer detected"))
                if alert["notify"]:
                    plan.notices.append((alert, "resolved"))
    return plan


def _overlapping(
    run: dict[str, Any], alerts: list[dict[str, Any]], matched: set[str]
) -> dict[str, Any] | None:
    """The first stored alert of the run's key, not matched yet, whose time overlaps the run."""
    return next(
        (
            a
            for a in alerts
            if a["alert_id"] not in matched
            and a["started_at"] < run["ended_at"]
            and run["started_at"] < a["ended_at"]
        ),
        None,
    )


def _continue_alert(plan: Plan, match: dict[str, Any], run: dict[str, Any], now: datetime) -> None:
    """An open alert the run continues: its figures updated, resolved where the run is over."""
    alert = {**match, **{k: run[k] for k in RUN_FIGURES}, "updated_at": now}
    if not run["ongoing"]:
        alert.update(state="resolved", resolved_at=run["ended_at"])
        plan.events.append(_event(alert, "resolved", now))
        if alert["notify"]:
            plan.notices.append((alert, "resolved"))
    plan.updates.append(alert)


def _open_alert(
    plan: Plan,
    run: dict[str, Any],
    alerts: list[dict[str, Any]],
    now: datetime,
    cooldown: timedelta,
) -> dict[str, Any]:
    """A new alert for a run no stored alert covers (resolved at once where the run is over),
    sent unless an alert of the key (`alerts`) resolved within `cooldown` before it began."""
    quiet = next(
        (
            a
            for a in alerts
            if a["state"] == "resolved"
            and a["resolved_at"] is not None
            and run["started_at"] - cooldown <= a["resolved_at"] <= run["started_at"]
        ),
        None,
    )
    alert = {
        "alert_id": uuid.uuid4().hex,
        **{k: run[k] for k in KEY},
        **{k: run[k] for k in RUN_FIGURES},
        "state": "open" if run["ongoing"] else "resolved",
        "resolved_at": None if run["ongoing"] else run["ended_at"],
        "opened_at": now,
        "updated_at": now,
        "notify": quiet is None,
    }
    plan.inserts.append(alert)
    plan.events.append(_event({**alert, "state": "open"}, "opened", now))
    if quiet is not None:
        plan.events.append(
            _event(alert, "suppressed", now, f"cooldown after alert {quiet['alert_id']}")
        )
    if not run["ongoing"]:
        plan.events.append(_event(alert, "resolved", now, "over when first seen"))
    if alert["notify"]:
        plan.notices.append((alert, "opened" if run["ongoing"] else "resolved"))
    return alert


# One check (reads and writes through warehouse/) ----------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    since: datetime
    runs: int
    opened: int
    resolved: int
    updated: int
    suppressed: int
    queued: int
    digest: bool

    def summary(self) -> str:
        return (
            f"{self.runs} run(s) of wasted high-end GPU time since {self.since:%Y-%m-%d %H:%M}"
            f" UTC: {self.opened} alert(s) opened, {self.resolved} resolved, {self.updated}"
            f" updated, {self.suppressed} in cooldown; {self.queued} message(s) queued"
            + ("; daily digest queued" if self.digest else "")
        )


def _longest_run(cfg: Config) -> timedelta:
    t = cfg.thresholds
    return timedelta(
        minutes=max(t.idle_min_minutes, t.inefficient_min_minutes, t.overpowered_min_minutes)
    )


def check_window(cfg: Config, last_check: datetime | None, now: datetime) -> datetime:
    """Where a check starts reading: far enough before the last check that a run which had not
    yet grown long enough then is read whole now; never more than `backfill_hours` back."""
    floor = now - timedelta(hours=cfg.alerts.backfill_hours)
    if last_check is None:
        return floor
    return max(floor, min(last_check, now) - _longest_run(cfg) - ROLLUP_LOOKBACK)


def _outbox(
    notices: list[dict[str, Any]], alert_ids: list[str | None], channels: list[str], now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "delivery_id": uuid.uuid4().hex,
            "alert_id": alert_id,
            "event": message["event"],
            "channel": channel,
            "created_at": now,
            "status": "pending",
            "attempts": 0,
            "last_error": None,
            "delivered_at": None,
            "message": json.dumps(message, default=str),
        }
        for message, alert_id in zip(notices, alert_ids, strict=True)
        for channel in channels
    ]


def check_alerts(
    wh: Warehouse,
    cfg: Config,
    catalog: pl.DataFrame,
    *,
    channels: list[str],
    now: datetime | None = None,
) -> CheckResult:
    """Detect, update the alerts, queue their messages for `channels` and store the current
    cost rates; one transaction for the alerts and their messages."""
    now = now or datetime.now(UTC)
    last = store.get_meta(wh, "last_check")
    since = check_window(cfg, datetime.fromisoformat(last) if last else None, now)
    cooldown = timedelta(minutes=cfg.alerts.cooldown_minutes)
    known = store.known_alerts(wh, since - cooldown)
    reach = known.filter(pl.col("state") == "open").select(
        "host", "gpu_uuid", since=pl.col("started_at")
    )
    reach = pl.concat([reach, store.waste_reach(wh, since)], how="vertical_relaxed")
    minutes = store.recent_minutes(wh, since, reach)
    # the hosts' prices and owners as the stored waste has them, so a run's money is the same
    cloud = billed_hosts(results.billed_resources(wh), results.instance_types(wh, EPOCH))
    runs = wasted_runs(minutes, cloud, catalog, cfg, now=now)
    plan = plan_changes(runs, known, now=now, cooldown=cooldown)

    messages = [describe(a, event, cfg) for a, event in plan.notices]
    ids: list[str | None] = [a["alert_id"] for a, _ in plan.notices]
    meta = {"last_check": now.isoformat()}
    daily = _due_digest(wh, cfg, plan, now)
    if daily is not None:
        messages.append(daily)
        ids.append(None)
        meta["last_digest"] = now.date().isoformat()
    outbox = _outbox(messages, ids, channels, now)
    store.apply_check(
        wh,
        inserts=pl.DataFrame(plan.inserts, schema=store.ALERT_SCHEMA),
        updates=pl.DataFrame(plan.updates, schema=store.ALERT_SCHEMA),
        new_events=pl.DataFrame(plan.events, schema=store.EVENT_SCHEMA),
        outbox=pl.DataFrame(outbox, schema=store.DELIVERY_SCHEMA),
        meta=meta,
    )
    wh.replace_result(
        RESULTS_GPU_COST_RATES.name, cost_rates_now(minutes, cloud, catalog, cfg, now=now)
    )
    return CheckResult(
        since=since,
        runs=runs.height,
        opened=plan.count("opened"),
        resolved=plan.count("resolved"),
        updated=sum(1 for u in plan.updates if u["state"] == "open"),
        suppressed=plan.count("suppressed"),
        queued=len(outbox),
        digest=daily is not None,
    )


def _due_digest(wh: Warehouse, cfg: Config, plan: Plan, now: datetime) -> dict[str, Any] | None:
    """Today's digest where one is due ([alerts] digest, past digest_hour_utc, not yet queued
    today): the stored alerts of the last 24 hours, as this check leaves them."""
    if not (cfg.alerts.digest and now.hour >= cfg.alerts.digest_hour_utc):
        return None
    day = now.date()
    if store.get_meta(wh, "last_digest") == day.isoformat():
        return None
    changed = pl.DataFrame(plan.inserts + plan.updates, schema=store.ALERT_SCHEMA)
    stored = store.alerts_between(wh, now - timedelta(days=1), now)
    recent = pl.concat(
        [
            stored.filter(~pl.col("alert_id").is_in(changed["alert_id"].implode())),
            changed.filter(pl.col("ended_at") >= now - timedelta(days=1)),
        ]
    )
    return digest(recent, day)


class AlertService:
    """The alert job with its delivery workers: `run_once` stores what was delivered since the
    last run, checks, and hands every pending message of the outbox to the dispatcher."""

    def __init__(
        self,
        cfg: Config,
        catalog: pl.DataFrame,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.cfg, self.catalog = cfg, catalog
        channels, self.problems = channels_from_config(cfg, environ)
        for problem in self.problems:
            log.warning("alert channel left out: %s", problem)
        self.dispatcher = Dispatcher(
            channels, attempts=cfg.alerts.attempts, backoff_s=cfg.alerts.retry_backoff_s
        )

    def record(self, wh: Warehouse) -> int:
        results = self.dispatcher.results()
        if results:
            store.record_deliveries(wh, pl.DataFrame([r.__dict__ for r in results]))
        return len(results)

    def send_pending(self, wh: Warehouse) -> int:
        pending = store.deliveries(wh, status="pending")
        return self.dispatcher.submit(
            [
                Delivery(d, c, json.loads(m))
                for d, c, m in pending.select("delivery_id", "channel", "message").iter_rows()
            ]
        )

    def run_once(self, wh: Warehouse, now: datetime | None = None) -> CheckResult:
        self.record(wh)
        result = check_alerts(wh, self.cfg, self.catalog, channels=self.dispatcher.names, now=now)
        self.send_pending(wh)
        if result.opened or result.resolved:
            log.info(result.summary())
        return result

    def flush(self, wh: Warehouse, timeout: float) -> bool:
        """Wait for the messages in flight (at most `timeout` s) and store their outcome."""
        done = self.dispatcher.wait(timeout)
        self.record(wh)
        return done

    def close(self) -> None:
        self.dispatcher.close()
