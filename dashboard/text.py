"""Showing user-controlled strings (host, workload and tag names) safely."""

from __future__ import annotations

import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def escape_markdown(text: str) -> str:
    """`text` as literal characters in Streamlit Markdown: no bold, links or embedded HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
