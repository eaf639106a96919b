"""Real receivers on 127.0.0.1 for the alert tests: an HTTP server that records what it is sent
(and answers from a script of status codes), and an SMTP server (aiosmtpd) that keeps the mail."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict
    at: float  # time.monotonic() when it arrived
    status: int


@dataclass
class HttpReceiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answers in order, then 200
    delay_s: float = 0.0  # wait before answering (a slow endpoint)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.status == 200]

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.ok()) >= n:
                break
            time.sleep(0.01)
        return self.ok()


@contextmanager
def http_receiver(
    statuses: list[int] | None = None, delay_s: float = 0.0
) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(url="", statuses=list(statuses or []), delay_s=delay_s)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            with receiver.lock:
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append(
                    Received(self.path, dict(self.headers), body, time.monotonic(), status)
                )
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"unavailable")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[str, list[str], Message]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < n:
            time.sleep(0.01)
        return list(self.messages)


@contextmanager
def smtp_receiver() -> Iterator[Mailbox]:
    """aiosmtpd's Controller on a free port of 127.0.0.1."""
    box = Mailbox("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            box.messages.append(
                (
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    message_from_bytes(envelope.content, policy=policy.default),
                )
            )
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
