"""Settings: the effective configuration, read-only, secrets masked."""

from __future__ import annotations

import json
import re

import streamlit as st

from config.settings import as_dict
from dashboard import data

SECRET_KEY = re.compile(r"(password|secret|token|api_key|webhook_url|credential)", re.I)
NAMES_A_VARIABLE = re.compile(r"(_env|_var|_variable)$")


def masked(value, key: str = ""):
    """The value with secrets replaced; names of environment variables stay visible."""
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    if value and SECRET_KEY.search(key) and not NAMES_A_VARIABLE.search(key):
        return "••••••"
    return value


st.title("Settings")
cfg = data.effective_config()
st.caption(
    "Read-only: the configuration this dashboard runs with, from "
    f"{cfg.source or 'built-in defaults'}. "
    "Edit that file and restart `gpuledger run` to change it. Secrets are masked; they come from "
    "environment variables, never from the file."
)
settings = masked(as_dict(cfg))
settings.pop("source", None)
st.json(json.loads(json.dumps(settings, default=str)))
