"""Printing results as table, JSON or CSV (`--format`), safe for whoever reads them
(tables/escape.py): CSV text cells that begin like a formula are neutralised, JSON never holds
NaN or Infinity (null instead), a table shows control characters in names as escapes."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from datetime import date, datetime
from typing import Any

from tables.escape import csv_cell, json_value, printable

FORMATS = ("table", "json", "csv")


def _plain(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else None
    return v


def dump_json(data: Any, out) -> None:
    """`data` as indented JSON; NaN and Infinity (not JSON) become null, and a value that still
    is one raises rather than printing `NaN`."""
    json.dump(json_value(data), out, indent=2, default=str, allow_nan=False)
    out.write("\n")


def emit(rows: list[dict[str, Any]], fmt: str, *, out=None) -> None:
    """Print `rows` (a list of flat dicts) in `fmt`."""
    out = out or sys.stdout
    rows = [{k: _plain(v) for k, v in r.items()} for r in rows]
    if fmt == "json":
        dump_json(rows, out)
    elif fmt == "csv":
        if rows:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=[csv_cell(k) for k in rows[0]])
            writer.writeheader()
            writer.writerows({csv_cell(k): csv_cell(v) for k, v in r.items()} for r in rows)
            out.write(buf.getvalue())
    else:
        if not rows:
            out.write("(nothing)\n")
            return
        cols = list(rows[0])
        cells = [[("" if r.get(c) is None else printable(r.get(c))) for c in cols] for r in rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
        out.write("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip() + "\n")
        for row in cells:
            out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
            out.write("\n")


def emit_mapping(data: dict[str, Any], fmt: str, *, out=None) -> None:
    """Print one record: `key  value` lines as a table, an object as JSON."""
    out = out or sys.stdout
    if fmt == "json":
        dump_json({k: _plain(v) for k, v in data.items()}, out)
    else:
        emit([{"item": k, "value": _plain(v)} for k, v in data.items()], fmt, out=out)
