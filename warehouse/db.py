"""Connections and transactions: how every DuckDB file of gpuledger is opened and written.

`connect` sets the session up the way all SQL here relies on (UTC everywhere); `transaction` is
the one BEGIN / COMMIT / ROLLBACK: a block either lands whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from tables.files import restrict


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the session settings gpuledger relies on (UTC everywhere)."""
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")
    if not read_only and str(path) != ":memory:":
        restrict(Path(path))  # [warehouse] file_mode, whoever created the file
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """`with transaction(con):` runs the block in one transaction: COMMIT at its end, ROLLBACK
    on any exception (an interrupt too, or a failed COMMIT), which is then raised again."""
    con.execute("BEGIN")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
