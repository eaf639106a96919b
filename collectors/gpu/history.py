"""A server's history read into the spool piece by piece, so that a stopped run resumes where it
stopped and never spools a piece twice (`collect --source prometheus --since`; docs/collectors.md).

The state of a job (a source, a server, `since` and the step: not `until`, so a later run with a
later --until, or none, reads on from where the last one stopped) is one small JSON file beside
the spool, `<spool>.history/<source>-<key>.json`. It holds `resume_at`, the time of the first
step not yet stored, and is replaced whole (tables/files.py `atomic_write`) once every batch of a
window is published (at the window's closing piece). `<key>.lock` beside it keeps a second run
of the same job from reading at the same time.

Exactly once: a piece's batch for one (kind, host) is named after the job, the piece's steps and
its instance group (`part-<piece start>-h<digest>.parquet`). A run that stopped in a window, or
between publishing its last batch and recording it, reads that window again, finds its batches
by name (any date partition) and does not write them again. Should a batch be rewritten all the
same (the first copy already merged away by spool compaction), the ingest still stores each
(host, GPU, time) once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from tables import spool
from tables.files import atomic_write, file_mode, make_dirs
from tables.records import Batch

STATE_SUFFIX = ".history"


class Piece(Protocol):
    """What a source's `read_history` yields (collectors/gpu/prometheus_history.py HistoryPiece)."""

    first_step: int
    next_step: int
    start: datetime
    end: datetime
    resume_at: datetime
    window: int
    windows: int
    group: int
    series: int
    calls: int
    batch: Batch
    closes_window: bool


def public_url(url: str) -> str:
    """`url` without a `user:password@` (for messages, reports and state files)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


@dataclass(frozen=True)
class HistoryJob:
    """One history read: its state file's key."""

    source: str
    url: str
    since: datetime
    step_s: int

    @property
    def key(self) -> str:
        what = [self.source, self.url.rstrip("/"), self.since.isoformat(), self.step_s]
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]

    def state_path(self, spool_dir: Path) -> Path:
        """`<spool>.history/<source>-<key>.json`, beside the spool (never read by the ingest)."""
        spool_dir = Path(spool_dir)
        return spool_dir.with_name(spool_dir.name + STATE_SUFFIX) / f"{self.source}-{self.key}.json"

    def batch_name(self, piece: Piece, kind: str, host: str) -> str:
        """The name of a piece's batch of `kind` for `host`: the same on every run."""
        what = f"{self.key}|{piece.first_step}|{piece.next_step}|{piece.group}|{kind}|{host}"
        digest = hashlib.sha256(what.encode()).hexdigest()[:16]
        return f"part-{piece.start:%Y%m%dT%H%M%S%f}-h{digest}.parquet"

    @contextmanager
    def lock(self, spool_dir: Path) -> Iterator[None]:
        """Hold `<state>.lock` (an exclusive `flock`, released by the kernel if the process
        dies): a second run of the same job at once is a ValueError naming the first."""
        path = self.state_path(spool_dir).with_suffix(".lock")
        make_dirs(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, file_mode())
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
                raise ValueError(
                    f"{path}: another run of this history is reading ({holder or 'unknown'})"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def resume_at(self, spool_dir: Path) -> datetime | None:
        """Where the last run of this job stopped (None: never run); a damaged state file is
        a ValueError naming it."""
        path = self.state_path(spool_dir)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            at = datetime.fromisoformat(state["resume_at"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path}: not a history state file ({exc}); delete it to start over"
            ) from None
        if at.tzinfo is None or at < self.since:
            raise ValueError(f"{path}: resume_at {state['resume_at']!r} is not a time after since")
        return at.astimezone(UTC)

    def record(self, spool_dir: Path, piece: Piece, run: HistoryRun) -> None:
        """Replace the state file: this job has every step before `piece.resume_at`."""
        path = self.state_path(spool_dir)
        make_dirs(path.parent)
        state = {
            "source": self.source,
            "url": self.url,
            "since": self.since.isoformat(),
            "step_s": self.step_s,
            "resume_at": piece.resume_at.isoformat(),
            "last_window": f"{piece.window}/{piece.windows}",
            "gpu_samples_this_run": run.rows.get("gpu_samples", 0),
        }
        text = json.dumps(state, indent=1) + "\n"
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


@dataclass
class HistoryRun:
    """What one run read and stored."""

    state_path: Path
    resumed_at: datetime | None = None
    windows: set[int] = field(default_factory=set)  # grid windows read (whole or in part)
    windows_total: int = 0
    pieces: int = 0
    calls: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    written: list[Path] = field(default_factory=list)
    already: int = 0  # batches found in the spool from a run that stopped before recording
    window_rows: int = 0  # gpu_samples of the window being read
    window_calls: int = 0


def spool_pieces(
    job: HistoryJob,
    pieces: Iterable[Piece],
    spool_dir: Path,
    *,
    resumed_at: datetime | None = None,
    metadata: dict[str, str] | None = None,
    progress: Callable[[Piece, HistoryRun], None] | None = None,
    now: datetime | None = None,
) -> HistoryRun:
    """Write each piece's batches (one per kind and host) into the spool as it comes; at a
    window's closing piece record the window read and report progress. An exception from
    `pieces` (a server that failed) leaves every window before it recorded."""
    run = HistoryRun(job.state_path(spool_dir), resumed_at)
    for piece in pieces:
        _spool_piece(job, piece, spool_dir, run, metadata or {}, now)
        run.pieces += 1
        run.calls += piece.calls
        run.window_calls += piece.calls
        run.window_rows += piece.batch.gpu_samples.height
        if piece.closes_window:
            job.record(spool_dir, piece, run)
            run.windows.add(piece.window)
            run.windows_total = piece.windows
            if progress is not None:
                progress(piece, run)
            run.window_rows = run.window_calls = 0
    return run


def _spool_piece(
    job: HistoryJob,
    piece: Piece,
    spool_dir: Path,
    run: HistoryRun,
    metadata: dict[str, str],
    now: datetime | None,
) -> None:
    window = {**metadata, "history_window": f"{piece.start.isoformat()}/{piece.end.isoformat()}"}
    for kind, frame in piece.batch.frames().items():
        for (host,), part in frame.group_by("host", maintain_order=True):
            name = job.batch_name(piece, kind, str(host))
            if spool.find_batch(spool_dir, kind, str(host), name) is not None:
                run.already += 1
            else:
                path = spool.write_batch(
                    spool_dir, kind, part, str(host), now=now, metadata=window, name=name
                )
                run.written.append(path)
            run.hosts.add(str(host))
        run.rows[kind] = run.rows.get(kind, 0) + frame.height
