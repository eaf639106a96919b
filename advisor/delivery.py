"""Alert delivery: Slack incoming webhooks, a generic JSON webhook, SMTP email and the log.

Every channel has its own worker thread and queue, so a channel that is down (retried with
exponential backoff) delays no other. Secrets (webhook URLs, tokens, the SMTP password) come only
from environment variables that `[alerts]` and `[alerts.email]` name; they never appear in
messages or logs. The warehouse's delivery log is the outbox: workers only report outcomes, which
the alert job stores (advisor/alerts.py), so a message still pending at a restart is sent after
it. `smtp_send` is also how the weekly report goes out (advisor/report/send.py).

What a channel is given cannot be turned against it: only http:// and https:// URLs are posted
to, a redirect is a failure (never followed, so the bearer token never reaches another address),
a delivery's stored `last_error` has the channel's secrets replaced by `***`, and header values
(an e-mail subject holding a workload name) never carry a line break.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import smtplib
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

from config.exposure import redact
from config.settings import Config, EmailConfig
from tables.escape import json_value

log = logging.getLogger("gpuledger.alerts")

SLACK_HEADER_MAX = 150
SLACK_SECTION_MAX = 3000
SLACK_FIELDS_MAX = 10


class Channel(Protocol):
    name: str
    secrets: tuple[str, ...]  # what must never be stored or logged: URLs, tokens, passwords

    def send(self, message: Mapping[str, Any]) -> None:
        """Deliver one message; raise on failure (the dispatcher retries)."""


# Message formats -------------------------------------------------------------------------------
def _slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup (`<!channel>` would ping everyone)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def header_value(text: object) -> str:
    """`text` on one line for a header (an e-mail subject, a token): line breaks and other
    control characters become spaces, so a name holding one can neither inject a header nor make
    the message unsendable."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(text)).strip()


def http_url_problem(url: str) -> str | None:
    """Why `url` is not a URL to post alerts to (only http:// and https:// with a host)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "is not an http:// or https:// URL"
    return None


def slack_payload(message: Mapping[str, Any]) -> dict[str, Any]:
    """Slack's incoming-webhook shape: `text` (the notification fallback) and Block Kit `blocks`."""
    title = str(message.get("title", "gpuledger alert"))
    text = str(message.get("text", ""))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": title[:SLACK_HEADER_MAX], "emoji": True},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _slack_escape(text)[:SLACK_SECTION_MAX]},
        },
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*{_slack_escape(label)}*\n{_slack_escape(str(value))}"}
        for label, value in message.get("fields", {}).items()
    ][:SLACK_FIELDS_MAX]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    footer = message.get("footer")
    if footer:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _slack_escape(footer)}]}
        )
    return {"text": f"{_slack_escape(title)}\n{_slack_escape(text)}", "blocks": blocks}


def webhook_payload(message: Mapping[str, Any]) -> dict[str, Any]:
    """The generic webhook's JSON: the event, the words, and the alert (or digest) as data."""
    return {
        "source": "gpuledger",
        "event": message.get("event"),
        "title": message.get("title"),
        "text": message.get("text"),
        "alert": message.get("alert"),
        "digest": message.get("digest"),
    }


def email_message(message: Mapping[str, Any], sender: str, recipients: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = header_value(f"[gpuledger] {message.get('title', 'alert')}")
    mail["From"] = header_value(sender)
    mail["To"] = header_value(", ".join(recipients))
    lines = [str(message.get("text", "")), ""]
    lines += [f"{label}: {value}" for label, value in message.get("fields", {}).items()]
    if message.get("footer"):
        lines += ["", str(message["footer"])]
    mail.set_content("\n".join(lines) + "\n")
    return mail


# Channels --------------------------------------------------------------------------------------
class LogChannel:
    name = "log"
    secrets: tuple[str, ...] = ()

    def send(self, message: Mapping[str, Any]) -> None:
        level = logging.WARNING if message.get("event") == "opened" else logging.INFO
        log.log(level, "%s: %s", message.get("title"), message.get("text"))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answered, never followed: urllib would resend the request, Authorization
    header included, to wherever the endpoint points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirect)


def url_secrets(url: str) -> tuple[str, ...]:
    """The parts of a webhook URL that are secret (the whole, and its path and query, which an
    error message may show without the host)."""
    parts = urllib.parse.urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return tuple(s for s in (url, tail if len(tail) > 1 else "") if s)


def _post_json(url: str, payload: dict[str, Any], timeout: float, headers: dict[str, str]) -> None:
    problem = http_url_problem(url)
    if problem:
        raise RuntimeError(f"the endpoint {problem}")
    request = urllib.request.Request(
        url,
        data=json.dumps(json_value(payload), allow_nan=False).encode(),  # no NaN: not JSON
        headers={"Content-Type": "application/json", "User-Agent": "gpuledger", **headers},
        method="POST",
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:  # its text names the status, never the URL
        if 300 <= exc.code < 400:
            raise RuntimeError(
                f"HTTP {exc.code} {exc.reason}: a redirect, not followed (the endpoint must"
                " answer itself; configure the URL it redirects to)"
            ) from None
        raise RuntimeError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise RuntimeError(f"cannot reach the endpoint: {exc.reason}") from None


class SlackChannel:
    name = "slack"

    def __init__(self, url: str, timeout: float) -> None:
        self._url, self.timeout = url, timeout
        self.secrets: tuple[str, ...] = url_secrets(url)

    def send(self, message: Mapping[str, Any]) -> None:
        _post_json(self._url, slack_payload(message), self.timeout, {})


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self._url, self.timeout = url, timeout
        self._token = header_value(token) if token else None
        self.secrets: tuple[str, ...] = (
            *url_secrets(url),
            *((token, self._token or "") if token else ()),
        )

    def send(self, message: Mapping[str, Any]) -> None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        _post_json(self._url, webhook_payload(message), self.timeout, headers)


def smtp_send(
    server: EmailConfig, mail: EmailMessage, password: str | None, timeout: float
) -> None:
    """Send `mail` through the SMTP server of an [alerts.email] or [report.email] table:
    STARTTLS first when it says so, a login when it names a user."""
    with smtplib.SMTP(server.host, server.port, timeout=timeout) as smtp:
        if server.starttls:
            smtp.starttls()
        if server.user:
            smtp.login(server.user, password or "")
        smtp.send_message(mail)


class EmailChannel:
    name = "email"

    def __init__(self, server: EmailConfig, password: str | None, timeout: float) -> None:
        self.server, self._password, self.timeout = server, password, timeout
        self.secrets: tuple[str, ...] = (password,) if password else ()

    def send(self, message: Mapping[str, Any]) -> None:
        mail = email_message(message, self.server.sender, list(self.server.recipients))
        smtp_send(self.server, mail, self._password, self.timeout)


def channels_from_config(
    cfg: Config, environ: Mapping[str, str] | None = None
) -> tuple[list[Channel], list[str]]:
    """The channels `[alerts]` and `[alerts.email]` configure, and a problem line for each one
    left out (a named environment variable that is not set); the problems name the key and the
    variable."""
    env = os.environ if environ is None else environ
    a = cfg.alerts
    channels: list[Channel] = []
    problems: list[str] = []

    def secret(key: str, var: str, table: str = "[alerts]") -> str | None:
        value = env.get(var)
        if not value:
            problems.append(f"{table} {key} names ${var}, which is not set")
        return value or None

    def url(key: str, var: str) -> str | None:
        value = secret(key, var)
        problem = http_url_problem(value) if value else None
        if problem:
            problems.append(f"[alerts] {key} names ${var}, whose value {problem}; left out")
            return None
        return value

    if a.log:
        channels.append(LogChannel())
    if a.slack_webhook_url_env:
        slack = url("slack_webhook_url_env", a.slack_webhook_url_env)
        if slack:
            channels.append(SlackChannel(slack, a.timeout_s))
    if a.webhook_url_env:
        hook = url("webhook_url_env", a.webhook_url_env)
        token = secret("webhook_token_env", a.webhook_token_env) if a.webhook_token_env else None
        if hook:
            channels.append(WebhookChannel(hook, token, a.timeout_s))
    mail = a.email
    if mail.host:
        password = None
        if mail.password_env:
            password = secret("password_env", mail.password_env, "[alerts.email]")
        if not mail.recipients:
            problems.append("[alerts.email] host is set but recipients is empty")
        elif password is not None or not mail.password_env:  # else: reported above
            channels.append(EmailChannel(mail, password, a.timeout_s))
    return channels, problems


# The dispatcher --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    channel: str
    message: Mapping[str, Any]


@dataclass(frozen=True)
class DeliveryResult:
    delivery_id: str
    channel: str
    status: str  # sent | failed
    attempts: int
    last_error: str | None
    delivered_at: datetime | None


class Dispatcher:
    """One worker thread and queue per channel. A message is tried up to `attempts` times,
    waiting `backoff_s`, then twice that, and so on between tries; outcomes are collected for
    `results()`. `close()` stops the workers (a message mid-backoff stays pending in the
    outbox and is sent after the next start)."""

    def __init__(
        self,
        channels: list[Channel],
        *,
        attempts: int = 5,
        backoff_s: float = 2.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.channels = {c.name: c for c in channels}
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self._clock = clock or (lambda: datetime.now(UTC))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._results: list[DeliveryResult] = []
        self._in_flight: set[str] = set()
        self._queues: dict[str, queue.Queue[Delivery | None]] = {}
        self._threads: list[threading.Thread] = []
        for name in self.channels:
            q: queue.Queue[Delivery | None] = queue.Queue()
            self._queues[name] = q
            t = threading.Thread(
                target=self._work, args=(name, q), name=f"alerts-{name}", daemon=True
            )
            t.start()
            self._threads.append(t)

    @property
    def names(self) -> list[str]:
        return list(self.channels)

    def submit(self, deliveries: list[Delivery]) -> int:
        """Queue messages not already in flight; a channel no longer configured fails them at
        once. Returns how many were queued."""
        queued = 0
        for d in deliveries:
            with self._lock:
                if d.delivery_id in self._in_flight:
                    continue
                self._in_flight.add(d.delivery_id)
            if d.channel not in self._queues:
                self._finish(d, "failed", 0, f"channel {d.channel} is not configured now")
                continue
            self._queues[d.channel].put(d)
            queued += 1
        return queued

    def results(self) -> list[DeliveryResult]:
        """Outcomes since the last call."""
        with self._lock:
            out, self._results = self._results, []
        return out

    def busy(self) -> bool:
        with self._lock:
            return bool(self._in_flight)

    def wait(self, timeout: float) -> bool:
        """Wait until every queued message is sent or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for q in self._queues.values():
            q.put(None)  # wakes the worker
        for t in self._threads:
            t.join(timeout=timeout)

    def _finish(self, d: Delivery, status: str, attempts: int, error: str | None) -> None:
        result = DeliveryResult(
            d.delivery_id,
            d.channel,
            status,
            attempts,
            error,
            self._clock() if status == "sent" else None,
        )
        with self._lock:
            self._results.append(result)
            self._in_flight.discard(d.delivery_id)

    def _work(self, name: str, q: queue.Queue[Delivery | None]) -> None:
        channel = self.channels[name]
        while not self._stop.is_set():
            d = q.get()
            if d is None:
                return
            error: str | None = None
            attempt = 0
            for attempt in range(1, self.attempts + 1):  # noqa: B007 - attempt is reported
                try:
                    channel.send(d.message)
                    error = None
                    break
                except Exception as exc:  # stored in the outbox: never with a secret in it
                    error = redact(f"{type(exc).__name__}: {exc}", channel.secrets)
                    if attempt == self.attempts:
                        break
                    delay = self.backoff_s * 2 ** (attempt - 1)
                    log.warning(
                        "alert channel %s: attempt %d of %d failed (%s); retrying in %.1fs",
                        name,
                        attempt,
                        self.attempts,
                        error,
                        delay,
                    )
                    if self._stop.wait(delay):
                        with self._lock:  # stopping: it stays pending in the outbox
                            self._in_flight.discard(d.delivery_id)
                        return
            if error is None:
                self._finish(d, "sent", attempt, None)
            else:
                log.error("alert channel %s: gave up after %d attempts: %s", name, attempt, error)
                self._finish(d, "failed", attempt, error)
