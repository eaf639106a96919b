"""Settings: the effective configuration, read-only, secrets masked, one readable section per
[section] of the configuration file (lists such as [[local.hosts]] as tables of their own)."""

from __future__ import annotations

import re
from typing import Any

import polars as pl
import streamlit as st

from config.settings import as_dict
from dashboard import data
from dashboard.format import UNKNOWN

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


TITLES = {
    "warehouse": "Warehouse and files",
    "collect": "Collecting GPU samples",
    "demo": "Demo fleet",
    "run": "The daemon",
    "dashboard": "Dashboard",
    "energy": "Energy",
    "local": "Local GPUs",
    "catalog": "Price catalog",
    "workloads": "Workloads",
    "aws": "AWS billing",
    "azure": "Azure billing",
    "gcp": "Google Cloud billing",
    "log": "Logging",
    "thresholds": "Wasted-time thresholds",
    "alerts": "Alerts",
    "metrics": "Prometheus metrics",
    "advisor": "Recommendations",
    "report": "Weekly report",
    "retention": "Retention",
    "ship": "Shipping between hosts",
}


def shown(value: Any) -> str:
    """A setting's value as text: on/off, lists joined, `—` where empty."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == "" or value == []:
        return UNKNOWN
    if isinstance(value, list):
        return ", ".join(shown(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k} = {shown(v)}" for k, v in value.items())
    return str(value)


def flat(section: dict[str, Any], prefix: str = "") -> tuple[list[tuple[str, str]], dict]:
    """(setting, value) rows of a section, nested tables as `email.smtp_host`; and its lists of
    tables ([[local.hosts]]), which get a table of their own."""
    rows: list[tuple[str, str]] = []
    lists: dict[str, list[dict]] = {}
    for key, value in section.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            more, nested = flat(value, f"{name}.")
            rows += more
            lists.update(nested)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lists[name] = value
        else:
            rows.append((name, shown(value)))
    return rows, lists


def draw_section(name: str, section: dict[str, Any]) -> None:
    st.subheader(f"{TITLES.get(name, name.capitalize())} · [{name}]")
    rows, lists = flat(section)
    if rows:
        st.dataframe(
            pl.DataFrame(rows, schema={"setting": pl.String, "value": pl.String}, orient="row"),
            hide_index=True,
            width="stretch",
        )
    for key, items in lists.items():
        st.markdown(f"**[[{name}.{key}]]**")
        st.dataframe(
            pl.DataFrame([{k: shown(v) for k, v in item.items()} for item in items]),
            hide_index=True,
            width="stretch",
        )


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
for name, section in settings.items():
    if isinstance(section, dict):
        draw_section(name, section)
