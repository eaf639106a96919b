"""The pages registry (dashboard/pages/__init__.py): every page script is listed once, with the
title its script shows, and the pictures in docs/ are the registered pages'."""

from __future__ import annotations

import ast

from dashboard.pages import FOLDER, PAGES
from tests.dashboard.conftest import ROOT

DOCS = ROOT / "docs"


def script_title(path) -> str | None:
    """The string literal the script passes to `st.title(...)`, if any."""
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "title"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return node.args[0].value
    return None


def test_every_script_in_the_folder_is_registered_once():
    scripts = {p.name for p in (ROOT / FOLDER).glob("*.py") if not p.name.startswith("_")}
    assert sorted(p.file for p in PAGES) == sorted(scripts)
    for field in ("file", "title", "url_path", "screenshot"):
        values = [getattr(p, field) for p in PAGES]
        assert len(set(values)) == len(values), field
    assert [p.default for p in PAGES] == [True] + [False] * (len(PAGES) - 1)


def test_each_page_shows_its_registered_title():
    """The browser test finds a page by its sidebar label in the page's <h1>."""
    for page in PAGES:
        assert script_title(ROOT / page.path) == page.title, page.file


def test_the_pictures_in_docs_are_the_registered_pages():
    """`make screenshots` writes one per page (docs/screenshot-<title>.png)."""
    assert {p.screenshot for p in PAGES} == {p.name for p in DOCS.glob("screenshot-*.png")}
    assert [p.screenshot for p in PAGES][:2] == ["screenshot-overview.png", "screenshot-live.png"]
