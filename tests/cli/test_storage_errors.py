"""Errors a person can act on (warehouse/errors.py): a damaged warehouse or snapshot, a folder
that cannot be written and a full disk each give one message with the next step; read-only
commands fall back to the last snapshot; `gpuledger rebuild` makes the warehouse again from the
spool; what a killed writer left is removed at the next start; an import whose rows were stored
does not fail because the snapshot after it could not be published."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from cli import app
from cli.main import main
from tables import spool
from tests.disks import fill, tmpfs

HEADER = "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,workload\n"


def samples_csv(path: Path, host: str = "node-1", rows: int = 3) -> Path:
    start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    body = "".join(
        f"{(start + timedelta(seconds=10 * i)).isoformat()},{host},GPU-{host},H100,50,1000,"
        "81559,300,train\n"
        for i in range(rows)
    )
    path.write_text(HEADER + body)
    return path


def count(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM gpu_samples").fetchall()[0][0]
    finally:
        con.close()


@pytest.fixture
def seeded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A warehouse (`data/w.duckdb`) holding one import, its snapshot published."""
    db = tmp_path / "data" / "w.duckdb"
    assert main(["import", "samples", str(samples_csv(tmp_path / "a.csv")), "--db", str(db)]) == 0
    capsys.readouterr()
    return db


def cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_a_damaged_warehouse_says_rebuild_and_rebuild_brings_the_data_back(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut(seeded)
    more = samples_csv(tmp_path / "b.csv", "node-2")
    assert main(["import", "samples", str(more), "--db", str(seeded)]) == 1
    err = capsys.readouterr().err
    assert f"the warehouse {seeded} cannot be read" in err
    assert "`gpuledger rebuild`" in err and "Traceback" not in err
    # A read-only command shows the last snapshot meanwhile, saying why.
    assert main(["costs", "--db", str(seeded), "--since", "2026-03-01", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert "Showing the last snapshot" in err and '"gpu_hours"' in out
    # The import's batch was written before the warehouse failed: the spool keeps it.
    assert main(["rebuild", "--db", str(seeded)]) == 0
    out = capsys.readouterr().out
    kept = list(seeded.parent.glob("w.duckdb.before-rebuild-*"))
    assert len(kept) == 1 and str(kept[0]) in out
    assert count(seeded) == 6  # both imports, from the spool
    assert main(["costs", "--db", str(seeded), "--since", "2026-03-01"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_rebuild_refuses_an_empty_spool_and_leaves_the_warehouse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "w.duckdb"
    db.write_bytes(b"not a warehouse")
    assert main(["rebuild", "--db", str(db)]) == 1
    assert "holds no batches" in capsys.readouterr().err
    assert db.read_bytes() == b"not a warehouse"


def test_a_damaged_snapshot_says_the_next_publish_replaces_it(
    seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = seeded.with_name("w.snapshot.duckdb")
    snapshot.write_bytes(b"overwritten by something else" * 1000)
    assert main(["alerts", "--db", str(seeded)]) == 1
    err = capsys.readouterr().err
    assert f"the snapshot {snapshot} cannot be read" in err and "gpuledger run --once" in err
    assert main(["run", "--once", "--db", str(seeded)]) == 0
    capsys.readouterr()
    assert main(["alerts", "--db", str(seeded)]) == 0


def test_an_import_stored_is_not_failed_by_the_publish_after_it(
    seeded: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(seeded.parent / "x"))

    monkeypatch.setattr(app, "publish", full)
    more = samples_csv(tmp_path / "b.csv", "node-2")
    assert main(["import", "samples", str(more), "--db", str(seeded), "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert "ingested 1 spool file(s): 3 gpu_samples; stored, but" in out
    assert f"the disk holding {seeded.parent} is full" in out
    assert count(seeded) == 6


def test_temporary_files_of_a_killed_writer_are_removed_at_the_next_start(seeded: Path) -> None:
    spool_dir = seeded.with_name("w.spool")
    part = spool.partition_dir(spool_dir, "gpu_samples", "2026-03-01", "node-9")
    part.mkdir(parents=True)
    old = part / f"{spool.TMP_PREFIX}part-1.parquet"
    young = part / f"{spool.TMP_PREFIX}part-2.parquet"
    for path in (old, young):
        path.write_bytes(b"half a batch")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process that has exited: its pid names no writer
    snapshot = seeded.with_name("w.snapshot.duckdb")
    stale = snapshot.with_name(f".{snapshot.name}.tmp-{gone.pid}")
    stale.write_bytes(b"half a snapshot")
    stale_wal = Path(f"{stale}.wal")
    stale_wal.write_bytes(b"its log")
    from config.settings import load_config

    with app.open_warehouse(load_config(None, db=str(seeded))):
        pass
    assert not old.exists() and not stale.exists() and not stale_wal.exists()
    assert young.exists()  # a writer may be writing it right now


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MB tmpfs; skipped where mounting is not allowed."""
    with tmpfs(tmp_path / "disk", "8m") as mount:
        yield mount


@pytest.mark.slow
def test_a_full_disk_and_a_read_only_folder_each_say_what_to_do(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = small_disk / "w.duckdb"
    first = samples_csv(tmp_path / "a.csv")
    assert main(["import", "samples", str(first), "--db", str(db)]) == 0
    capsys.readouterr()
    spool_before = sorted(p.name for p in db.with_name("w.spool").rglob("*") if p.is_file())
    filler = fill(small_disk)
    more = samples_csv(tmp_path / "b.csv", "node-2", rows=2000)
    assert main(["import", "samples", str(more), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert f"the disk holding {small_disk}" in err and "is full" in err and "free some space" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in db.with_name("w.spool").rglob("*") if p.is_file()) == spool_before
    filler.unlink()
    remount = subprocess.run(
        ["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True
    )
    if remount.returncode != 0:
        pytest.skip(f"cannot remount read-only ({remount.stderr.strip()})")
    assert main(["import", "samples", str(more), "--db", str(db)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {small_disk}" in err and "Read-only file system" in err
    code = main(["costs", "--db", str(db), "--since", "2026-03-01", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0 and '"gpu_hours"' in out
    assert "cannot write" in err and "Showing the last snapshot" in err
