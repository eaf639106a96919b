"""Keeping secrets out of sight: out of the logs, and out of configuration files others can read.

Secrets come only from the environment (the configuration names the variables, `*_env` keys) or
boto3's credential chain. Two things can still expose them:

- A library logging what it sends: at DEBUG botocore logs every signed request, session token
  included. `install_log_redaction` puts a filter on the root handlers that replaces the value of
  every secret variable (AWS's and those the configuration names) with `***` in every record,
  whoever logged it, traceback included.
- A secret pasted into the configuration file instead of a variable's name. `exposure_warning`
  says so when the file is readable by other users and holds something that looks like a secret.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

AWS_SECRET_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
MIN_SECRET_LEN = 8  # shorter values would redact ordinary words
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_LOOKS = (
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"hooks\.slack\.com/services/"), "a Slack webhook URL"),
    (re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"), "a Slack token"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
)
REDACTED = "***"


def _walk(raw: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(raw, dict):
        for key, value in raw.items():
            yield from _walk(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            yield from _walk(value, f"{prefix}[{i}]")
    else:
        yield prefix, raw


def secret_findings(raw: dict) -> list[str]:
    """Keys of a parsed configuration whose values look like secrets rather than settings."""
    found = []
    for key, value in _walk(raw):
        if not isinstance(value, str) or not value:
            continue
        if key.endswith("_env") and not ENV_NAME.match(value):
            found.append(f"{key} (holds a value, not an environment variable's name)")
            continue
        for pattern, what in SECRET_LOOKS:
            if pattern.search(value):
                found.append(f"{key} ({what})")
                break
    return found


def exposure_warning(path: Path, raw: dict) -> str | None:
    """A warning when `path` is readable by group or others and holds what looks like a secret."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if not mode & (stat.S_IRGRP | stat.S_IROTH):
        return None
    found = secret_findings(raw)
    if not found:
        return None
    return (
        f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}) and holds what looks"
        f" like a secret: {'; '.join(found)}. Put the secret in an environment variable, name"
        f" the variable in the file, and `chmod 600 {path}`."
    )


def secret_values(env_names: Iterable[str] = ()) -> set[str]:
    """The values of AWS's secret variables and of `env_names`, long enough to redact."""
    values = set()
    for name in (*AWS_SECRET_VARS, *env_names):
        value = os.environ.get(name, "") if name else ""
        if len(value) >= MIN_SECRET_LEN:
            values.add(value)
    return values


def configured_secret_vars(cfg: Any) -> list[str]:
    """Every environment variable the configuration names in an `*_env` key."""
    from dataclasses import fields, is_dataclass

    names: list[str] = []

    def visit(obj: Any) -> None:
        if is_dataclass(obj):
            for f in fields(obj):
                value = getattr(obj, f.name)
                if f.name.endswith("_env") and isinstance(value, str) and value:
                    names.append(value)
                else:
                    visit(value)
        elif isinstance(obj, tuple | list):
            for item in obj:
                visit(item)

    visit(cfg)
    return names


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret in `secrets` (longest first; ones shorter than MIN_SECRET_LEN
    skipped, as they would redact ordinary words) as `***`."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len)[::-1]:
        text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Replaces secret values in a record's message and traceback with `***`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = self._clean(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


def install_log_redaction(cfg: Any = None, root: logging.Logger | None = None) -> RedactingFilter:
    """Put a RedactingFilter on every handler of the root logger (call after logging setup)."""
    root = root or logging.getLogger()
    names = configured_secret_vars(cfg) if cfg is not None else []
    flt = RedactingFilter(secret_values(names))
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt
