"""Publishing a file whole or not at all: the one way gpuledger replaces a file other processes read
(spool batches, shipped and pulled copies, compacted spool files, the snapshot, reports).

The content is written under a temporary name in the same directory, flushed to disk, renamed
over the final name (a reader sees the old file or the new one, never half of one) and the
directory entry is synced, so the rename survives a power cut. On any failure the temporary file
is removed and the final one is left as it was.

It is also the one place that sets the mode of what gpuledger writes ([warehouse] file_mode,
docs/operations.md): every published file gets `file_mode()` (0600 unless configured), every
folder made by `make_dirs` the matching `dir_mode()` (0700), DuckDB files `restrict` after they
open, and `owner_umask()` covers what other code creates (DuckDB's WAL and temporary files).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)
DEFAULT_FILE_MODE = 0o600
_modes = {"file": DEFAULT_FILE_MODE}


def set_file_mode(mode: int) -> None:
    """The mode of every file written from now on (the CLI sets [warehouse] file_mode)."""
    if mode & 0o600 != 0o600 or mode & 0o113 or mode > 0o777:
        raise ValueError(f"file mode {mode:04o}: the owner reads and writes, nobody executes")
    _modes["file"] = mode


def file_mode() -> int:
    """The mode files are written with: 0600 (the owner only) unless configured otherwise."""
    return _modes["file"]


def dir_mode() -> int:
    """The folders' mode that goes with `file_mode()`: whoever may read a file may also enter
    its folder (0600: 0700; 0640: 0750)."""
    mode = file_mode()
    return mode | ((mode & 0o444) >> 2)


@contextmanager
def owner_umask() -> Iterator[None]:
    """Run a block with the process umask that gives new files and folders no more than
    `file_mode()` / `dir_mode()` (0600/0700 by default), whoever creates them (DuckDB's WAL and
    temporary files too); the previous umask is restored after it."""
    previous = os.umask(0o777 & ~dir_mode())
    try:
        yield
    finally:
        os.umask(previous)


def make_dirs(path: Path) -> Path:
    """`path` and its missing parents, each created with `dir_mode()` (folders that already
    exist keep theirs). Returns `path`."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    for folder in reversed(missing):
        restrict(folder, dir_mode())
    return path


def restrict(path: Path, mode: int | None = None) -> None:
    """Give `path` the configured mode (`file_mode()` unless `mode`); a file this user does not
    own keeps its mode, with a warning."""
    mode = file_mode() if mode is None else mode
    try:
        if (os.stat(path).st_mode & 0o777) != mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        return
    except PermissionError as exc:
        log.warning("cannot set mode %04o on %s: %s", mode, path, exc)


# Errors of a file system that cannot sync a directory (the rename itself has happened).
_NO_DIR_SYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES, errno.EISDIR}


def default_tmp(path: Path) -> Path:
    """`.<name>.tmp-<pid>` beside `path`: hidden, and one per writing process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def fsync_file(path: Path) -> None:
    """Flush a written file's content to disk."""
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename into it) to disk, where the file system can."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError as exc:
        if exc.errno in _NO_DIR_SYNC:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIR_SYNC:
            raise
    finally:
        os.close(fd)


def _same_directory(tmp: Path, path: Path) -> None:
    if tmp.parent != path.parent:
        raise ValueError(f"{tmp} is not in the directory of {path}: the rename would not be atomic")


def publish(tmp: Path, path: Path) -> Path:
    """Move the finished temporary file `tmp` over `path` durably (fsync it, rename, fsync the
    directory); on failure `tmp` is removed and the error raised. For a caller that wrote `tmp`
    itself over several steps (a Parquet writer fed chunk by chunk)."""
    tmp, path = Path(tmp), Path(path)
    _same_directory(tmp, path)
    try:
        os.chmod(tmp, file_mode())  # in place before the rename: never readable by others
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write(path: Path, write: Callable[[Path], object], *, tmp: Path | None = None) -> Path:
    """Publish `path` whole or not at all: `write(tmp)` writes the content to the temporary path
    (default `default_tmp(path)`; the caller may write it any way, e.g. DuckDB attaching it), then
    `publish` moves it into place. On any failure, in `write` too, the temporary file is removed
    and the error raised; `path` keeps what it had. Returns `path`."""
    path = Path(path)
    tmp = Path(tmp) if tmp is not None else default_tmp(path)
    _same_directory(tmp, path)
    try:
        write(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return publish(tmp, path)
