"""Text that cannot be turned against its reader: every name gpuledger did not make itself (a
workload, host, tag or file name) is shown through one of these before it reaches a spreadsheet,
a Markdown page or a terminal (docs/operations.md, "Output that cannot be turned against its
reader").

- CSV: a text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a
  formula by Excel, LibreOffice and Google Sheets; it gets a leading apostrophe (`'=cmd|...`),
  which they show as text. Only text cells: numbers stay numbers, so `-12.5` in a money column
  is still a negative number, while the text cell `-12.5` becomes `'-12.5`.
- Markdown: a `<` that could open a tag and an `&` that would start an entity become entities,
  link, emphasis and table characters are escaped, autolinks (`http://`, `www.`, `a@b`) broken,
  a leading list, quote or heading marker escaped, and control characters shown as escapes, so a
  name renders as the letters it has.
- Terminals and logs: control characters (a newline, an ANSI escape, a bidi override) are shown
  as `\\n`, `\\x1b`, `\\u202e`, never acted on.
"""

from __future__ import annotations

import math
import re
from typing import Any

import polars as pl

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = r"^[=+\-@\t\r]"

# Cc (C0, DEL, C1) and the invisible direction overrides that reorder what a terminal shows.
CONTROL_PATTERN = r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
_CONTROL = re.compile(CONTROL_PATTERN)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _control_escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` with its control characters shown as escapes (`a\\nb`, `\\x1b[31m`): a file name
    or a value from a file printed on one line, never moving the cursor or faking a line."""
    return _CONTROL.sub(_control_escape, str(text))


# CSV ------------------------------------------------------------------------------------------
def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as it is: text beginning like a formula gets a leading
    apostrophe; any other value (a number, a date, None) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with every text column's formula-like cells neutralised (`csv_cell`); numeric,
    date and other columns unchanged."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_FORMULA_PATTERN))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )


# JSON -----------------------------------------------------------------------------------------
def json_value(value: Any) -> Any:
    """`value` with every non-finite float (NaN, ±Infinity, which are not JSON) as None, in
    nested lists and dicts too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


# Markdown -------------------------------------------------------------------------------------
# `<` only where it could open a tag, comment or autolink; `&` only where it would start an entity:
# the Markdown is also the report e-mail's plain text, where `2 &gt; 1` would read badly.
_MD_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_MD_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_MD_PUNCT = re.compile(r"([\\`*\[\]|~!#])")
# `_` emphasises only at a word's edge (CommonMark): `buy_local` stays as it is, `__idle__` not.
_MD_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_MD_AUTOLINK = re.compile(r"(?i)(://|\bwww\.|@)")
_MD_LEADING = re.compile(r"^(\s*)([-+]|\d{1,9}[.)])(?=\s|$)|^(\s*)(>)")


def _break_autolink(match: re.Match[str]) -> str:
    found = match.group(0)
    return "\\" + found if found in ("://", "@") else found[:-1] + "\\."


def _escape_marker(match: re.Match[str]) -> str:
    """A list, ordered-list or quote marker at the start escaped: `\\- x`, `1\\. x`, `\\> x`."""
    space = match.group(1) if match.group(2) else match.group(3)
    marker = match.group(2) or match.group(4)
    return space + marker[:-1] + "\\" + marker[-1]


def markdown_text(text: object) -> str:
    """`text` as literal characters in Markdown (CommonMark and GitHub's tables): no HTML, no
    link or autolink, no emphasis, no heading or list it starts, no line it breaks."""
    out = printable(text)
    out = _MD_PUNCT.sub(r"\\\1", out)
    out = _MD_EDGE_UNDERSCORE.sub(r"\\_", out)
    out = _MD_ENTITY.sub("&amp;", out)
    out = _MD_TAG_OPEN.sub("&lt;", out)
    out = _MD_AUTOLINK.sub(_break_autolink, out)
    return _MD_LEADING.sub(_escape_marker, out, count=1)
