"""Publishing a file whole or not at all: the one way gpuledger replaces a file other processes read
(spool batches, shipped and pulled copies, compacted spool files, the snapshot, reports).

The content is written under a temporary name in the same directory, flushed to disk, renamed
over the final name (a reader sees the old file or the new one, never half of one) and the
directory entry is synced, so the rename survives a power cut. On any failure the temporary file
is removed and the final one is left as it was.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

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
