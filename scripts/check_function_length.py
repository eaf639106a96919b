"""No function over LIMIT lines in the production packages (`make lint`).

A function's length is counted from its first decorator (or its `def`) to its last line:
signature, docstring, comments, blank lines inside and nested functions included. A long
function is split along what it does, into helpers whose names say so; this check lists each
one over the limit as `file:line: name is N lines` and exits 1 where there is any.

    python scripts/check_function_length.py [--limit 60] [PATH ...]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

LIMIT = 60
# The production packages (tests, benchmarks and scripts are not held to it).
PRODUCTION = (
    "cli",
    "tables",
    "collectors",
    "config",
    "warehouse",
    "advisor",
    "dashboard",
    "streamlit_app.py",
)


def python_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        elif path.suffix == ".py":
            yield path


def long_functions(path: Path, limit: int) -> Iterator[tuple[int, str, int]]:
    """(line, qualified name, length) of every function in `path` longer than `limit` lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[int, str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                start = min([d.lineno for d in child.decorator_list] + [child.lineno])
                length = (child.end_lineno or child.lineno) - start + 1
                if length > limit:
                    yield start, name, length
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=LIMIT, help=f"lines (default {LIMIT})")
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: all)")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    paths = args.paths or [root / p for p in PRODUCTION]
    found = [
        (path, line, name, length)
        for path in python_files(paths)
        for line, name, length in long_functions(path, args.limit)
    ]
    for path, line, name, length in found:
        shown = path.resolve().relative_to(root) if path.resolve().is_relative_to(root) else path
        print(f"{shown}:{line}: {name} is {length} lines (limit {args.limit})")
    if found:
        print(
            f"{len(found)} function(s) over {args.limit} lines: split each along what it does",
            file=sys.stderr,
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
