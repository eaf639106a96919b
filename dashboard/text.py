"""Showing user-controlled strings (host, workload and tag names) safely."""

from __future__ import annotations

import re

import polars as pl

from tables.escape import CONTROL_PATTERN, printable

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def escape_markdown(text: str) -> str:
    """`text` as literal characters in Streamlit Markdown: no bold, links or embedded HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def printable_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with control characters in its text cells shown as escapes (a file or host name
    holding a newline or a terminal escape shows as `\\n`, `\\x1b`; tables/escape.py)."""
    text = [n for n, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(
        pl.when(pl.col(n).str.contains(CONTROL_PATTERN))
        .then(pl.col(n).map_elements(printable, return_dtype=pl.String))
        .otherwise(pl.col(n))
        .alias(n)
        for n in text
    )
