"""Sending a written report by e-mail ([report] smtp_*): the Markdown as plain text and the HTML
page with its chart images inline."""

from __future__ import annotations

import os
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from typing import cast

from advisor.report.files import ReportFiles
from advisor.report.schedule import ReportError
from config.settings import Config


def email_report(cfg: Config, files: ReportFiles, environ: Mapping[str, str] | None = None) -> None:
    """Send the report by SMTP ([report] smtp_*; the password from the variable it names)."""
    r = cfg.report
    if not r.smtp_host or not r.email_to:
        raise ReportError("[report] smtp_host and email_to must be set to send the report")
    env = os.environ if environ is None else environ
    password = None
    if r.smtp_password_env:
        password = env.get(r.smtp_password_env)
        if password is None:
            raise ReportError(
                f"[report] smtp_password_env names {r.smtp_password_env}, which is not set"
            )
    msg = EmailMessage()
    msg["Subject"] = f"gpuledger report {files.summary}"
    msg["From"] = r.email_from
    msg["To"] = ", ".join(r.email_to)
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
    with smtplib.SMTP(r.smtp_host, r.smtp_port, timeout=r.timeout_s) as smtp:
        if r.smtp_starttls:
            smtp.starttls()
        if r.smtp_user:
            smtp.login(r.smtp_user, password or "")
        smtp.send_message(msg)
