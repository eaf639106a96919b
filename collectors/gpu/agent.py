"""The sampling loop shared by every source: tick on a monotonic clock, buffer, flush to spool.

Ticks are scheduled at start + k x interval on `time.monotonic()`, so sampling never drifts and a
slow tick is followed by the next due one (missed ticks are skipped, not bunched). Buffers are
flushed to the spool every `flush_interval_s`, so a kill -9 loses at most that much. A spool write
that fails (disk full) keeps the batch in memory, up to `max_buffered_rows`, and is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from tables import spool
from tables.records import Batch

log = logging.getLogger(__name__)
FAILURE_LOG_EVERY_S = 60.0


class Agent:
    def __init__(
        self,
        sample: Callable[[datetime], Batch],
        spool_dir: Path,
        *,
        interval_s: float = 1.0,
        flush_interval_s: float = 5.0,
        max_buffered_rows: int = 2_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sample = sample
        self.spool_dir = Path(spool_dir)
        self.interval_s = interval_s
        self.flush_interval_s = flush_interval_s
        self.max_buffered_rows = max_buffered_rows
        self.clock = clock
        self.stop_event = threading.Event()
        self._buffer: dict[str, list[pl.DataFrame]] = {}
        self.ticks = 0
        self.errors = 0
        self.flushed_files = 0
        self._failing: str | None = None  # the message of the failure going on, if any
        self._failed_in_a_row = 0
        self._failure_logged_at = 0.0

    def _log_failure(self, exc: BaseException) -> None:
        """The traceback once per kind of failure, then a line a minute while it goes on, so an
        exporter that is down does not write a traceback every second."""
        message = f"{type(exc).__name__}: {exc}"
        self._failed_in_a_row += 1
        now = self.clock()
        if message != self._failing:
            self._failing, self._failure_logged_at = message, now
            log.exception("sampling failed; the next tick tries again")
        elif now - self._failure_logged_at >= FAILURE_LOG_EVERY_S:
            self._failure_logged_at = now
            log.error(
                "sampling still failing (%d ticks in a row): %s", self._failed_in_a_row, message
            )

    def tick(self) -> None:
        try:
            batch = self.sample(datetime.now(UTC))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a Rust panic of Polars too: the next tick tries again
            self.errors += 1
            self._log_failure(exc)
            return
        if self._failing is not None:
            log.info("sampling works again after %d failed tick(s)", self._failed_in_a_row)
            self._failing, self._failed_in_a_row = None, 0
        self.ticks += 1
        for kind, frame in batch.frames().items():
            self._buffer.setdefault(kind, []).append(frame)

    def flush(self) -> int:
        """Write buffered rows as one spool batch per kind and host; returns files written."""
        written = 0
        for kind in list(self._buffer):
            frames = self._buffer.pop(kind)
            if not frames:
                continue
            merged = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")
            kept: list[pl.DataFrame] = []
            for host, part in _by_host(merged):
                try:
                    spool.write_batch(self.spool_dir, kind, part, str(host))
                    written += 1
                except OSError as exc:
                    log.error(
                        "spool write failed (%s); keeping %d rows in memory", exc, part.height
                    )
                    kept.append(part)
            if kept:
                merged = pl.concat(kept)
                if merged.height > self.max_buffered_rows:  # keep the newest
                    log.warning(
                        "spool still failing: dropping the %d oldest %s rows, keeping %d",
                        merged.height - self.max_buffered_rows,
                        kind,
                        self.max_buffered_rows,
                    )
                    merged = merged.tail(self.max_buffered_rows)
                self._buffer[kind] = [merged]
        self.flushed_files += written
        return written

    def run(self, *, once: bool = False) -> None:
        """Sample until `stop_event` is set (or one tick when `once`), then flush."""
        start = self.clock()
        next_flush = start + self.flush_interval_s
        k = 0
        try:
            while not self.stop_event.is_set():
                self.tick()
                if once:
                    break
                now = self.clock()
                if now >= next_flush:
                    self.flush()
                    next_flush = now + self.flush_interval_s
                k = max(k + 1, int((self.clock() - start) / self.interval_s) + 1)
                delay = start + k * self.interval_s - self.clock()
                if delay > 0:
                    self.stop_event.wait(delay)
        finally:
            self.flush()

    def stop(self) -> None:
        """Ask `run` to return; it flushes what it holds first."""
        self.stop_event.set()

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="gpuledger-sampler", daemon=True)
        thread.start()
        return thread


def _by_host(frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """(host, rows) pairs; an agent samples one host, so the usual case needs no group_by."""
    hosts = frame["host"].unique(maintain_order=True).to_list()
    if len(hosts) == 1:
        return [(str(hosts[0]), frame)]
    return [(str(h), part) for (h,), part in frame.group_by("host", maintain_order=True)]
