"""Output that cannot be turned against its reader (tables/escape.py): CSV for spreadsheets,
JSON without NaN or Infinity, Markdown that shows names as text, Slack's fallback text escaped,
and control characters in file names shown as escapes on the terminal and in the dashboard."""

from __future__ import annotations

import csv
import io
import json
import math
import types
from pathlib import Path

import polars as pl
import pytest

from advisor.delivery import slack_payload
from advisor.report import render_md
from cli.main import main
from cli.output import emit, emit_mapping
from collectors.errors import InputError
from dashboard.text import printable_frame
from tables.escape import csv_cell, csv_frame, json_value, markdown_text, printable
from warehouse.advisor_reads import recommendations_csv

FORMULAS = ["=1+1", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx", "=cmd|' /C calc'!A0"]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_text_cell_beginning_like_a_formula_gets_an_apostrophe(text):
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["llm-pretrain", "a=b", "", None, -12.5, 3, 0.0])
def test_other_cells_are_unchanged(value):
    assert csv_cell(value) == value


def test_cli_csv_neutralises_text_and_keeps_numbers():
    """The decision: only text cells change; a negative amount is a number and stays one."""
    out = io.StringIO()
    emit([{"workload": '=HYPERLINK("http://x")', "cost_usd": -12.5, "n": -3}], "csv", out=out)
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row == {"workload": '\'=HYPERLINK("http://x")', "cost_usd": "-12.5", "n": "-3"}


def test_the_recommendations_csv_neutralises_text_columns_only():
    recs = pl.DataFrame(
        {
            "workload": ["=1+1", "+team", "ok"],
            "action": ["keep", "keep", "keep"],
            "alternative": ["-x", None, "@home"],
            "monthly_savings_usd": [-5.0, 0.0, 12.345],
            "reasons": [["-3 GPUs"], ["fine"], ["=SUM(1)", "fine"]],
        }
    )
    frame = csv_frame(recs.with_columns(pl.col("reasons").list.join(" | ")))
    assert frame["workload"].to_list() == ["'=1+1", "'+team", "ok"]
    assert frame["alternative"].to_list() == ["'-x", None, "'@home"]
    assert frame["monthly_savings_usd"].to_list() == [-5.0, 0.0, 12.345]  # numbers stay
    assert frame["reasons"].to_list() == ["'-3 GPUs", "fine", "'=SUM(1) | fine"]


def test_the_dashboard_download_is_the_neutralised_csv():
    """What the Recommendations page's Download button serves (recommendations_csv)."""
    from tests.tables.test_published import recommendation

    recs = recommendation().with_columns(
        workload=pl.lit("=1+1"), monthly_savings_usd=pl.lit(-5.0), reasons=pl.lit(["-2 GPUs"])
    )
    (parsed,) = list(csv.DictReader(io.StringIO(recommendations_csv(recs))))
    assert parsed["workload"] == "'=1+1"
    assert parsed["reasons"] == "'-2 GPUs"
    assert parsed["monthly_savings_usd"] == "-5.0"  # a number


def test_json_never_prints_nan_or_infinity():
    out = io.StringIO()
    emit([{"a": math.inf, "b": -math.inf, "c": math.nan, "d": 1.5}], "json", out=out)
    strict = json.loads(out.getvalue(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert strict == [{"a": None, "b": None, "c": None, "d": 1.5}]
    out = io.StringIO()
    emit_mapping({"ratio": math.inf, "nested": [math.nan]}, "json", out=out)
    assert json.loads(out.getvalue()) == {"ratio": None, "nested": [None]}
    assert json_value({"x": (math.inf, {"y": math.nan})}) == {"x": [None, {"y": None}]}


def test_a_table_shows_control_characters_as_escapes():
    out = io.StringIO()
    emit([{"file": "evil\nname\x1b[2J\u202etxt.csv", "rows": 3}], "table", out=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # the heading and one row: no line of its own from the name
    assert "evil\\nname\\x1b[2J\\u202etxt.csv" in lines[1]
    assert "\x1b" not in out.getvalue() and "\u202e" not in out.getvalue()


def test_printable():
    assert printable("a\tb\r\n\x00\x7f\x9b") == "a\\tb\\r\\n\\x00\\x7f\\x9b"
    assert printable("plain/path-é.csv") == "plain/path-é.csv"
    assert printable(Path("x\ny")) == "x\\ny"


def test_an_input_error_names_a_hostile_file_on_one_line(tmp_path, capsys):
    name = tmp_path / "bad\n\x1b[31mgpuledger: ok.csv"
    name.write_text("ts,host\n")
    assert main(["import", "samples", str(name), "--db", str(tmp_path / "w.duckdb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err
    assert "bad\\n\\x1b[31mgpuledger: ok.csv" in err
    exc = InputError("x\ny.csv", "no rows", row=3, column="c\rd")
    assert str(exc) == "x\\ny.csv: row 3, column c\\rd: no rows"
    assert exc.path == "x\ny.csv" and exc.column == "c\rd"  # the values themselves are kept


def test_data_health_tables_show_control_characters_as_escapes():
    frame = pl.DataFrame({"source": ["import:a\nb.csv", "ok"], "line_items": [1, 2]})
    assert printable_frame(frame).to_dicts() == [
        {"source": "import:a\\nb.csv", "line_items": 1},
        {"source": "ok", "line_items": 2},
    ]


HOSTILE_MD = [
    ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
    ("variability 2.24 > 0.3 & rising", "variability 2.24 > 0.3 & rising"),
    ("> quote", "\\> quote"),
    ("**bold** [x](javascript:alert(1))", "\\*\\*bold\\*\\* \\[x\\](javascript:alert(1))"),
    ("__idle__", "\\_\\_idle\\_\\_"),
    ("buy_local", "buy_local"),
    (
        "see https://evil.example or www.evil.example",
        "see https\\://evil.example or www\\.evil.example",
    ),
    ("mail bob@evil.example", "mail bob\\@evil.example"),
    ("# heading", "\\# heading"),
    ("- item", "\\- item"),
    ("1. item", "1\\. item"),
    ("12.5 GPU-hours", "12.5 GPU-hours"),
    ("line\nbreak", "line\\\\nbreak"),
    ("a|b", "a\\|b"),
    ("&lt;", "&amp;lt;"),
    ("`code`", "\\`code\\`"),
]


@pytest.mark.parametrize(("name", "escaped"), HOSTILE_MD)
def test_markdown_text(name, escaped):
    assert markdown_text(name) == escaped


def test_the_markdown_report_escapes_names_in_tables_headings_and_reasons():
    recs = pl.DataFrame(
        {
            "workload": ["<img src=x onerror=alert(1)>\n# owned"],
            "action": ["keep"],
            "reasons": [["[click](https://evil.example) **now**"]],
        }
    )
    lines = render_md._reasons(types.SimpleNamespace(recs=recs), {})
    assert lines[0] == "### &lt;img src=x onerror=alert(1)>\\\\n\\# owned: keep (keep as is)"
    assert lines[2] == "- \\[click\\](https\\://evil.example) \\*\\*now\\*\\*"
    table = render_md._table(["workload", "cost"], [["a|b\nc", "$1.00"]])
    assert table[2] == "| a\\|b\\\\nc | $1.00 |"  # one row, the pipe not a column


def test_slack_fallback_text_is_escaped_like_its_blocks():
    payload = slack_payload({"title": "idle: <!channel> & <@U123>", "text": "x <https://e|y>"})
    assert payload["text"] == "idle: &lt;!channel&gt; &amp; &lt;@U123&gt;\nx &lt;https://e|y&gt;"
    assert "<" not in payload["text"] and ">" not in payload["text"]
