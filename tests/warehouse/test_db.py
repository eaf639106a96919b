"""warehouse/db.py: the one transaction helper every write of the warehouse goes through."""

from __future__ import annotations

import pytest

from warehouse.db import connect, memory_limit, transaction


@pytest.fixture
def con(tmp_path):
    con = connect(tmp_path / "t.duckdb")
    con.execute("CREATE TABLE t (x INTEGER)")
    yield con
    con.close()


def rows(con) -> list[tuple]:
    return con.execute("SELECT x FROM t ORDER BY x").fetchall()


def test_a_block_that_ends_is_committed_whole(con):
    with transaction(con) as same:
        same.execute("INSERT INTO t VALUES (1)")
        same.execute("INSERT INTO t VALUES (2)")
    assert same is con
    assert rows(con) == [(1,), (2,)]


@pytest.mark.parametrize("error", [ValueError("bad row"), KeyboardInterrupt()])
def test_a_block_that_raises_is_rolled_back_and_the_error_raised(con, error):
    con.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(type(error)), transaction(con):
        con.execute("INSERT INTO t VALUES (2)")
        raise error
    assert rows(con) == [(1,)]
    with transaction(con):  # the connection is usable again: no transaction left open
        con.execute("INSERT INTO t VALUES (3)")
    assert rows(con) == [(1,), (3,)]


def test_the_session_is_in_utc(tmp_path):
    con = connect(tmp_path / "t.duckdb")
    try:
        assert con.execute("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
    finally:
        con.close()


def test_memory_limit_holds_for_the_block_and_is_restored(con):
    def limit() -> str:
        return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]

    before = limit()
    with memory_limit(con, "256MB"):
        assert limit() in ("244.1 MiB", "256.0 MB")  # DuckDB shows it in its own units
        con.execute("CREATE TABLE big AS SELECT range AS i FROM range(3000000)")
        assert con.execute("SELECT sum(i) FROM big").fetchone()[0] == 3_000_000 * 2_999_999 // 2
    assert limit() == before


def test_memory_limit_is_restored_when_the_block_raises(con):
    before = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    with pytest.raises(ValueError), memory_limit(con, "128MB"):
        raise ValueError("boom")
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == before
