"""Sending a written report by e-mail ([report.email], through advisor/delivery.py's
`smtp_send`): the Markdown as plain text and the HTML page with its chart images inline."""

from __future__ import annotations

import os
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from typing import cast

from advisor.delivery import smtp_send
from advisor.report.files import ReportFiles
from advisor.report.schedule import ReportError
from config.settings import Config


def email_report(cfg: Config, files: ReportFiles, environ: Mapping[str, str] | None = None) -> None:
    """Send the report by SMTP ([report.email]; the password from the variable it names)."""
    server = cfg.report.email
    if not server.enabled:
        raise ReportError("[report.email] host and recipients must be set to send the report")
    env = os.environ if environ is None else environ
    password = None
    if server.password_env:
        password = env.get(server.password_env)
        if password is None:
            raise ReportError(
                f"[report.email] password_env names {server.password_env}, which is not set"
            )
    msg = EmailMessage()
    msg["Subject"] = f"gpuledger report {files.summary}"
    msg["From"] = server.sender
    msg["To"] = ", ".join(server.recipients)
    msg.set_content(files.markdown.read_text())
    page = files.html.read_text()
    cids = {}
    for name, path in files.images.items():
        cid = make_msgid(domain="gpuledger")
        cids[name] = cid
        page = page.replace(f"src='{path.name}'", f"src='cid:{cid[1:-1]}'")
    msg.add_alternative(page, subtype="html")
    html_part = cast(list[EmailMessage], msg.get_payload())[1]
    for name, path in files.images.items():
        html_part.add_related(path.read_bytes(), "image", "png", cid=cids[name])
    smtp_send(server, msg, password, cfg.report.timeout_s)
