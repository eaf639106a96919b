"""Alert delivery (advisor/delivery.py) to real receivers on 127.0.0.1: Slack-shaped and generic
webhooks over HTTP, email over SMTP (aiosmtpd), retries, and a channel that is down."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advisor.delivery import (
    Delivery,
    Dispatcher,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
    channels_from_config,
    slack_payload,
)
from config.settings import EmailConfig
from tests.advisor.receivers import free_port, http_receiver, smtp_receiver

MESSAGE = {
    "event": "opened",
    "title": "Allocated but idle: research-notebook on H100",
    "text": "research-notebook has held H100 for 45 min with 0.5% activity. Wasted so far: $5.16",
    "fields": {"Workload": "research-notebook", "Wasted": "$5.16"},
    "footer": "gpuledger alert abc",
    "alert": {"alert_id": "abc", "workload": "research-notebook", "wasted_usd": 5.16},
}


def email(box) -> EmailChannel:
    server = EmailConfig(
        host=box.host,
        port=box.port,
        starttls=False,
        sender="gpuledger@test.example",
        recipients=("gpu-team@test.example",),
    )
    return EmailChannel(server, None, timeout=5)


def test_slack_payload_is_text_plus_blocks_with_markup_escaped():
    payload = slack_payload({**MESSAGE, "text": "team <!channel> & co"})
    assert set(payload) == {"text", "blocks"}
    assert payload["text"].startswith(MESSAGE["title"])
    header, section, fields, context = payload["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": MESSAGE["title"], "emoji": True},
    }
    assert section["text"] == {"type": "mrkdwn", "text": "team &lt;!channel&gt; &amp; co"}
    assert fields["fields"][1] == {"type": "mrkdwn", "text": "*Wasted*\n$5.16"}
    assert context["type"] == "context"
    long = slack_payload({**MESSAGE, "title": "x" * 400})
    assert len(long["blocks"][0]["text"]["text"]) == 150  # Slack's header limit


def test_webhooks_and_email_receive_the_alert():
    with http_receiver() as slack, http_receiver() as hook, smtp_receiver() as box:
        dispatcher = Dispatcher(
            [
                SlackChannel(slack.url, 5),
                WebhookChannel(hook.url, "s3cret-token", 5),
                email(box),
            ],
            attempts=1,
        )
        try:
            dispatcher.submit(
                [Delivery(f"d-{c}", c, MESSAGE) for c in ("slack", "webhook", "email")]
            )
            assert dispatcher.wait(10)
            results = {r.channel: r for r in dispatcher.results()}
        finally:
            dispatcher.close()
        (s,) = slack.ok()
        (h,) = hook.ok()
        mails = box.wait_for(1)
    assert {c: (r.status, r.attempts) for c, r in results.items()} == {
        "slack": ("sent", 1),
        "webhook": ("sent", 1),
        "email": ("sent", 1),
    }
    assert set(s.body) == {"text", "blocks"} and s.body["blocks"][0]["type"] == "header"
    assert s.headers["Content-Type"] == "application/json"
    assert h.body["event"] == "opened" and h.body["alert"]["wasted_usd"] == 5.16
    assert h.headers["Authorization"] == "Bearer s3cret-token"
    (sender, rcpts, mail) = mails[0]
    assert sender == "gpuledger@test.example" and rcpts == ["gpu-team@test.example"]
    assert mail["Subject"] == f"[gpuledger] {MESSAGE['title']}"
    assert "Wasted so far: $5.16" in mail.get_content()


def test_a_channel_down_is_retried_while_the_others_deliver():
    """The webhook answers 503 twice, slowly; Slack and email are delivered meanwhile."""
    with (
        http_receiver() as slack,
        http_receiver(statuses=[503, 503], delay_s=0.3) as hook,
        smtp_receiver() as box,
    ):
        dispatcher = Dispatcher(
            [SlackChannel(slack.url, 5), WebhookChannel(hook.url, None, 5), email(box)],
            attempts=4,
            backoff_s=0.1,
        )
        try:
            dispatcher.submit(
                [Delivery(f"d-{c}", c, MESSAGE) for c in ("webhook", "slack", "email")]
            )
            assert dispatcher.wait(10)
            results = {r.channel: r for r in dispatcher.results()}
        finally:
            dispatcher.close()
        (ok,) = hook.ok()
        first_slack = slack.ok()[0]
        assert len(box.wait_for(1)) == 1
    assert [r.status for r in hook.requests] == [503, 503, 200]
    assert (results["webhook"].status, results["webhook"].attempts) == ("sent", 3)
    assert results["webhook"].last_error is None
    assert (results["slack"].attempts, results["email"].attempts) == (1, 1)
    # Slack did not wait for the webhook's retries (0.3 s answers, 0.1 s + 0.2 s backoff)
    assert first_slack.at < hook.requests[0].at < ok.at


def test_a_channel_that_stays_down_fails_after_its_attempts_and_keeps_its_secret():
    dead = f"http://127.0.0.1:{free_port()}/services/T000/B000/secret-part"
    with http_receiver() as slack:
        dispatcher = Dispatcher(
            [SlackChannel(slack.url, 5), WebhookChannel(dead, None, 2)], attempts=3, backoff_s=0.01
        )
        try:
            dispatcher.submit([Delivery("a", "webhook", MESSAGE), Delivery("b", "slack", MESSAGE)])
            assert dispatcher.wait(10)
            results = {r.channel: r for r in dispatcher.results()}
        finally:
            dispatcher.close()
        assert len(slack.ok()) == 1
    failed = results["webhook"]
    assert (failed.status, failed.attempts, failed.delivered_at) == ("failed", 3, None)
    assert "cannot reach the endpoint" in failed.last_error
    assert "secret-part" not in failed.last_error
    assert results["slack"].status == "sent"


def test_an_unknown_channel_fails_at_once_and_a_message_in_flight_is_not_queued_twice():
    with http_receiver(delay_s=0.2) as slack:
        dispatcher = Dispatcher([SlackChannel(slack.url, 5)], attempts=1)
        try:
            assert dispatcher.submit([Delivery("a", "slack", MESSAGE)]) == 1
            assert dispatcher.submit([Delivery("a", "slack", MESSAGE)]) == 0  # still in flight
            assert dispatcher.submit([Delivery("b", "pager", MESSAGE)]) == 0
            assert dispatcher.wait(10)
            results = {r.delivery_id: r for r in dispatcher.results()}
        finally:
            dispatcher.close()
        assert len(slack.requests) == 1
    assert results["a"].status == "sent"
    assert results["b"].status == "failed" and "pager" in results["b"].last_error


def test_channels_come_from_config_with_secrets_from_the_environment(cfg):
    conf = replace(
        cfg,
        alerts=replace(
            cfg.alerts,
            slack_webhook_url_env="TEST_SLACK_URL",
            webhook_url_env="TEST_HOOK_URL",
            webhook_token_env="TEST_HOOK_TOKEN",
            email=EmailConfig(
                host="127.0.0.1", password_env="TEST_SMTP_PASSWORD", recipients=("a@test.example",)
            ),
        ),
    )
    env = {"TEST_SLACK_URL": "http://127.0.0.1:9/hooks/very-secret", "TEST_HOOK_URL": "http://x"}
    channels, problems = channels_from_config(conf, env)
    assert [c.name for c in channels] == ["log", "slack", "webhook"]
    assert problems == [
        "[alerts] webhook_token_env names $TEST_HOOK_TOKEN, which is not set",
        "[alerts.email] password_env names $TEST_SMTP_PASSWORD, which is not set",
    ]
    assert "very-secret" not in repr(channels[1].__dict__.keys())
    env["TEST_SMTP_PASSWORD"] = "pw"
    channels, _ = channels_from_config(conf, env)
    assert [c.name for c in channels] == ["log", "slack", "webhook", "email"]


@pytest.mark.parametrize("log_on", [True, False])
def test_the_shipped_configuration_logs_only(cfg, log_on):
    conf = replace(cfg, alerts=replace(cfg.alerts, log=log_on))
    channels, problems = channels_from_config(conf, {})
    assert [c.name for c in channels] == (["log"] if log_on else [])
    assert problems == []
