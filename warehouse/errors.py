"""What went wrong with the files gpuledger keeps, in words a person can act on.

A full disk, a folder that cannot be written, a damaged warehouse or snapshot each become one
message that says what happened, where, and the next step (docs/operations.md):

- the disk is full: free space, run it again; nothing stored was lost (a failed write rolls back,
  the spool keeps what was not ingested);
- a folder cannot be written: run as its owner or make it writable; read-only commands show the
  last snapshot meanwhile;
- the warehouse is damaged (truncated, overwritten, not a DuckDB file): rebuild it from the spool
  with `gpuledger rebuild`;
- the snapshot is damaged: the next publish replaces it (`gpuledger run --once`).

`explain` maps any exception to such a message (None: not one of these, a bug to show whole).
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import duckdb

NO_SPACE = "No space left on device"
_READ_ONLY = ("Read-only file system", "Permission denied", "Operation not permitted")
_DAMAGED = (
    "not a valid DuckDB database file",
    "Could not read enough bytes",
    "Corrupt",
    "corrupt",
    "checksum",
    "Serialization Error",
)
_QUOTED_PATH = re.compile(r'"(/[^"]+)"')


class StorageError(RuntimeError):
    """A problem with the files gpuledger keeps, already in words (the module docstring)."""


class DiskFull(StorageError):
    def __init__(self, where: Path, detail: str) -> None:
        super().__init__(
            f"the disk holding {where} is full ({detail}): free some space there (`df -h "
            f"{where}`), then run it again. Nothing already stored was lost: the write that "
            "failed was rolled back, and the spool keeps what was not ingested yet"
        )


class NotWritable(StorageError):
    def __init__(self, where: Path, detail: str) -> None:
        super().__init__(
            f"cannot write {where} ({detail}): run gpuledger as the user who owns it, make it "
            "writable, or point [warehouse] path at a writable folder. `gpuledger costs`, "
            "`recommend`, `report` and `alerts` show the last published snapshot meanwhile"
        )


class WarehouseDamaged(StorageError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"the warehouse {path} cannot be read ({detail}): it is damaged (cut short, "
            "overwritten) or not a gpuledger warehouse. Rebuild it from the spool with "
            "`gpuledger rebuild` (it keeps the damaged file aside; docs/operations.md)"
        )


class SnapshotDamaged(StorageError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"the snapshot {path} cannot be read ({detail}): the next publish replaces it; "
            "run `gpuledger run --once` (or wait for the running daemon's next cycle)"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _where(exc: BaseException, default: Path) -> Path:
    """The folder an error is about: the file it names (OSError.filename, a path quoted in a
    DuckDB message), else `default`."""
    name = getattr(exc, "filename", None)
    if not name:
        found = _QUOTED_PATH.search(str(exc))
        name = found.group(1) if found else None
    path = Path(name) if name else Path(default)
    return path if path.is_dir() else path.parent


def is_disk_full(exc: BaseException) -> bool:
    return (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or NO_SPACE in str(exc)


def is_not_writable(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return True
    return isinstance(exc, duckdb.Error) and any(t in str(exc) for t in _READ_ONLY)


def is_damaged(exc: BaseException) -> bool:
    """A DuckDB file that does not read: cut short, overwritten, not DuckDB at all."""
    return isinstance(exc, duckdb.Error) and any(t in str(exc) for t in _DAMAGED)


def explain(exc: BaseException, db_path: Path) -> StorageError | None:
    """The StorageError `exc` stands for (`db_path`: the warehouse, for the messages), or None
    when it is not a storage problem. A StorageError explains itself."""
    if isinstance(exc, StorageError):
        return exc
    detail = _first_line(exc)
    if is_disk_full(exc):
        return DiskFull(_where(exc, db_path.parent), detail)
    if is_not_writable(exc):
        return NotWritable(_where(exc, db_path.parent), detail)
    if is_damaged(exc):
        return WarehouseDamaged(db_path, detail)
    return None
