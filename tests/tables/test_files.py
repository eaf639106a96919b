"""tables/files.py: a file is published whole or not at all, the one helper every writer uses."""

from __future__ import annotations

import os

import pytest

from tables import files


def test_a_file_is_written_under_a_temporary_name_then_renamed_over_the_old_one(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("old")
    seen = []

    def write(tmp):
        seen.append((tmp, path.read_text()))  # the old file is untouched meanwhile
        tmp.write_text("new")

    assert files.atomic_write(path, write) == path
    assert path.read_text() == "new"
    assert seen == [(tmp_path / f".report.html.tmp-{os.getpid()}", "old")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_a_failed_write_removes_the_temporary_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "dashboard.duckdb"
    path.write_text("old")

    def write(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt  # any exception, an interrupt too

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(path, write, tmp=tmp_path / ".part.tmp")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dashboard.duckdb"]


def test_a_failed_rename_removes_the_temporary_file(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(OSError, match="No space"):
        files.atomic_write(tmp_path / "a.parquet", lambda tmp: tmp.write_bytes(b"x"))
    assert list(tmp_path.iterdir()) == []


def test_the_content_and_then_the_directory_are_synced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    path = tmp_path / "batch.parquet"
    files.atomic_write(path, lambda tmp: tmp.write_bytes(b"x"), tmp=tmp_path / ".tmp-batch")
    assert synced == [str(tmp_path / ".tmp-batch"), str(tmp_path)]


def test_the_temporary_file_must_lie_beside_the_final_one(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="not be atomic"):
        files.atomic_write(
            tmp_path / "a", lambda tmp: tmp.write_text("x"), tmp=tmp_path / "sub" / "a"
        )
    assert not (tmp_path / "a").exists()


def test_publish_moves_a_file_the_caller_wrote_itself(tmp_path):
    tmp = tmp_path / ".tmp-part"
    tmp.write_bytes(b"rows")
    assert files.publish(tmp, tmp_path / "part") == tmp_path / "part"
    assert (tmp_path / "part").read_bytes() == b"rows" and not tmp.exists()
