"""The lock that makes one process at a time the warehouse writer (DESIGN.md §1, rule 2)."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from tables.files import file_mode, make_dirs


class LockHeld(RuntimeError):
    """Another process owns the warehouse; `holder` says which, as written in the lock file."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is owned by another process ({holder or 'unknown'})")
        self.path = path
        self.holder = holder


class WriterLock:
    """An exclusive, non-blocking `flock` on `<warehouse>.lock`; released by the kernel if the
    process dies, so a kill -9 never leaves a stale lock behind."""

    def __init__(self, db_path: Path) -> None:
        self.path = Path(f"{db_path}.lock")
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        make_dirs(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, file_mode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise LockHeld(self.path, holder) from None
        os.fchmod(fd, file_mode())  # one made by an older version had 0644
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv[:3])}".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
