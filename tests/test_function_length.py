"""No function over 60 lines in the production packages (scripts/check_function_length.py, run by
`make lint`), and the check itself: what it counts and what it reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_function_length", ROOT / "scripts" / "check_function_length.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _function(name: str, body_lines: int, indent: str = "") -> str:
    """A function of 1 (def) + `body_lines` lines."""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines))
    return f"{indent}def {name}():\n{body}"


def test_the_production_packages_have_no_function_over_60_lines(capsys):
    check = _checker()
    assert check.main([]) == 0, capsys.readouterr().out


def test_it_lists_each_long_function_with_file_line_and_length(tmp_path, capsys):
    """Lengths run from the first decorator (or the def) to the last line: `short` is 1 + 59 =
    60 lines (at the limit, not over it); `long` is 1 + 60 = 61; `Box.method` is 1 + 61 = 62
    and sits in a class; `outer` holds `inner` (1 + 61 = 62), so it is 1 + 62 = 63; `decorated`
    is 1 decorator + 1 def + 59 body = 61."""
    source = (
        _function("short", 59)
        + "\n\n"
        + _function("long", 60)
        + "\n\nclass Box:\n"
        + _function("method", 61, indent="    ")
        + "\n\ndef outer():\n"
        + _function("inner", 61, indent="    ")
        + "\n\n@staticmethod\n"
        + _function("decorated", 59)
    )
    path = tmp_path / "mod.py"
    path.write_text(source)
    check = _checker()
    assert check.main(["--limit", "60", str(path)]) == 1
    out = capsys.readouterr()
    lines = source.splitlines()
    at = {
        name: lines.index(f"{ind}def {name}():") + 1
        for name, ind in (
            ("long", ""),
            ("method", "    "),
            ("outer", ""),
            ("inner", "    "),
            ("decorated", ""),
        )
    }
    assert out.out.splitlines() == [
        f"{path}:{at['long']}: long is 61 lines (limit 60)",
        f"{path}:{at['method']}: Box.method is 62 lines (limit 60)",
        f"{path}:{at['outer']}: outer is 63 lines (limit 60)",
        f"{path}:{at['inner']}: outer.inner is 62 lines (limit 60)",
        f"{path}:{at['decorated'] - 1}: decorated is 61 lines (limit 60)",
    ]
    assert "5 function(s) over 60 lines" in out.err


def test_a_file_within_the_limit_passes(tmp_path, capsys):
    path = tmp_path / "ok.py"
    path.write_text(_function("fits", 59))
    assert _checker().main([str(path)]) == 0
    assert capsys.readouterr().out == ""
