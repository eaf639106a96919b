"""The floors of the house (docs/architecture.md), checked on the source: every import of the
production packages, at the top of a module or inside a function, read with `ast`.

- A package imports only packages on lower floors (and itself): tables < collectors < config <
  warehouse < advisor < cli, dashboard; cli and dashboard do not import each other.
- DuckDB (SQL) only in warehouse/; Streamlit only in dashboard/ and streamlit_app.py; network
  clients only in collectors/ and advisor/delivery.py (alert and report delivery).

`.venv/bin/python -m pytest tests/test_layers.py` runs it alone (well under a second).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {
    "tables": 0,
    "collectors": 1,
    "config": 2,
    "warehouse": 3,
    "advisor": 4,
    "cli": 5,
    "dashboard": 5,
}
ONLY_IN = {  # a module and the only places that may import it
    "duckdb": ("warehouse/",),
    "streamlit": ("dashboard/", "streamlit_app.py"),
    "smtplib": ("collectors/", "advisor/delivery.py"),
    "urllib.request": ("collectors/", "advisor/delivery.py"),
    "http.client": ("collectors/", "advisor/delivery.py"),
    "requests": ("collectors/", "advisor/delivery.py"),
    "boto3": ("collectors/", "advisor/delivery.py"),
    # The lake's storage lives in warehouse/, its table definitions on the ground floor; the
    # jobs reach a Ray cluster only through the engine (issue 17).
    "pyiceberg": ("warehouse/", "tables/lake.py"),
    "ray": ("advisor/engine.py",),
}


def sources() -> list[Path]:
    files = [p for package in FLOORS for p in sorted((ROOT / package).rglob("*.py"))]
    return [*files, ROOT / "streamlit_app.py"]


def imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import in the file; relative ones resolved."""
    rel = path.relative_to(root).with_suffix("")
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x: the file's own package, `level` up
                base = list(rel.parts[: len(rel.parts) - node.level])
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            elif node.module:
                yield node.lineno, node.module


def layer_problems(path: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the imports of one file, each naming the file, the line and the rule."""
    parts = path.relative_to(root).parts
    own = parts[0] if len(parts) > 1 else "dashboard"  # streamlit_app.py
    rel = path.relative_to(root).as_posix()
    out = []
    for line, module in imports(path, root):
        head = module.split(".")[0]
        if head in FLOORS and head != own and FLOORS[head] >= FLOORS[own]:
            out.append(f"{rel}:{line} imports {module} ({head} is not below {own})")
        for name, allowed in ONLY_IN.items():
            if (module == name or module.startswith(f"{name}.")) and not rel.startswith(allowed):
                out.append(f"{rel}:{line} imports {module} (only in {', '.join(allowed)})")
    return out


def test_every_import_goes_down_a_floor_and_stays_in_its_room():
    problems = [p for path in sources() for p in layer_problems(path)]
    assert problems == []


@pytest.mark.parametrize(
    ("rel", "code", "problem"),
    [
        ("tables/x.py", "from warehouse.store import Warehouse\n", "warehouse is not below tables"),
        ("collectors/gpu/x.py", "def f():\n    import config.settings\n", "config is not below"),
        ("cli/x.py", "from dashboard import data\n", "dashboard is not below cli"),
        ("advisor/x.py", "import duckdb\n", "imports duckdb (only in warehouse/)"),
        ("warehouse/x.py", "from streamlit import cache_data\n", "only in dashboard/"),
        ("advisor/report/x.py", "import smtplib\n", "only in collectors/, advisor/delivery.py"),
        ("cli/x.py", "import boto3\n", "imports boto3"),
    ],
)
def test_the_check_catches_each_kind_of_wrong_import(tmp_path, rel, code, problem):
    path = tmp_path / rel
    path.parent.mkdir(parents=True)
    path.write_text(code)
    (found,) = layer_problems(path, tmp_path)
    assert problem in found and found.startswith(f"{rel}:")


def test_a_downward_import_a_relative_one_and_the_own_package_pass(tmp_path):
    path = tmp_path / "advisor" / "x.py"
    path.parent.mkdir()
    path.write_text(
        "from advisor import jobs\nfrom warehouse import store\nimport tables\nfrom . import y\n"
    )
    assert layer_problems(path, tmp_path) == []
    assert [m for _, m in imports(path, tmp_path)][-1] == "advisor"  # `from .`: its package
