"""Hostile names end to end: workload, host and tag values written to break SQL, HTML, Markdown
or a spreadsheet go through import, the daemon's cycle, every read command and every dashboard
page. SQL takes them as parameters (every table survives, each name comes back verbatim) and the
dashboard never renders them as HTML or Markdown."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from tests.clock import pinned_clock

ROOT = Path(__file__).resolve().parents[2]
# The data ends now and the pages show the last days: every test runs at the pinned clock.
pytestmark = pytest.mark.usefixtures("clock")
HOSTILE = [
    "'; DROP TABLE gpu_samples; --",
    "<script>alert(1)</script>",
    "**bold** [x](javascript:alert(1))",
    "=cmd|' /C calc'!A0",
    "robert'); DROP TABLE alerts;--",
    "${jndi:ldap://x}/{{7*7}}",
]
HOST = "<img src=x onerror=alert(1)> **host** [docs](https://evil.example)"
# Streamlit escapes HTML in Markdown elements (no page passes unsafe_allow_html), so `<script>`
# shows as text; Markdown syntax in a name would still render as bold text or a link.
MARKUP = ("](javascript:", "](https://evil.example)", "**bold**", "**host**")
KNOWN: dict[str, str] = {}


def hostile_csv(path: Path) -> Path:
    """Two hours of one-minute samples per hostile workload on an H100 held but idle (so the
    waste detector opens an alert naming it), ending now."""
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    head = "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,workload"
    rows = []
    for g, name in enumerate(HOSTILE):
        quoted = '"' + name.replace('"', '""') + '"'
        for i in range(120):
            ts = (t0 + timedelta(minutes=i)).isoformat()
            rows.append(f"{ts},{HOST},GPU-{g}',H100,2,70000,81559,90,{quoted}")
    path.write_text("\n".join([head, *rows]) + "\n")
    return path


def hostile_focus(path: Path) -> Path:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    head = (
        "BilledCost,EffectiveCost,BillingCurrency,BillingAccountId,BillingPeriodStart,"
        "ChargePeriodStart,ChargePeriodEnd,ProviderName,ResourceId,Tags"
    )
    rows = []
    for i, name in enumerate(HOSTILE):
        tags = json.dumps({"workload": name}).replace('"', '""')
        start = day - timedelta(hours=i + 1)
        rows.append(
            f'3.5,3.5,USD,"1\'; DROP TABLE billing_items;--",{day.replace(day=1).isoformat()},'
            f"{start.isoformat()},{(start + timedelta(hours=1)).isoformat()},AWS,"
            f'"i-{i}\'--","{tags}"'
        )
    path.write_text("\n".join([head, *rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def hostile_warehouse(tmp_path_factory: pytest.TempPathFactory, pinned_instant) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("hostile")
    db = tmp / "data" / "warehouse.duckdb"
    with pinned_clock(pinned_instant):  # the tests run at it too (pytestmark)
        assert main(["import", "samples", str(hostile_csv(tmp / "s.csv")), "--db", str(db)]) == 0
        assert main(["import", "focus", str(hostile_focus(tmp / "f.csv")), "--db", str(db)]) == 0
        assert main(["alerts", "--check", "--db", str(db)]) == 0
        assert main(["run", "--once", "--db", str(db)]) == 0
    yield db


def tables(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in names}
    finally:
        con.close()


def test_every_table_survives_and_names_are_stored_verbatim(hostile_warehouse: Path) -> None:
    counts = tables(hostile_warehouse)
    for table in ("gpu_samples", "gpu_minute", "billing_items", "alerts", "ingested_files"):
        assert counts.get(table, 0) > 0, (table, counts)
    con = duckdb.connect(str(hostile_warehouse), read_only=True)
    try:
        stored = {r[0] for r in con.execute("SELECT DISTINCT workload FROM gpu_samples").fetchall()}
        hosts = {r[0] for r in con.execute("SELECT DISTINCT host FROM gpu_minute").fetchall()}
        billed = {
            r[0] for r in con.execute("SELECT DISTINCT workload FROM billing_items").fetchall()
        }
        accounts = {
            r[0]
            for r in con.execute("SELECT DISTINCT BillingAccountId FROM billing_items").fetchall()
        }
    finally:
        con.close()
    assert stored == billed == set(HOSTILE)
    assert hosts == {HOST}
    assert accounts == {"1'; DROP TABLE billing_items;--"}


@pytest.mark.parametrize("command", ["costs", "recommend", "alerts"])
def test_read_commands_return_the_names_verbatim(
    command: str, hostile_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main([command, "--format", "json", "--db", str(hostile_warehouse)]) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert "Traceback" not in err
    if command in ("costs", "alerts"):
        assert {r["workload"] for r in rows} >= set(HOSTILE)
    else:
        assert {r["workload"] for r in rows} <= set(HOSTILE) | {"__idle__", "untagged"}


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize("command", ["costs", "recommend", "alerts"])
def test_csv_output_never_starts_a_text_cell_like_a_formula(
    command: str, hostile_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`=cmd|' /C calc'!A0` comes out as `'=cmd|' /C calc'!A0` (a spreadsheet shows it as text);
    numbers, negative ones too, stay numbers."""
    import csv
    import io

    capsys.readouterr()
    assert main([command, "--format", "csv", "--db", str(hostile_warehouse)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    for row in rows:
        for cell in row:
            if cell.startswith(FORMULA_START):
                float(cell)  # only a number may begin with - or +
    if command in ("costs", "alerts"):  # (no recommendation: two hours of data)
        cells = {cell for row in rows for cell in row}
        assert "'=cmd|' /C calc'!A0" in cells


def test_the_markdown_report_shows_names_as_text(
    hostile_warehouse: Path, tmp_path: Path, pinned_instant: datetime
) -> None:
    """The week's Markdown: no raw HTML, link, emphasis or heading from a name (the HTML
    report already escapes them)."""
    from advisor.report.schedule import week_of

    week = week_of(pinned_instant)
    args = ["report", "--week", week, "--out", str(tmp_path), "--db", str(hostile_warehouse)]
    assert main(args) == 0
    md = (tmp_path / f"{week}.md").read_text()
    assert "<script>" not in md and "<img" not in md
    assert "&lt;script>alert(1)&lt;/script>" in md
    for markup in ("**bold**", "[x]", "${jndi:ldap://x}", "](https://evil.example)"):
        assert markup not in md, markup
    text = "\n".join(line for line in md.splitlines() if not line.startswith("!["))  # charts
    assert not re.search(r"(?<!\\)\]\(", text)  # no `](` that would make a link
    assert "\\*\\*bold\\*\\* \\[x\\](javascript:alert(1))" in md


def test_no_page_lets_html_through() -> None:
    """No `unsafe_allow_html=True` anywhere in the dashboard (checked on the syntax tree)."""
    offenders = []
    for path in [ROOT / "streamlit_app.py", *sorted((ROOT / "dashboard").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "unsafe_allow_html"
                and not (isinstance(node.value, ast.Constant) and node.value.value is False)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.value.lineno}")
    assert offenders == []


def markdown_texts(at) -> list[str]:
    """The source of every element Streamlit renders as Markdown."""
    texts = []
    for kind in (
        "markdown",
        "caption",
        "info",
        "warning",
        "error",
        "success",
        "title",
        "header",
        "subheader",
    ):
        for element in getattr(at, kind, []):
            texts.append(str(element.value))
    for metric in getattr(at, "metric", []):
        texts.append(str(metric.label))
    return texts


PAGES = [
    pytest.param(
        name,
        marks=[pytest.mark.xfail(strict=True, reason=KNOWN[name])] if name in KNOWN else [],
    )
    for name in sorted(
        p.name for p in (ROOT / "dashboard" / "pages").glob("*.py") if p.stem != "__init__"
    )
]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_pages_show_hostile_names_as_text(
    page: str, hostile_warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from cli.daemon import dashboard_env
    from config.settings import load_config

    cfg = load_config(ROOT / "config" / "gpuledger.toml", db=hostile_warehouse)
    for name, value in dashboard_env(cfg).items():
        if name.startswith("GPULEDGER_"):
            monkeypatch.setenv(name, value)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / page), default_timeout=60).run()
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()
    assert not at.exception, [e.value for e in at.exception]
    for text in markdown_texts(at):
        for markup in MARKUP:
            assert markup not in text, f"{page}: {markup!r} rendered as Markdown in {text[:200]!r}"
