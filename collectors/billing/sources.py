"""The billing file formats, by name: what `gpuledger import NAME FILE…` reads, and which reader
takes an export file found in S3.

Each format is one line at the end of this file: its name (the `import` subcommand), the module
that reads it (imported only when a file of that format is read), the answers of
`formats.identify` that mean it (an export's columns tell its format) and a line of help. The
`import` subcommands, `import_billing_files` and the S3 export reader read this list;
docs/architecture.md says how to add a format. (Pull providers such as `gpuledger billing aws`
are registered in cli/providers/, beside the command that runs them.)

A format's module provides `read_chunks(path, *, tag_key, reader=None) -> Iterator[DataFrame]`:
the billing rows of one file, chunk by chunk, each validated (raises InputError, also after
some chunks were yielded: the caller discards what it got).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from collectors.billing.stream import TableReader


@dataclass(frozen=True)
class FileFormat:
    """One billing file format: its name, its reader's module, what `identify` calls it, its
    help."""

    name: str
    module: str
    identified_as: tuple[str, ...]
    help: str

    def read_chunks(
        self, path: str | Path, *, tag_key: str = "workload", reader: TableReader | None = None
    ) -> Iterator[pl.DataFrame]:
        """The validated billing rows of one file of this format, chunk by chunk."""
        read: Any = importlib.import_module(self.module).read_chunks
        return read(path, tag_key=tag_key, reader=reader)


FORMATS: dict[str, FileFormat] = {}


def register(fmt: FileFormat) -> FileFormat:
    """Add a format (its name must be new); returns it."""
    if fmt.name in FORMATS:
        raise ValueError(f"billing format name {fmt.name!r} is taken")
    FORMATS[fmt.name] = fmt
    return fmt


def get(name: str) -> FileFormat:
    return FORMATS[name]


def identified(answer: str | None) -> FileFormat | None:
    """The format `formats.identify` answered (e.g. `cur_snake`: cur), or None."""
    return next((f for f in FORMATS.values() if answer in f.identified_as), None)


# One line per format, in the order `gpuledger import --help` lists them ------------------------
for _format in (
    FileFormat(
        "focus",
        "collectors.billing.focus",
        ("focus",),
        "FOCUS 1.0-1.2 cost exports (CSV, gzip CSV or Parquet)",
    ),
    FileFormat(
        "cur",
        "collectors.billing.cur",
        ("cur_legacy", "cur_snake"),
        "AWS CUR 2.0 and legacy CUR files (gzip CSV, CSV or Parquet)",
    ),
    FileFormat(
        "azure",
        "collectors.billing.azure_cost",
        ("azure_cost",),
        "Azure Cost Management cost details: EA/MCA actual or amortized cost exports (CSV, gzip)",
    ),
):
    register(_format)
