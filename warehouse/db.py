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


@contextmanager
def memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """`with memory_limit(con, "256MB"):` caps DuckDB's memory for the block, then puts back
    DuckDB's default (gpuledger sets no other limit on its connections).

    DuckDB caches the blocks it writes up to its memory_limit (80 % of the machine's memory by
    default), so a long import would grow by about 3 MB per 100,000 rows stored; under a cap
    DuckDB evicts them (and spills what a query needs past it to its temporary folder)."""
    con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        con.execute("RESET memory_limit")
