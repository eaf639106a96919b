"""Alert delivery that cannot be turned against its sender (advisor/delivery.py), against real
HTTP and SMTP servers on 127.0.0.1: a redirect is a failure and the bearer token never reaches
the address it points to, only http(s) URLs are posted to, a stored error holds no secret, and a
workload name with a line break cannot break an e-mail's headers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from advisor.delivery import (
    Delivery,
    Dispatcher,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
    channels_from_config,
    email_message,
)
from config.settings import AlertsConfig, Config, EmailConfig
from tests.advisor.receivers import http_receiver, smtp_receiver

TOKEN = "WebhookBearerSecret000042"
MESSAGE = {"event": "opened", "title": "Allocated but idle", "text": "idle", "fields": {}}


@dataclass
class Redirector:
    """An endpoint that answers every POST with `status` and a Location elsewhere."""

    url: str = ""
    seen: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def redirector(status: int, location: str) -> Iterator[Redirector]:
    state = Redirector()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.seen.append(dict(self.headers))
            self.send_response(status)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def deliver(channel, message=MESSAGE):
    dispatcher = Dispatcher([channel], attempts=1, backoff_s=0)
    try:
        dispatcher.submit([Delivery("d1", channel.name, message)])
        assert dispatcher.wait(10)
        (result,) = dispatcher.results()
        return result
    finally:
        dispatcher.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_the_token_stays_home(status):
    """The endpoint points at another server (another port: another origin); nothing reaches
    it, the delivery is failed (not "sent"), and its error says why without the token."""
    with http_receiver() as elsewhere, redirector(status, elsewhere.url) as hook:
        result = deliver(WebhookChannel(hook.url, TOKEN, timeout=5))
        assert len(hook.seen) == 1 and hook.seen[0]["Authorization"] == f"Bearer {TOKEN}"
        assert elsewhere.requests == []
    assert result.status == "failed" and result.delivered_at is None
    assert f"HTTP {status}" in result.last_error and "redirect" in result.last_error
    assert TOKEN not in result.last_error


def test_slack_redirects_are_not_followed_either():
    with http_receiver() as elsewhere, redirector(302, elsewhere.url) as hook:
        result = deliver(SlackChannel(hook.url, timeout=5))
        assert elsewhere.requests == []
    assert result.status == "failed"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "data:,hi", "127.0.0.1:9/hook", "http://"]
)
def test_only_http_urls_are_posted_to(url):
    result = deliver(WebhookChannel(url, TOKEN, timeout=2))
    assert result.status == "failed"
    assert "not an http:// or https:// URL" in result.last_error


def test_a_url_that_is_not_http_is_left_out_naming_the_key():
    cfg = Config(
        alerts=AlertsConfig(log=False, slack_webhook_url_env="GL_SLACK", webhook_url_env="GL_HOOK")
    )
    env = {"GL_SLACK": "file:///etc/shadow", "GL_HOOK": "https://hooks.example/x"}
    channels, problems = channels_from_config(cfg, env)
    assert [c.name for c in channels] == ["webhook"]
    assert problems == [
        "[alerts] slack_webhook_url_env names $GL_SLACK, whose value is not an http:// or"
        " https:// URL; left out"
    ]
    assert "file:///etc/shadow" not in problems[0]  # the value may be a secret


class Leaky:
    """A channel whose failure quotes its own secrets (as some server answers and library
    errors do)."""

    name = "webhook"

    def __init__(self, url: str, token: str) -> None:
        self.secrets = (url, token)
        self._url, self._token = url, token

    def send(self, message):
        raise RuntimeError(f"POST {self._url} with Bearer {self._token} refused")


def test_the_stored_error_has_no_secret():
    url = "https://hooks.example/services/T000/B000/SlackSecret000042"
    result = deliver(Leaky(url, TOKEN))
    assert result.last_error == "RuntimeError: POST *** with Bearer *** refused"


def test_a_channel_knows_its_secrets():
    slack = SlackChannel("https://hooks.example/services/T1/B2/XyZ?sig=1", timeout=1)
    assert slack.secrets == (
        "https://hooks.example/services/T1/B2/XyZ?sig=1",
        "/services/T1/B2/XyZ?sig=1",
    )
    hook = WebhookChannel("https://h.example/", TOKEN + "\n", timeout=1)
    assert TOKEN in hook.secrets and TOKEN + "\n" in hook.secrets
    email = EmailChannel(EmailConfig(host="h", recipients=("a@b",)), "SmtpPw000042", timeout=1)
    assert email.secrets == ("SmtpPw000042",)


def test_a_token_with_a_line_break_is_sent_on_one_line():
    with http_receiver() as hook:
        result = deliver(WebhookChannel(hook.url, TOKEN + "\r\n", timeout=5))
        (request,) = hook.wait_for(1)
    assert result.status == "sent"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_workload_name_with_a_line_break_cannot_add_headers():
    """The title holds the workload name; a name `x\\nBcc: victim@evil.example` used to make
    the message unsendable for good (ValueError on every retry) or, elsewhere, add a header."""
    evil = {
        **MESSAGE,
        "title": "Allocated but idle: x\r\nBcc: victim@evil.example\nX-Evil: 1 on H100",
    }
    mail = email_message(evil, "gpuledger@test.example", ["gpu-team@test.example"])
    assert mail["Subject"] == (
        "[gpuledger] Allocated but idle: x Bcc: victim@evil.example X-Evil: 1 on H100"
    )
    assert mail["Bcc"] is None and mail["X-Evil"] is None
    with smtp_receiver() as box:
        server = EmailConfig(
            host=box.host,
            port=box.port,
            starttls=False,
            sender="gpuledger@test.example",
            recipients=("gpu-team@test.example",),
        )
        result = deliver(EmailChannel(server, None, timeout=5), evil)
        ((sender, rcpt, received),) = box.wait_for(1)
    assert result.status == "sent"
    assert rcpt == ["gpu-team@test.example"]  # nobody added
    assert received["Bcc"] is None and received["X-Evil"] is None
    assert "\n" not in received["Subject"] and "victim@evil.example" in received["Subject"]


def test_the_webhook_body_is_strict_json():
    """A figure that is NaN or infinite (no price for a GPU) goes out as null, not `NaN`,
    which JSON parsers refuse."""
    message = {**MESSAGE, "alert": {"wasted_usd": float("nan"), "usd_per_hour": float("inf")}}
    with http_receiver() as hook:
        assert deliver(WebhookChannel(hook.url, None, timeout=5), message).status == "sent"
        (request,) = hook.wait_for(1)
    assert request.body["alert"] == {"wasted_usd": None, "usd_per_hour": None}
