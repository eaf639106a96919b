"""One writer at a time: the lock file names its holder and never outlives its process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from config.settings import Config
from warehouse.lock import LockHeld, WriterLock
from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]


def test_second_writer_is_refused_with_the_holder_pid(cfg: Config) -> None:
    first = Warehouse(cfg.db_path, cfg.spool_dir).open()
    try:
        second = Warehouse(cfg.db_path, cfg.spool_dir)
        with pytest.raises(LockHeld) as info:
            second.open()
        assert info.value.holder.startswith(f"pid {os.getpid()}:")
        assert str(os.getpid()) in str(info.value)
        assert info.value.path == Path(f"{cfg.db_path}.lock")
        assert second.con is None and not second.lock.held
        assert first.db.execute("SELECT 42").fetchall() == [(42,)]  # the owner is unharmed
    finally:
        first.close()
    assert not first.lock.held
    with Warehouse(cfg.db_path, cfg.spool_dir) as again:
        assert again.lock.held
        version = "SELECT count(*) FROM meta WHERE key = 'schema_version'"
        assert again.db.execute(version).fetchall() == [(1,)]


def test_lock_is_released_on_close_and_reacquirable(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    lock = WriterLock(db).acquire()
    with pytest.raises(LockHeld):
        WriterLock(db).acquire()
    lock.release()
    lock.release()  # idempotent
    with WriterLock(db) as other:
        assert other.held
        assert Path(f"{db}.lock").read_text().startswith(f"pid {os.getpid()}:")


def test_lock_of_a_killed_process_is_not_stale(cfg: Config) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from warehouse.store import Warehouse
        wh = Warehouse({str(cfg.db_path)!r}, {str(cfg.spool_dir)!r}).open()
        wh.db.execute("INSERT INTO results_daily_ledger (day) VALUES (DATE '2026-01-01')")
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        with pytest.raises(LockHeld) as info:
            Warehouse(cfg.db_path, cfg.spool_dir).open()
        assert info.value.holder.startswith(f"pid {child.pid}:")
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    # No stale lock: the kernel dropped the flock, and DuckDB recovers the file (its WAL too).
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        assert wh.lock.held
        rows = wh.db.execute("SELECT count(*) FROM results_daily_ledger").fetchall()
        assert rows == [(1,)]
