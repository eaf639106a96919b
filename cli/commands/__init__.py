"""Subcommands beyond the core ones in cli/main.py.

Every module here defines `register(sub, common)`, which adds its parser(s) to the `gpuledger`
subparsers `sub` (pass `parents=[common]` so --config, --db and --format work after the command)
and sets `func=handler(args, cfg) -> int`. Modules are discovered, so adding a command touches no
shared file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def register_all(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub, common)
